"""ILT feature distillation (Michieli & Zanuttigh, 2019): mean squared error between the student's
and the frozen teacher's intermediate features."""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from mmseg.registry import MODELS

from .base import WeightedLoss
from .unbiased_kd_loss import valid_mean

Features = Union[Tensor, Sequence[Tensor]]
Masks = Union[Tensor, Sequence[Optional[Tensor]]]


def feature_distillation(features: Features, old_features: Features,
                         valid_mask: Optional[Masks] = None) -> Tensor:
    """Mean squared error between student and teacher features.

    Computed in float32 whatever the input dtype or autocast state.

    Args:
        features (Tensor | Sequence[Tensor]): Student features, each of any shape, e.g.
            (N, C, H, W); a sequence (e.g. a backbone's multi-level outputs) is averaged.
        old_features (Tensor | Sequence[Tensor]): Teacher features, the same number of tensors with
            the same shapes.
        valid_mask (Tensor | Sequence[Tensor | None], optional): Cells to average over (e.g. not
            batch padding), bool or float, one (N, 1, H, W) or (N, H, W) mask per feature tensor
            at its resolution (a single tensor: one feature tensor). A level's MSE is then the
            mean of its squared error over the valid cells and every channel
            (:func:`~mmincseg.models.losses.unbiased_kd_loss.valid_mean`). Defaults to None (every
            element).

    Returns:
        Tensor: Scalar float32 loss, the mean over the tensors of their element-wise MSE.

    Raises:
        ValueError: if the numbers of tensors or their shapes differ, or no tensor is given, or
            the masks do not match the features.
    """
    if isinstance(features, Tensor):
        features = [features]
    if isinstance(old_features, Tensor):
        old_features = [old_features]
    features, old_features = list(features), list(old_features)
    if not features or len(features) != len(old_features):
        raise ValueError(f'feature_distillation: got {len(features)} student and '
                         f'{len(old_features)} teacher feature tensors; need the same non-zero '
                         f'number')
    for level, (student, teacher) in enumerate(zip(features, old_features)):
        if student.shape != teacher.shape:
            raise ValueError(f'feature_distillation: level {level}: student features '
                             f'{tuple(student.shape)} and teacher features {tuple(teacher.shape)} '
                             f'must have the same shape (distil the same layer of both models)')
    if valid_mask is None:
        masks = [None] * len(features)
    else:
        masks = [valid_mask] if isinstance(valid_mask, Tensor) else list(valid_mask)
    if len(masks) != len(features):
        raise ValueError(f'feature_distillation: got {len(masks)} valid_mask for {len(features)} '
                         f'feature tensors; give one per feature tensor, at its resolution')
    with torch.autocast(device_type=features[0].device.type, enabled=False):
        losses = [
            F.mse_loss(student.float(), teacher.float()) if mask is None else valid_mean(
                (student.float() - teacher.float()).square(), mask, 'feature_distillation')
            for student, teacher, mask in zip(features, old_features, masks)
        ]
        return torch.stack(losses).mean()


@MODELS.register_module()
class FeatureDistillationLoss(WeightedLoss):
    """ILT feature distillation: MSE between student and teacher features.

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.0 (MiB's ILT baseline used 100).
        loss_name (str): Name of the loss item. Defaults to 'loss_feat_kd'.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_feat_kd') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, features: Features, old_features: Features,
                valid_mask: Optional[Masks] = None) -> Tensor:
        """Compute the weighted loss.

        Args:
            features (Tensor | Sequence[Tensor]): Student features.
            old_features (Tensor | Sequence[Tensor]): Teacher features of the same shapes.
            valid_mask (Tensor | Sequence[Tensor | None], optional): One mask per feature tensor
                (see :func:`feature_distillation`). Defaults to None (every element).

        Returns:
            Tensor: Scalar loss times ``loss_weight``.
        """
        return self.loss_weight * feature_distillation(features, old_features, valid_mask)

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
