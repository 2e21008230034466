"""The losses of an mmseg decode head, with a pixel accuracy that costs ~2% of mmseg's.

``BaseDecodeHead.loss_by_feat`` upsamples the logits to the labels, runs every ``loss_decode`` and
logs ``acc_seg`` through ``mmseg.models.losses.accuracy``, whose ``topk`` over the class channels
of a full-resolution (N, C, H, W) tensor takes longer on CPU than the loss itself (54 ms vs 30 ms
for 4x21x256x256 on one thread). :func:`head_loss_by_feat` computes the same losses and the same
top-1 accuracy by comparing the label's logit with the channel maximum instead.
"""
from typing import Dict, Optional

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor


def pixel_accuracy(logits: Tensor, labels: Tensor, ignore_index: int = 255) -> Tensor:
    """Top-1 pixel accuracy in percent over the non-ignored pixels (mmseg's ``acc_seg``).

    A pixel counts as correct when its label's logit equals the maximum over the channels (ties,
    of measure zero for float logits, count as correct).

    Args:
        logits (Tensor): Logits, has a shape (N, C, H, W).
        labels (Tensor): Labels, has a shape (N, H, W); ``ignore_index`` pixels are skipped.
        ignore_index (int): Ignored label value. Defaults to 255.

    Returns:
        Tensor: Shape (1, ), as ``mmseg.models.losses.accuracy`` returns; 0 when every pixel is
        ignored.
    """
    with torch.no_grad():
        valid = labels != ignore_index
        safe = torch.where(valid, labels, torch.zeros_like(labels)).long().unsqueeze(1)
        correct = (logits.gather(1, safe) >= logits.amax(1, keepdim=True)).squeeze(1) & valid
        total = valid.sum().clamp(min=1)
        return (correct.sum() * (100.0 / total)).float().reshape(1)


def head_loss_by_feat(head: nn.Module, seg_logits: Tensor, data_samples: SampleList,
                      pixel_weight: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """``head.loss_by_feat(seg_logits, data_samples)`` with :func:`pixel_accuracy` as ``acc_seg``.

    Heads that override ``loss_by_feat`` (boundary or point losses...) keep their own.

    Args:
        head (nn.Module): An mmseg decode head.
        seg_logits (Tensor): Its output, has a shape (N, C, h, w).
        data_samples (list[SegDataSample]): With ``gt_sem_seg``.
        pixel_weight (Tensor, optional): Per-pixel factors of the losses at the label size,
            has a shape (N, H, W) (multiplied into the sampler's weight, if any; PLOP's adaptive
            factor). Defaults to None.

    Returns:
        dict[str, Tensor]: The head's losses (``loss_decode`` names) and ``acc_seg``.

    Raises:
        ValueError: ``pixel_weight`` is given for a head with its own ``loss_by_feat``.
    """
    if type(head).loss_by_feat is not BaseDecodeHead.loss_by_feat:
        if pixel_weight is not None:
            raise ValueError(f'{type(head).__name__} computes its own losses (loss_by_feat), so '
                             'per-pixel loss factors (pseudo_label.adaptive_factor) cannot reach '
                             'them; set model.pseudo_label.adaptive_factor=False or use another '
                             'head')
        return head.loss_by_feat(seg_logits, data_samples)
    seg_label = head._stack_batch_gt(data_samples)
    seg_logits = resize(
        seg_logits, size=seg_label.shape[2:], mode='bilinear', align_corners=head.align_corners)
    seg_weight = head.sampler.sample(seg_logits, seg_label) if head.sampler is not None else None
    seg_label = seg_label.squeeze(1)
    if pixel_weight is not None:
        seg_weight = pixel_weight if seg_weight is None else seg_weight * pixel_weight
    losses_decode = head.loss_decode if isinstance(head.loss_decode,
                                                   nn.ModuleList) else [head.loss_decode]
    losses: Dict[str, Tensor] = {}
    for loss_decode in losses_decode:
        value = loss_decode(seg_logits, seg_label, weight=seg_weight,
                            ignore_index=head.ignore_index)
        name = loss_decode.loss_name
        losses[name] = losses[name] + value if name in losses else value
    losses['acc_seg'] = pixel_accuracy(seg_logits, seg_label, head.ignore_index)
    return losses
