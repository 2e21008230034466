"""Pixel-adaptive mask refinement (PAMR; Araslanov & Roth, CVPR 2020), as WILSON refines its
localizer's masks before training the localizer on them (``--affinity``)."""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _neighbours(x: Tensor, dilations: Sequence[int], with_centre: bool) -> Tensor:
    """The 3x3 neighbours of every pixel at each dilation, image borders replicated.

    Args:
        x (Tensor): Has a shape (N, C, H, W).
        dilations (Sequence[int]): Distances of the neighbours, >= 1.
        with_centre (bool): Include the pixel itself (9 per dilation instead of 8).

    Returns:
        Tensor: Has a shape (N, C, K, H, W), K = (9 or 8) * len(dilations).
    """
    h, w = x.shape[2:]
    out = []
    for d in dilations:
        padded = F.pad(x, (d, d, d, d), mode='replicate')
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy == dx == 0 and not with_centre:
                    continue
                top, left = d + dy * d, d + dx * d
                out.append(padded[:, :, top:top + h, left:left + w])
    return torch.stack(out, dim=2)


@torch.no_grad()
def pamr(image: Tensor, masks: Tensor, num_iter: int = 10,
         dilations: Sequence[int] = (1, 2, 4, 8, 12)) -> Tensor:
    """Refine soft masks by repeatedly averaging each pixel's neighbours, weighted by how alike
    their colours are.

    Affinity of a pixel to a neighbour: ``-|I - I_nbr| / (0.1 * std)`` per colour channel
    (std over the pixel's 3x3 neighbourhoods at every dilation, itself included), averaged over
    the colour channels and soft-maxed over the neighbours; then ``num_iter`` times
    ``m <- sum_nbr affinity * m_nbr``. The affinities do not change under a positive affine
    map of each colour channel, so a normalised image (mmseg's data preprocessor) gives the
    affinities of the raw one. Each step is a convex combination: masks summing to 1 over
    channels still do.

    Args:
        image (Tensor): Has a shape (N, 3, H, W) (any number of channels).
        masks (Tensor): Has a shape (N, C, H, W), the image's size.
        num_iter (int): Propagation steps. Default: 10 (WILSON).
        dilations (Sequence[int]): Neighbour distances. Default: (1, 2, 4, 8, 12) (WILSON).

    Returns:
        Tensor: The refined masks, shape (N, C, H, W).
    """
    if image.shape[0] != masks.shape[0] or image.shape[2:] != masks.shape[2:]:
        raise ValueError(f'PAMR needs the image and the masks at one size, got image '
                         f'{tuple(image.shape)} and masks {tuple(masks.shape)}')
    if num_iter < 0 or not dilations or min(dilations) < 1:
        raise ValueError(f'PAMR needs num_iter >= 0 and dilations >= 1, got {num_iter} and '
                         f'{tuple(dilations)}')
    image = image.float()
    std = _neighbours(image, dilations, with_centre=True).std(dim=2, keepdim=True)
    diff = (image.unsqueeze(2) - _neighbours(image, dilations, with_centre=False)).abs()
    affinity = (-diff / (1e-8 + 0.1 * std)).mean(dim=1).softmax(dim=1).unsqueeze(1)
    masks = masks.float()
    for _ in range(num_iter):
        masks = (_neighbours(masks, dilations, with_centre=False) * affinity).sum(dim=2)
    return masks
