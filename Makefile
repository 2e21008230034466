# Entry points for newcomers and CI. Everything runs inside .venv (created by `make install`).
PY := .venv/bin/python
# Tests run many tiny models: one intra-op thread each is faster and never thrashes.
TEST_ENV := OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}
# The end-to-end tests write checkpoints under pytest's temp dirs (~12 GB a session if all are
# kept): keep those of failed tests only, of the newest session only (pytest keeps three).
PYTEST := $(PY) -m pytest tests -q -p no:cacheprovider -o tmp_path_retention_policy=failed \
	-o tmp_path_retention_count=1
TOY := data/toyvoc
DEMO_DIR := work_dirs/demo_mib_bisenet_r18_toyvoc_15-5

.PHONY: install demo test test-fast bench toy clean

install:
	bash tools/install.sh

toy: install
	$(PY) tools/make_toy_voc.py --out $(TOY) --seed 0

# The demo: MiB and FT on 15-5 (BiSeNet-R18, toy-pretrained backbone) from one shared step 0, the
# two step-1 runs side by side (one thread each), then the paper's table of both. Its schedule is
# the toy one (configs/_base_/schedules/toy_cpu.py), step 1 with the toy tables' step budget (15
# epochs, STEP_OPTS of tools/toy_tables.sh), so its runs are Table 2's 15-5 FT / MiB runs of
# seed 0; DEMO_OPTS adds --cfg-options.
DEMO_CFG = configs/mib/bisenet_r18_toyvoc_15-5_step0.py
DEMO_STEP = --cfg-options train_cfg.max_epochs=15 param_scheduler.0.end=15
demo: toy
	$(PY) tools/toy_pretrain.py
	$(PY) tools/run_incremental.py $(DEMO_CFG) --work-dir $(DEMO_DIR)/mib --data-root $(TOY) \
		--steps 0 $(DEMO_OPTS)
	OMP_NUM_THREADS=1 $(PY) tools/run_incremental.py configs/ft/bisenet_r18_toyvoc_15-5_step0.py \
		--work-dir $(DEMO_DIR)/ft --data-root $(TOY) --step0 $(DEMO_DIR)/mib/step0 $(DEMO_STEP) $(DEMO_OPTS) \
		> $(DEMO_DIR)/ft.log 2>&1 & \
	OMP_NUM_THREADS=1 $(PY) tools/run_incremental.py $(DEMO_CFG) --work-dir $(DEMO_DIR)/mib \
		--data-root $(TOY) $(DEMO_STEP) $(DEMO_OPTS) > $(DEMO_DIR)/mib.log 2>&1; mib=$$?; wait $$!; ft=$$?; \
	[ $$mib -eq 0 ] || { tail -20 $(DEMO_DIR)/mib.log; exit 1; }; \
	[ $$ft -eq 0 ] || { tail -20 $(DEMO_DIR)/ft.log; exit 1; }
	@cat $(DEMO_DIR)/mib/results.md
	$(PY) tools/summarize_results.py $(DEMO_DIR)/ft $(DEMO_DIR)/mib --names FT MiB \
		--md $(DEMO_DIR)/table.md

test: install
	$(TEST_ENV) $(PYTEST)

test-fast: install
	$(TEST_ENV) $(PYTEST) -m "not slow"

bench: install
	$(PY) tools/analysis_tools/benchmark.py --json docs/benchmarks.json
	$(PY) tools/analysis_tools/benchmark.py --render docs/benchmarks.json --md docs/benchmarks.md

clean:
	rm -rf work_dirs $(TOY)
