from .hooks import IncrementalStepHook
from .runner import IncrementalRunner

__all__ = ['IncrementalStepHook', 'IncrementalRunner']
