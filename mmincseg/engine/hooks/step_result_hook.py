"""Hook that records a step's final metrics and timings in ``<work_dir>/step_result.json``."""
import json
import math
import time
from typing import Optional

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...utils.io import atomic_write

RESULT_FILE = 'step_result.json'


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@HOOKS.register_module()
class StepResultHook(Hook):
    """Keep the last validation metrics; after training write them with the training time.

    The file marks the step as finished: ``tools/run_incremental.py`` skips such steps and
    ``tools/train.py`` refuses to overwrite them without ``--force``.

    Args:
        info (dict, optional): Extra fields (task, step, method...) stored in the file.
    """

    priority = 'LOW'

    def __init__(self, info: Optional[dict] = None) -> None:
        self.info = dict(info or {})
        self.metrics: dict = {}
        self._start = None

    def before_train(self, runner) -> None:
        self._start = time.time()

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self.metrics = {k: _clean(float(v)) if isinstance(v, (int, float)) else v
                        for k, v in (metrics or {}).items()}

    @master_only
    def after_train(self, runner) -> None:
        result = dict(self.info)
        result.update(
            metrics=self.metrics,
            train_seconds=round(time.time() - self._start, 1) if self._start else None,
            iters=runner.iter,
            epochs=runner.epoch)
        with atomic_write(f'{runner.work_dir}/{RESULT_FILE}') as f:
            json.dump(result, f, indent=2)
