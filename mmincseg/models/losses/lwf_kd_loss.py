"""Learning without Forgetting distillation (Li & Hoiem), as used for segmentation by MiB's LwF
baseline: the student's first ``C_old`` channels are distilled towards the frozen teacher."""
from typing import Optional

import torch
from torch import Tensor

from mmseg.registry import MODELS

from .base import WeightedLoss
from .unbiased_kd_loss import check_distillation_shapes, valid_mean


def lwf_kd(logits: Tensor, old_logits: Tensor, alpha: float = 1.0,
           valid_mask: Optional[Tensor] = None) -> Tensor:
    """LwF knowledge distillation loss on the old channels.

    ``-mean_pixels(mean_c p_c log q_c)`` with ``p = softmax(alpha * old_logits)`` and
    ``log q = log_softmax(logits[:, :C_old])`` (the student is renormalised over the old channels
    only; its new channels get no gradient). The per-pixel mean over the ``C_old`` channels is the
    normalisation of the reference MiB code. With ``valid_mask`` the mean over pixels is taken
    over its pixels (:func:`~mmincseg.models.losses.unbiased_kd_loss.valid_mean`).

    Computed in float32 whatever the input dtype or autocast state.

    Args:
        logits (Tensor): Student logits, has a shape (N, C, H, W).
        old_logits (Tensor): Teacher logits, has a shape (N, C_old, H, W), same N, H, W.
        alpha (float): Scale of the teacher logits before the softmax. Defaults to 1.0.
        valid_mask (Tensor, optional): Pixels to average over (e.g. not batch padding), bool or
            float, has a shape (N, 1, H, W) or (N, H, W). Defaults to None (every pixel).

    Returns:
        Tensor: Scalar float32 loss.

    Raises:
        ValueError: if the shapes do not match.
    """
    check_distillation_shapes(logits, old_logits, 'lwf_kd')
    num_old = old_logits.shape[1]
    with torch.autocast(device_type=logits.device.type, enabled=False):
        student_log_prob = torch.log_softmax(logits[:, :num_old].float(), dim=1)
        teacher_prob = torch.softmax(old_logits.float() * alpha, dim=1)
        per_pixel = (teacher_prob * student_log_prob).sum(dim=1) / num_old
        return -valid_mean(per_pixel, valid_mask, 'lwf_kd')


@MODELS.register_module()
class LwFKDLoss(WeightedLoss):
    """LwF knowledge distillation between student and frozen teacher logits.

    Args:
        alpha (float): Scale of the teacher logits before the softmax. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0 (MiB's LwF baseline used 100).
        loss_name (str): Name of the loss item. Defaults to 'loss_kd'.
    """

    def __init__(self, alpha: float = 1.0, loss_weight: float = 1.0,
                 loss_name: str = 'loss_kd') -> None:
        super().__init__(loss_weight, loss_name)
        self.alpha = alpha

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
        return self.loss_weight * lwf_kd(
            logits, old_logits, alpha=self.alpha, valid_mask=valid_mask)

    def extra_repr(self) -> str:
        return f'alpha={self.alpha}, loss_weight={self.loss_weight}'
