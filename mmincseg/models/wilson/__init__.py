"""WILSON (Cermelli et al., CVPR 2022): new classes of a step from image-level labels."""
from .localizer import WilsonLocalizer
from .pamr import pamr
from .targets import (balanced_mask_ce, confident_masks, image_weights, label_mask,
                      localizer_cls_loss, localizer_prior_loss, ngwp_scores, segmentation_targets,
                      soft_pseudo_labels, wilson_seg_loss)

__all__ = [
    'WilsonLocalizer', 'ngwp_scores', 'label_mask', 'soft_pseudo_labels', 'segmentation_targets',
    'image_weights', 'localizer_prior_loss', 'localizer_cls_loss', 'wilson_seg_loss',
    'confident_masks', 'balanced_mask_ce', 'pamr'
]
