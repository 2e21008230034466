"""MiB unbiased cross-entropy (Cermelli et al., CVPR 2020, Eq. 4).

At step t the ground truth only annotates the classes of step t; everything else, old classes
included, is labelled background. The unbiased cross-entropy therefore scores a background pixel
with the probability of "background or any old class", i.e. the softmax mass of channels
``[0, old_classes)``.
"""
from typing import Optional

import torch
from torch import Tensor

from mmseg.registry import MODELS

from .base import WeightedLoss


def unbiased_cross_entropy(logits: Tensor,
                           labels: Tensor,
                           old_classes: int,
                           ignore_index: int = 255,
                           weight: Optional[Tensor] = None) -> Tensor:
    """MiB unbiased cross-entropy, averaged over the non-ignored pixels.

    The log-probability of background is replaced by
    ``logsumexp(logits[:, :old_classes]) - logsumexp(logits)``; pixels of a new class (label
    ``>= old_classes``) use their own log-probability; labels of old classes
    ``1..old_classes-1`` are treated as background. With ``old_classes <= 1`` this is the standard
    cross-entropy.

    The loss is computed in float32 whatever the input dtype or autocast state.

    Args:
        logits (Tensor): Student logits, has a shape (N, C, H, W) (any number of trailing
            spatial dims, or none).
        labels (Tensor): Integer labels, has a shape (N, H, W); values in ``[0, C)`` or
            ``ignore_index``.
        old_classes (int): Number of old-model channels, background included (the first
            ``old_classes`` channels). 0 or 1 gives the plain cross-entropy.
        ignore_index (int): Label value that is ignored. Defaults to 255.
        weight (Tensor, optional): Per-pixel weight, has the shape of ``labels`` (as produced by
            mmseg's pixel samplers). The weighted sum is still divided by the number of non-ignored
            pixels. Defaults to None.

    Returns:
        Tensor: Scalar float32 loss. 0 (with an all-zero gradient) when every pixel is ignored.

    Raises:
        ValueError: if the shapes of ``logits`` / ``labels`` / ``weight`` disagree or
            ``old_classes`` exceeds the number of channels.
    """
    if logits.dim() < 2 or labels.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f'unbiased_cross_entropy: logits of shape {tuple(logits.shape)} '
                         f'(N, C, H, W) need labels of shape (N, H, W), got '
                         f'{tuple(labels.shape)}')
    num_channels = logits.shape[1]
    if old_classes < 0 or old_classes > num_channels:
        raise ValueError(f'unbiased_cross_entropy: old_classes={old_classes} must lie in '
                         f'[0, {num_channels}] (the number of logit channels)')
    if weight is not None and weight.shape != labels.shape:
        raise ValueError(f'unbiased_cross_entropy: weight of shape {tuple(weight.shape)} must have '
                         f'the shape of labels {tuple(labels.shape)}')
    # Background absorbs the old classes; with 0 or 1 old channel this is channel 0 alone.
    num_merged = max(int(old_classes), 1)

    with torch.autocast(device_type=logits.device.type, enabled=False):
        valid = labels != ignore_index
        labels = labels.long()
        # Old-class labels (and background) -> 0; ignored pixels -> 0 too, weighted out below.
        target = torch.where(valid & (labels >= num_merged), labels, torch.zeros_like(labels))
        scale = valid.float()
        if weight is not None:
            scale = scale * weight.float()
        scale = scale / valid.sum().clamp(min=1)
        return _UnbiasedCrossEntropy.apply(logits.float(), target, scale, num_merged)


class _UnbiasedCrossEntropy(torch.autograd.Function):
    """Fused forward/backward of the unbiased cross-entropy.

    One exponential pass over the logits, kept for the analytic gradient (softmax minus the
    target distribution: at a background pixel the old channels' share of the merged background,
    at a new-class pixel the one-hot label). Old and new channels are exponentiated against their
    own maxima, so the merged background never underflows, whatever the logit range.
    Autograd through two ``logsumexp`` and a ``gather`` costs about three times as much on CPU.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, scale: Tensor, num_merged: int) -> Tensor:
        old = logits[:, :num_merged]
        max_old = old.amax(1, keepdim=True)
        exp_old = (old - max_old).exp_()
        sum_old = exp_old.sum(1, keepdim=True)  # >= 1: log-safe
        log_old = max_old + sum_old.log()  # logsumexp over background + old classes
        if num_merged < logits.shape[1]:
            new = logits[:, num_merged:]
            max_all = torch.maximum(max_old, new.amax(1, keepdim=True))
            exp_new = (new - max_all).exp_()
            sum_all = exp_new.sum(1, keepdim=True) + sum_old * (max_old - max_all).exp()
            log_norm = max_all + sum_all.log()
            own = logits.gather(1, target.unsqueeze(1))
        else:  # every channel is old: every pixel is background, the loss is 0
            max_all, exp_new, log_norm, own = max_old, None, log_old, log_old
        is_bg = (target == 0).unsqueeze(1)
        nll = log_norm - torch.where(is_bg, log_old, own)
        ctx.save_for_backward(exp_old, exp_new, sum_old, max_old, max_all, log_norm, target,
                              is_bg, scale)
        ctx.num_merged = num_merged
        return (nll.squeeze(1) * scale).sum()

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (exp_old, exp_new, sum_old, max_old, max_all, log_norm, target, is_bg,
         scale) = ctx.saved_tensors
        g = grad_output * scale.unsqueeze(1)  # (N, 1, ...)
        k = ctx.num_merged
        grad = torch.empty(exp_old.shape[:1] + (k + (0 if exp_new is None else exp_new.shape[1]),)
                           + exp_old.shape[2:], dtype=exp_old.dtype, device=exp_old.device)
        # softmax_c = exp_c * exp(max - log_norm); background pixels subtract exp_c / sum_old
        torch.mul(exp_old, g * ((max_old - log_norm).exp() - is_bg / sum_old), out=grad[:, :k])
        if exp_new is not None:
            grad_new = grad[:, k:]
            torch.mul(exp_new, g * (max_all - log_norm).exp(), out=grad_new)
            grad_new.scatter_add_(1, (target.unsqueeze(1) - k).clamp_(min=0), -(g * ~is_bg))
        return grad, None, None, None


@MODELS.register_module()
class UnbiasedCrossEntropyLoss(WeightedLoss):
    """MiB unbiased cross-entropy as an mmseg decode-head loss.

    Drop-in for ``CrossEntropyLoss`` in a head's ``loss_decode``; called by
    ``BaseDecodeHead.loss_by_feat`` as
    ``loss(seg_logits, seg_label, weight=..., ignore_index=...)``.

    Args:
        old_classes (int): Number of old-model channels, background included; 0 at step 0 (plain
            cross-entropy). The incremental hook may set the attribute of the same name.
            Defaults to 0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        loss_name (str): Name of the loss item; must start with ``loss_`` to be back-propagated.
            Defaults to 'loss_ce'.
    """

    def __init__(self,
                 old_classes: int = 0,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce') -> None:
        super().__init__(loss_weight, loss_name)
        if old_classes < 0:
            raise ValueError(
                f'UnbiasedCrossEntropyLoss: old_classes must be >= 0, got {old_classes}')
        self.old_classes = int(old_classes)

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Compute the weighted loss.

        Args:
            cls_score (Tensor): Logits, has a shape (N, C, H, W).
            label (Tensor): Labels, has a shape (N, H, W).
            weight (Tensor, optional): Per-pixel weight, has a shape (N, H, W). Defaults to None.
            ignore_index (int): Ignored label value. Defaults to 255.
            **kwargs: Other arguments of mmseg's loss call (e.g. ``avg_factor``), ignored: the loss
                is always the mean over non-ignored pixels.

        Returns:
            Tensor: Scalar loss times ``loss_weight``.
        """
        return self.loss_weight * unbiased_cross_entropy(
            cls_score, label, self.old_classes, ignore_index=ignore_index, weight=weight)

    def extra_repr(self) -> str:
        return f'old_classes={self.old_classes}, loss_weight={self.loss_weight}'
