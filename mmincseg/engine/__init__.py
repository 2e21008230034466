from .hooks import IncrementalStepHook
from .loops import ResumableEpochBasedTrainLoop
from .optim_wrapper import CPUAmpOptimWrapper
from .runner import IncrementalRunner

__all__ = ['IncrementalStepHook', 'IncrementalRunner', 'ResumableEpochBasedTrainLoop',
           'CPUAmpOptimWrapper']
