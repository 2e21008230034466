from .feature_distillation_loss import FeatureDistillationLoss, feature_distillation
from .lwf_kd_loss import LwFKDLoss, lwf_kd
from .lwf_mc_loss import LwFMCKDLoss, OneHotBCELoss, lwf_mc_kd, one_hot_bce
from .parameter_regularizer import (ACCUMULATORS, EWCImportance, ParameterPenaltyLoss,
                                    PathIntegralImportance, RiemannianWalkImportance,
                                    parameter_penalty)
from .pod_loss import LocalPODLoss, local_pod, pod_distillation
from .unbiased_cross_entropy_loss import UnbiasedCrossEntropyLoss, unbiased_cross_entropy
from .unbiased_kd_loss import UnbiasedKDLoss, unbiased_kd

__all__ = [
    'unbiased_cross_entropy', 'UnbiasedCrossEntropyLoss', 'unbiased_kd', 'UnbiasedKDLoss', 'lwf_kd',
    'LwFKDLoss', 'feature_distillation', 'FeatureDistillationLoss', 'lwf_mc_kd', 'LwFMCKDLoss',
    'one_hot_bce', 'OneHotBCELoss', 'parameter_penalty', 'ParameterPenaltyLoss', 'ACCUMULATORS',
    'EWCImportance', 'PathIntegralImportance', 'RiemannianWalkImportance',
    'local_pod', 'pod_distillation', 'LocalPODLoss'
]
