# Entry points for newcomers and CI. Everything runs inside .venv (created by `make install`).
PY := .venv/bin/python
TOY := data/toyvoc
DEMO_DIR := work_dirs/demo_mib_bisenet_r18_toyvoc_15-5

.PHONY: install demo test test-fast bench toy clean

install:
	bash tools/install.sh

toy: install
	$(PY) tools/make_toy_voc.py --out $(TOY) --seed 0

demo: toy
	$(PY) tools/run_incremental.py configs/mib/bisenet_r18_toyvoc_15-5_step0.py \
		--work-dir $(DEMO_DIR) --data-root $(TOY)

test: install
	$(PY) -m pytest tests -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest tests -q -p no:cacheprovider -m "not slow"

bench: install
	$(PY) tools/benchmark.py --json docs/benchmarks.json
	$(PY) tools/benchmark.py --render docs/benchmarks.json --md docs/benchmarks.md

clean:
	rm -rf work_dirs $(TOY)
