from .config import check_incremental, resolve_incremental_config, set_data_root
from .methods import METHODS, Method, get_method
from .plan import StepPlan, plan_step
from .run import collect_summary, describe_run, plan_run, run_incremental
from .runner import IncrementalRunner, finish_distributed
from .train import load_step_config, test_step, train_resolved, train_step
from . import toy_pretrain  # noqa: F401,E402  (registers the mmincseg-toy:// checkpoint scheme)

__all__ = ['METHODS', 'Method', 'get_method', 'check_incremental', 'resolve_incremental_config', 'set_data_root',
           'StepPlan', 'plan_step', 'run_incremental', 'plan_run', 'describe_run',
           'collect_summary', 'IncrementalRunner', 'finish_distributed', 'load_step_config',
           'train_step', 'train_resolved', 'test_step']
