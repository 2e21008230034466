from .channels_last_hook import ChannelsLastHook, to_channels_last
from .incremental_step_hook import IncrementalStepHook, find_last_checkpoint, load_teacher
from .parameter_importance_hook import IMPORTANCE_KEY, ParameterImportanceHook
from .pseudo_label_threshold_hook import PseudoLabelThresholdHook, pseudo_label_thresholds
from .step_result_hook import StepResultHook
from .visualization_hook import EvaluatedImageVisualizationHook

__all__ = ['ChannelsLastHook', 'EvaluatedImageVisualizationHook', 'IMPORTANCE_KEY',
           'IncrementalStepHook', 'ParameterImportanceHook', 'PseudoLabelThresholdHook',
           'pseudo_label_thresholds', 'StepResultHook', 'find_last_checkpoint', 'load_teacher',
           'to_channels_last']
