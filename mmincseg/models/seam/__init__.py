"""SEAM: CAM network with Pixel Correlation Module, its losses and CAM inference."""
from .equivariance import EquivariantTransform
from .inference import cams_to_pseudo_label, infer_cams
from .losses import (adaptive_min_pool_loss, background_from_foreground, cam_cls_loss,
                     equivariant_cross_reg_loss, equivariant_reg_loss, mask_cams, max_norm,
                     max_onehot, min_max_norm, negative_region_loss, topk_l1_loss)
from .pcm import PixelCorrelationModule, pcm_cam_input
from .seam_net import SEAMNet

__all__ = [
    'SEAMNet', 'PixelCorrelationModule', 'pcm_cam_input', 'EquivariantTransform', 'infer_cams',
    'cams_to_pseudo_label', 'max_norm', 'mask_cams', 'background_from_foreground', 'cam_cls_loss',
    'equivariant_reg_loss', 'equivariant_cross_reg_loss', 'topk_l1_loss', 'min_max_norm',
    'max_onehot', 'adaptive_min_pool_loss', 'negative_region_loss'
]
