"""The affine transform ``A`` of SEAM's siamese branch."""
from typing import Optional, Sequence

import torch.nn.functional as F
from torch import Tensor


class EquivariantTransform:
    """Rescale (and optionally flip horizontally) images and maps.

    SEAM uses a single transform, a downscale by 0.3; the flip is an optional extra. Images are
    resized by ``scale_factor``; maps (CAMs) are resized to an explicit size, the size of the other
    branch's maps, so that both branches compare pixel to pixel whatever the backbone rounding.

    Args:
        scale_factor (float): Rescale factor, > 0. Default: 0.3.
        flip (bool): Whether the transform also flips horizontally. Default: False.
    """

    def __init__(self, scale_factor: float = 0.3, flip: bool = False) -> None:
        if not scale_factor > 0:
            raise ValueError(f'EquivariantTransform scale_factor must be > 0, got {scale_factor}')
        self.scale_factor = float(scale_factor)
        self.flip = bool(flip)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale_factor={self.scale_factor}, flip={self.flip})'

    def image_size(self, size: Sequence[int]) -> tuple:
        """Size (h, w) of a transformed image of size ``size`` (at least 1 pixel)."""
        return tuple(max(1, int(round(s * self.scale_factor))) for s in size[-2:])

    def apply_to_image(self, img: Tensor) -> Tensor:
        """Transform an image batch.

        Args:
            img (Tensor): Has a shape (N, C, H, W).

        Returns:
            Tensor: Has a shape (N, C, round(H * s), round(W * s)).
        """
        out = F.interpolate(
            img, size=self.image_size(img.shape), mode='bilinear', align_corners=True)
        return out.flip(-1) if self.flip else out

    def apply_to_map(self, maps: Tensor, size: Optional[Sequence[int]] = None) -> Tensor:
        """Transform a map batch (CAMs), resizing to ``size``.

        Args:
            maps (Tensor): Has a shape (N, C, h, w).
            size (Sequence[int], optional): Output size (h', w'); the scaled size when None.

        Returns:
            Tensor: Has a shape (N, C, h', w').
        """
        size = self.image_size(maps.shape) if size is None else tuple(size)
        out = F.interpolate(maps, size=size, mode='bilinear', align_corners=True)
        return out.flip(-1) if self.flip else out
