from .incremental_step_hook import IncrementalStepHook, find_last_checkpoint, load_teacher
from .step_result_hook import StepResultHook

__all__ = ['IncrementalStepHook', 'StepResultHook', 'find_last_checkpoint', 'load_teacher']
