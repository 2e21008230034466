"""MiB unbiased knowledge distillation (Cermelli et al., CVPR 2020, Eq. 5).

The old model predicts background where the current step's classes may be; the student therefore
scores the teacher's background with the softmax mass of "background or any new class".
"""
from typing import Optional

import torch
from torch import Tensor

from mmseg.registry import MODELS

from .base import WeightedLoss


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


def valid_mean(values: Tensor, valid_mask: Optional[Tensor] = None, caller: str = 'loss') -> Tensor:
    """Mean of per-pixel ``values`` over the valid pixels (all pixels without a mask).

    ``sum(valid_mask * values) / sum(valid_mask)``, the mask broadcast over the channels of
    ``values``; 0 when no pixel is valid. Used by the distillation losses to leave out the
    cells that batch padding made (see ``IncrementalEncoderDecoder.distill_valid_mask``).
    Masked-out values get zero gradient; they must be finite (``0 * inf`` is NaN).

    Args:
        values (Tensor): Per-pixel values, has a shape (N, C, H, W) or (N, H, W).
        valid_mask (Tensor, optional): Bool or float weights in [0, 1], has a shape
            (N, 1, H, W) or (N, H, W). None: the plain ``values.mean()``.
        caller (str): Name used in the error message. Defaults to 'loss'.

    Returns:
        Tensor: Scalar, in the dtype of ``values``.

    Raises:
        ValueError: if the mask's batch or spatial size differs from the values'.
    """
    if valid_mask is None:
        return values.mean()
    if valid_mask.dim() == 3 and values.dim() == 4:
        valid_mask = valid_mask.unsqueeze(1)
    elif valid_mask.dim() == 4 and values.dim() == 3 and valid_mask.shape[1] == 1:
        valid_mask = valid_mask.squeeze(1)
    if valid_mask.dim() != values.dim() or valid_mask.shape[0] != values.shape[0] or \
            valid_mask.shape[-2:] != values.shape[-2:] or \
            (values.dim() == 4 and valid_mask.shape[1] not in (1, values.shape[1])):
        raise ValueError(f'{caller}: valid_mask {tuple(valid_mask.shape)} does not match the '
                         f'per-pixel values {tuple(values.shape)}; give it a shape (N, 1, H, W) '
                         f'or (N, H, W) at the resolution of the distilled tensors')
    weight = valid_mask.to(values.dtype)
    count = weight.sum() * (values.numel() // weight.numel())
    return (values * weight).sum() / count.clamp(min=torch.finfo(values.dtype).tiny)


def unbiased_kd(logits: Tensor, old_logits: Tensor, alpha: float = 1.0,
                valid_mask: Optional[Tensor] = None) -> Tensor:
    """MiB unbiased knowledge distillation loss.

    With teacher probabilities ``p = softmax(alpha * old_logits)`` over its ``C_old`` channels and
    student log-probabilities ``log q`` where background is
    ``logsumexp(logits[:, [0, C_old, ..., C-1]]) - logsumexp(logits)`` and old class ``c`` in
    ``1..C_old-1`` is ``logits[:, c] - logsumexp(logits)``, the loss is
    ``-mean_pixels(sum_c p_c log q_c / C_old)`` (the normalisation of the reference MiB code),
    the mean taken over the pixels of ``valid_mask`` when one is given (:func:`valid_mean`).
    No new classes (``C == C_old``) gives the plain cross-entropy between the two distributions.

    Computed in float32 whatever the input dtype or autocast state. Gradients flow to both inputs;
    run the teacher under ``torch.no_grad()`` (or detach it) as usual.

    Args:
        logits (Tensor): Student logits, has a shape (N, C, H, W).
        old_logits (Tensor): Teacher logits, has a shape (N, C_old, H, W), same N, H, W.
        alpha (float): Scale of the teacher logits before the softmax. Defaults to 1.0.
        valid_mask (Tensor, optional): Pixels to average over (e.g. not batch padding), bool or
            float, has a shape (N, 1, H, W) or (N, H, W). Defaults to None (every pixel).

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
        return -valid_mean(per_pixel / num_old, valid_mask, 'unbiased_kd')


@MODELS.register_module()
class UnbiasedKDLoss(WeightedLoss):
    """MiB unbiased knowledge distillation between student and frozen teacher logits.

    Args:
        alpha (float): Scale of the teacher logits before the softmax. Defaults to 1.0.
        loss_weight (float): Multiplier of the loss (MiB's lambda). Defaults to 10.0.
        loss_name (str): Name of the loss item. Defaults to 'loss_kd'.
    """

    def __init__(self, alpha: float = 1.0, loss_weight: float = 10.0,
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
        return self.loss_weight * unbiased_kd(
            logits, old_logits, alpha=self.alpha, valid_mask=valid_mask)

    def extra_repr(self) -> str:
        return f'alpha={self.alpha}, loss_weight={self.loss_weight}'
