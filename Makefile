# Entry points for newcomers and CI. Everything runs inside .venv (created by `make install`).
PY := .venv/bin/python
# Tests run many tiny models: one intra-op thread each is faster and never thrashes.
TEST_ENV := OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}
TOY := data/toyvoc
DEMO_DIR := work_dirs/demo_mib_bisenet_r18_toyvoc_15-5

.PHONY: install demo test test-fast bench toy clean

install:
	bash tools/install.sh

toy: install
	$(PY) tools/make_toy_voc.py --out $(TOY) --seed 0

# The demo shortens the toy schedule to 12 epochs a step (docs/results.md uses the full 30).
demo: toy
	$(PY) tools/run_incremental.py configs/mib/bisenet_r18_toyvoc_15-5_step0.py \
		--work-dir $(DEMO_DIR) --data-root $(TOY) \
		--cfg-options train_cfg.max_epochs=12 param_scheduler.0.end=12 $(DEMO_OPTS)

test: install
	$(TEST_ENV) $(PY) -m pytest tests -q -p no:cacheprovider

test-fast: install
	$(TEST_ENV) $(PY) -m pytest tests -q -p no:cacheprovider -m "not slow"

bench: install
	$(PY) tools/analysis_tools/benchmark.py --json docs/benchmarks.json
	$(PY) tools/analysis_tools/benchmark.py --render docs/benchmarks.json --md docs/benchmarks.md

clean:
	rm -rf work_dirs $(TOY)
