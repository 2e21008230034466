from .config import METHODS, check_incremental, resolve_incremental_config, set_data_root
from .run import collect_summary, run_incremental
from .runner import IncrementalRunner, finish_distributed
from .train import load_step_config, test_step, train_step
from . import toy_pretrain  # noqa: F401,E402  (registers the mmincseg-toy:// checkpoint scheme)

__all__ = ['METHODS', 'check_incremental', 'resolve_incremental_config', 'set_data_root',
           'run_incremental', 'collect_summary', 'IncrementalRunner', 'finish_distributed',
           'load_step_config', 'train_step', 'test_step']
