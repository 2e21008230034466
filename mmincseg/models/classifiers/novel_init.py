"""MiB initialisation of the classifier rows of new classes (Cermelli et al., CVPR 2020, 3.3)."""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor


def init_novel_classifier(weight: Tensor, bias: Optional[Tensor],
                          num_new: int) -> Tuple[Tensor, Tensor]:
    """Grow a classifier by ``num_new`` rows initialised from the background row.

    New rows copy the background weight (row 0); the background bias and the new biases become
    ``b_bg - log(num_new + 1)``. For any input, the softmax over the grown logits then gives every
    old class (1..C_old-1) its previous probability, and background and each new class get
    ``p_bg / (num_new + 1)``, summing to the previous background probability.

    Args:
        weight (Tensor): Classifier weight, has a shape (C_old, in_channels, 1, 1) (a 1x1 conv) or
            (C_old, in_channels) (a linear layer). Row 0 is background.
        bias (Tensor): Classifier bias, has a shape (C_old,). A classifier without bias cannot keep
            the old probabilities (the background logit must be lowered), so None is an error.
        num_new (int): Number of new classes (>= 0; 0 returns copies of the inputs).

    Returns:
        tuple[Tensor, Tensor]: New (detached) weight of shape
        (C_old + num_new, in_channels, ...) and bias of shape (C_old + num_new,), with the dtype and
        device of the inputs.

    Raises:
        ValueError: if ``bias`` is None, ``num_new`` is negative or the shapes do not match.
    """
    if bias is None:
        raise ValueError('init_novel_classifier: the classifier has no bias; MiB initialisation '
                         'needs one to share the background probability with the new classes '
                         '(build the classifier conv/linear with bias=True)')
    if isinstance(num_new, bool) or int(num_new) != num_new or num_new < 0:
        raise ValueError(f'init_novel_classifier: num_new must be an integer >= 0, got {num_new!r}')
    num_new = int(num_new)
    if weight.dim() not in (2, 4) or (weight.dim() == 4 and weight.shape[2:] != (1, 1)):
        raise ValueError(f'init_novel_classifier: weight must have a shape '
                         f'(C_old, in_channels, 1, 1) or (C_old, in_channels), got '
                         f'{tuple(weight.shape)}')
    if bias.shape != weight.shape[:1]:
        raise ValueError(f'init_novel_classifier: bias of shape {tuple(bias.shape)} does not match '
                         f'weight of shape {tuple(weight.shape)}; expected ({weight.shape[0]},)')
    with torch.no_grad():
        weight = weight.detach()
        bias = bias.detach()
        new_weight = torch.cat([weight, weight[:1].expand(num_new, *weight.shape[1:])], dim=0)
        shared_bias = bias[:1] - math.log(num_new + 1)
        new_bias = torch.cat([shared_bias, bias[1:], shared_bias.expand(num_new)], dim=0)
    return new_weight.contiguous(), new_bias.contiguous()
