"""MiB unbiased knowledge distillation (Cermelli et al., CVPR 2020, Eq. 5).

The old model predicts background where the current step's classes may be; the student therefore
scores the teacher's background with the softmax mass of "background or any new class".
"""
import torch
import torch.nn as nn
from torch import Tensor

from mmseg.registry import MODELS


def check_distillation_shapes(logits: Tensor, old_logits: Tensor, caller: str) -> None:
    """Check that student and teacher logits can be distilled channel by channel.

    Args:
        logits (Tensor): Student logits, has a shape (N, C, H, W).
        old_logits (Tensor): Teacher logits, has a shape (N, C_old, H, W) with ``C_old <= C``.
        caller (str): Name used in the error message.

    Raises:
        ValueError: if the batch or spatial sizes differ, or the teacher has more channels.
    """
    if logits.dim() < 2 or logits.dim() != old_logits.dim():
        raise ValueError(f'{caller}: logits {tuple(logits.shape)} and old_logits '
                         f'{tuple(old_logits.shape)} must both be (N, C, H, W)')
    if logits.shape[:1] + logits.shape[2:] != old_logits.shape[:1] + old_logits.shape[2:]:
        raise ValueError(f'{caller}: student logits {tuple(logits.shape)} and teacher old_logits '
                         f'{tuple(old_logits.shape)} differ in batch or spatial size; resize the '
                         f'teacher output to the student output (e.g. mmseg.models.utils.resize) '
                         f'before calling the loss')
    if old_logits.shape[1] < 1 or old_logits.shape[1] > logits.shape[1]:
        raise ValueError(f'{caller}: the teacher has {old_logits.shape[1]} channels, the '
                         f'student {logits.shape[1]}; the student must extend the teacher '
                         f'(1 <= C_old <= C)')


def unbiased_kd(logits: Tensor, old_logits: Tensor, alpha: float = 1.0) -> Tensor:
    """MiB unbiased knowledge distillation loss.

    With teacher probabilities ``p = softmax(alpha * old_logits)`` over its ``C_old`` channels and
    student log-probabilities ``log q`` where background is
    ``logsumexp(logits[:, [0, C_old, ..., C-1]]) - logsumexp(logits)`` and old class ``c`` in
    ``1..C_old-1`` is ``logits[:, c] - logsumexp(logits)``, the loss is
    ``-mean_pixels(sum_c p_c log q_c / C_old)`` (the normalisation of the reference MiB code).
    No new classes (``C == C_old``) gives the plain cross-entropy between the two distributions.

    Computed in float32 whatever the input dtype or autocast state. Gradients flow to both inputs;
    run the teacher under ``torch.no_grad()`` (or detach it) as usual.

    Args:
        logits (Tensor): Student logits, has a shape (N, C, H, W).
        old_logits (Tensor): Teacher logits, has a shape (N, C_old, H, W), same N, H, W.
        alpha (float): Scale of the teacher logits before the softmax. Defaults to 1.0.

    Returns:
        Tensor: Scalar float32 loss.

    Raises:
        ValueError: if the shapes do not match (see :func:`check_distillation_shapes`).
    """
    check_distillation_shapes(logits, old_logits, 'unbiased_kd')
    num_old = old_logits.shape[1]
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits = logits.float()
        teacher_prob = torch.softmax(old_logits.float() * alpha, dim=1)  # (N, C_old, H, W)
        log_norm = torch.logsumexp(logits, dim=1, keepdim=True)  # (N, 1, H, W)
        background = logits[:, :1]
        if logits.shape[1] > num_old:  # background absorbs the new classes
            background = torch.logaddexp(
                background, torch.logsumexp(logits[:, num_old:], dim=1, keepdim=True))
        per_pixel = teacher_prob[:, :1] * (background - log_norm)
        if num_old > 1:
            old_log_prob = logits[:, 1:num_old] - log_norm
            per_pixel = per_pixel + (teacher_prob[:, 1:] * old_log_prob).sum(dim=1, keepdim=True)
        return -(per_pixel / num_old).mean()


@MODELS.register_module()
class UnbiasedKDLoss(nn.Module):
    """MiB unbiased knowledge distillation between student and frozen teacher logits.

    Args:
        alpha (float): Scale of the teacher logits before the softmax. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss (MiB's lambda). Defaults to 10.0.
        loss_name (str): Name of the loss item. Defaults to 'loss_kd'.
    """

    def __init__(self, alpha: float = 1.0, loss_weight: float = 10.0,
                 loss_name: str = 'loss_kd') -> None:
        super().__init__()
        self.alpha = alpha
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, logits: Tensor, old_logits: Tensor) -> Tensor:
        """Compute the weighted loss.

        Args:
            logits (Tensor): Student logits, has a shape (N, C, H, W).
            old_logits (Tensor): Teacher logits, has a shape (N, C_old, H, W).

        Returns:
            Tensor: Scalar loss times ``loss_weight``.
        """
        return self.loss_weight * unbiased_kd(logits, old_logits, alpha=self.alpha)

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item."""
        return self._loss_name

    def extra_repr(self) -> str:
        return f'alpha={self.alpha}, loss_weight={self.loss_weight}'
