from .head_loss import head_loss_by_feat, pixel_accuracy
from .pseudo_label import (EntropyHistogram, classif_adaptive_factor, entropy_pseudo_labels,
                           histogram_median, scaled_entropy)

__all__ = ['head_loss_by_feat', 'pixel_accuracy', 'EntropyHistogram', 'classif_adaptive_factor',
           'entropy_pseudo_labels', 'histogram_median', 'scaled_entropy']
