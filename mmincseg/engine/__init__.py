from .hooks import IncrementalStepHook
from .loops import ResumableEpochBasedTrainLoop
from .optim_wrapper import CPUAmpOptimWrapper

__all__ = ['IncrementalStepHook', 'ResumableEpochBasedTrainLoop',
           'CPUAmpOptimWrapper']
