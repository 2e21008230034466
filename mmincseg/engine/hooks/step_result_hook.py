"""Hook that records a step's final metrics and timings in ``<work_dir>/step_result.json``."""
import json
import math
import time
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils.io import atomic_write

RESULT_FILE = 'step_result.json'


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _clean_metrics(metrics: Optional[dict]) -> dict:
    """Metrics as JSON-ready values: numbers as float, NaN as None."""
    return {k: _clean(float(v)) if isinstance(v, (int, float)) else v
            for k, v in (metrics or {}).items()}


@HOOKS.register_module()
class StepResultHook(Hook):
    """Keep the last validation metrics; after training write them with the training time.

    With ``test=True`` the trained model is also evaluated on the runner's test split by its own
    test loop (``test_dataloader`` / ``test_evaluator``) once training ends, and those metrics are
    stored as ``test_metrics`` (the toy's held-out split: choices are made on val, tables report
    test). The file marks the step as finished: ``tools/run_incremental.py`` skips such steps and
    ``tools/train.py`` refuses to overwrite them without ``--force``.

    Args:
        info (dict, optional): Extra fields (task, step, method...) stored in the file.
        test (bool): Evaluate the test split after training. Defaults to False.
    """

    priority = 'LOW'

    def __init__(self, info: Optional[dict] = None, test: bool = False) -> None:
        self.info = dict(info or {})
        self.test = test
        self.metrics: dict = {}
        self._start = None

    def before_train(self, runner) -> None:
        self._start = time.time()

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self.metrics = _clean_metrics(metrics)

    def after_train(self, runner) -> None:
        seconds = round(time.time() - self._start, 1) if self._start else None
        result = dict(self.info)
        result.update(metrics=self.metrics, train_seconds=seconds, iters=runner.iter,
                      epochs=runner.epoch)
        if self.test:  # every rank runs the loop (its evaluator gathers across ranks)
            result['test_metrics'] = _clean_metrics(runner.test_loop.run())
        if not is_main_process():
            return
        with atomic_write(f'{runner.work_dir}/{RESULT_FILE}') as f:
            json.dump(result, f, indent=2)
