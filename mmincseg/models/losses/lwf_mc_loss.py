"""LwF-MC: multi-class (sigmoid) LwF, iCaRL's distillation without exemplars, as MiB's baseline.

MiB's ``--method LWF-MC`` (its ``--icarl`` flag, combined form) trains every step, step 0
included, with one binary cross-entropy per channel against the one-hot label
(:func:`one_hot_bce`) and, at steps > 0, adds ten times a binary cross-entropy between the
student's old channels and the teacher's sigmoid outputs (:func:`lwf_mc_kd`). Both sum over
channels and average over pixels, as MiB's code does, so its weight 10 carries over.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import WeightedLoss
from .unbiased_kd_loss import check_distillation_shapes, valid_mean


def one_hot_bce(logits: Tensor, labels: Tensor, ignore_index: int = 255,
                weight: Optional[Tensor] = None) -> Tensor:
    """Per-channel binary cross-entropy against the one-hot label (MiB's
    ``BCEWithLogitsLossWithIgnoreIndex``).

    ``sum_c BCE(logits_c, [label == c])`` per pixel, summed over **all** C channels (not averaged:
    mmseg's ``CrossEntropyLoss(use_sigmoid=True, avg_non_ignore=True)`` is this divided by C),
    then the mean over the pixels whose label is not ``ignore_index``. MiB takes the mean over
    every pixel with ignored ones counted as 0, but turns void into background in training, so
    in its runs the two agree; here 255 and batch padding never dilute the loss, as for every
    other segmentation loss of the project. 0 when every pixel is ignored.

    Computed in float32 whatever the input dtype or autocast state.

    Args:
        logits (Tensor): Logits, has a shape (N, C, H, W).
        labels (Tensor): Labels in ``[0, C)`` or ``ignore_index``, has a shape (N, H, W).
        ignore_index (int): Ignored label value. Defaults to 255.
        weight (Tensor, optional): Per-pixel weight, has a shape (N, H, W). Defaults to None.

    Returns:
        Tensor: Scalar float32 loss.

    Raises:
        ValueError: if the shapes do not match or a label is out of range.
    """
    if logits.dim() != 4 or labels.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f'one_hot_bce: logits {tuple(logits.shape)} must be (N, C, H, W) and '
                         f'labels {tuple(labels.shape)} (N, H, W) of the same N, H, W')
    num_classes = logits.shape[1]
    valid = labels != ignore_index
    safe = torch.where(valid, labels, torch.zeros_like(labels)).long()
    if safe.numel() and (int(safe.min()) < 0 or int(safe.max()) >= num_classes):
        raise ValueError(f'one_hot_bce: labels must lie in [0, {num_classes}) or be '
                         f'{ignore_index}; got values in [{int(safe.min())}, {int(safe.max())}]')
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        targets = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).float()
        per_pixel = F.binary_cross_entropy_with_logits(logits, targets, reduction='none').sum(1)
        mask = valid.float() if weight is None else valid.float() * weight.float()
        return (per_pixel * mask).sum() / valid.sum().clamp(min=1)


def lwf_mc_kd(logits: Tensor, old_logits: Tensor, valid_mask: Optional[Tensor] = None) -> Tensor:
    """LwF-MC distillation: binary cross-entropy of the old channels towards the teacher's
    sigmoid outputs.

    ``sum_{c < C_old} BCE(logits_c, sigmoid(old_logits_c))`` per pixel, i.e. every old channel
    (background included) is distilled as an independent two-class problem whose soft target is
    the teacher's sigmoid probability; the new channels get no gradient. The per-pixel **sum**
    over the ``C_old`` channels, then the mean over pixels, is MiB's normalisation
    (``C_old * BCEWithLogitsLoss(reduction='mean')`` on the sliced logits). With ``valid_mask`` the
    mean is taken over its pixels (:func:`~mmincseg.models.losses.unbiased_kd_loss.valid_mean`).

    Computed in float32 whatever the input dtype or autocast state.

    Args:
        logits (Tensor): Student logits, has a shape (N, C, H, W).
        old_logits (Tensor): Teacher logits, has a shape (N, C_old, H, W), same N, H, W.
        valid_mask (Tensor, optional): Pixels to average over (e.g. not batch padding), bool or
            float, has a shape (N, 1, H, W) or (N, H, W). Defaults to None (every pixel).

    Returns:
        Tensor: Scalar float32 loss.

    Raises:
        ValueError: if the shapes do not match.
    """
    check_distillation_shapes(logits, old_logits, 'lwf_mc_kd')
    num_old = old_logits.shape[1]
    with torch.autocast(device_type=logits.device.type, enabled=False):
        targets = torch.sigmoid(old_logits.float())
        per_channel = F.binary_cross_entropy_with_logits(logits[:, :num_old].float(), targets,
                                                         reduction='none')
        return valid_mean(per_channel.sum(1, keepdim=True), valid_mask, 'lwf_mc_kd')


@MODELS.register_module()
class OneHotBCELoss(WeightedLoss):
    """:func:`one_hot_bce` as an mmseg decode-head loss (LwF-MC's segmentation loss).

    Drop-in for ``CrossEntropyLoss`` in a head's ``loss_decode``; called by
    ``BaseDecodeHead.loss_by_feat`` as ``loss(seg_logits, seg_label, weight=..., ignore_index=...)``.

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item. Defaults to 'loss_bce'.
    """

    def __init__(self, loss_weight: float = 1.0, loss_name: str = 'loss_bce') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, cls_score: Tensor, label: Tensor, weight: Optional[Tensor] = None,
                ignore_index: int = 255, **kwargs) -> Tensor:
        """Compute the weighted loss.

        Args:
            cls_score (Tensor): Logits, has a shape (N, C, H, W).
            label (Tensor): Labels, has a shape (N, H, W).
            weight (Tensor, optional): Per-pixel weight, has a shape (N, H, W). Defaults to None.
            ignore_index (int): Ignored label value. Defaults to 255.
            **kwargs: Other arguments of mmseg's loss call (``avg_factor``...), ignored.

        Returns:
            Tensor: Scalar loss times ``loss_weight``.
        """
        return self.loss_weight * one_hot_bce(cls_score, label, ignore_index, weight)

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'


@MODELS.register_module()
class LwFMCKDLoss(WeightedLoss):
    """:func:`lwf_mc_kd` between student and frozen teacher logits.

    Args:
        loss_weight (float): Multiplier of the loss. Defaults to 10.0 (MiB's LwF-MC).
        loss_name (str): Name of the loss item. Defaults to 'loss_kd'.
    """

    def __init__(self, loss_weight: float = 10.0, loss_name: str = 'loss_kd') -> None:
        super().__init__(loss_weight, loss_name)

    def forward(self, logits: Tensor, old_logits: Tensor,
                valid_mask: Optional[Tensor] = None) -> Tensor:
        """Compute the weighted loss.

        Args:
            logits (Tensor): Student logits, has a shape (N, C, H, W).
            old_logits (Tensor): Teacher logits, has a shape (N, C_old, H, W).
            valid_mask (Tensor, optional): Pixels to average over, has a shape (N, 1, H, W) or
                (N, H, W). Defaults to None (every pixel).

        Returns:
            Tensor: Scalar loss times ``loss_weight``.
        """
        return self.loss_weight * lwf_mc_kd(logits, old_logits, valid_mask=valid_mask)

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
