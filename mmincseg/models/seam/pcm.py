"""Pixel Correlation Module (PCM) of SEAM.

The PCM refines a CAM with an affinity between pixels computed from low-level features: every
refined pixel is a weighted mean of the CAM over pixels that look alike. The CAM enters without
gradient and the backbone features are detached, so the PCM's gradients only train its own convs.
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def pcm_cam_input(cam: Tensor, eps: float = 1e-5, suppress_non_max: bool = True) -> Tensor:
    """Normalise a CAM the way the PCM consumes it (no gradient).

    ReLU, per-class max-normalisation over space, then background (channel 0) set to
    ``1 - max`` over the foreground channels. With ``suppress_non_max`` (SEAM's
    ``network/resnet38_SEAM.py``) every foreground channel that is not the largest foreground
    score of its pixel is then zeroed, so each pixel propagates only its best class (ties keep
    every tied channel).

    Args:
        cam (Tensor): Raw CAM, channel 0 background, has a shape (N, C, H, W), C >= 2.
        eps (float): Stabiliser of the division. Default: 1e-5.
        suppress_non_max (bool): Zero the non-maximal foreground channels of each pixel.
            Default: True (SEAM); False keeps them all.

    Returns:
        Tensor: Detached maps in [0, 1], has a shape (N, C, H, W).
    """
    with torch.no_grad():
        cam = F.relu(cam.detach())
        peak = cam.flatten(2).max(dim=2)[0][..., None, None]
        cam = cam / (peak + eps)
        foreground = cam[:, 1:]
        best = foreground.max(dim=1, keepdim=True)[0]
        if suppress_non_max:
            foreground = torch.where(foreground < best, torch.zeros_like(foreground), foreground)
        return torch.cat([1 - best, foreground], dim=1)


class PixelCorrelationModule(nn.Module):
    """SEAM's Pixel Correlation Module.

    Features of two backbone stages go through 1x1 conv + ReLU (to ``proj_channels``), are
    concatenated with the image resized to the feature size, and a 1x1 conv embeds them into
    ``embed_channels``. With per-pixel L2-normalised embeddings ``f``, the affinity is
    ``ReLU(f_i . f_j)`` normalised so that every column sums to one, and the refined CAM is
    ``CAM @ affinity`` (pixel j of the output averages the CAM over all pixels i).

    Args:
        in_channels (Sequence[int]): Channels of the backbone features used. Default: (512, 1024)
            (ResNet-50 layer2 and layer3).
        proj_channels (Sequence[int]): Output channels of each feature's 1x1 conv, same length as
            ``in_channels``. Default: (64, 128).
        embed_channels (int): Channels of the embedding the affinity is computed on. Default: 192.
        image_channels (int): Channels of the input image. Default: 3.
        eps (float): Stabiliser of the L2 and column normalisations. Default: 1e-5.
        suppress_non_max (bool): Feed the CAM with its non-maximal foreground channels zeroed
            (:func:`pcm_cam_input`). Default: True (SEAM).
        embed_init_gain (float): Gain of the Xavier-uniform init of the embedding conv.
            Default: 4.0 (SEAM's ``f9``); 1.0 is PyTorch's default gain.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (512, 1024),
                 proj_channels: Sequence[int] = (64, 128),
                 embed_channels: int = 192,
                 image_channels: int = 3,
                 eps: float = 1e-5,
                 suppress_non_max: bool = True,
                 embed_init_gain: float = 4.0) -> None:
        super().__init__()
        if len(in_channels) != len(proj_channels):
            raise ValueError(f'PCM in_channels {tuple(in_channels)} and proj_channels '
                             f'{tuple(proj_channels)} must have the same length (one projection '
                             f'per backbone feature)')
        self.in_channels = tuple(in_channels)
        self.proj_channels = tuple(proj_channels)
        self.embed_channels = embed_channels
        self.image_channels = image_channels
        self.eps = eps
        self.suppress_non_max = suppress_non_max
        self.projections = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False)
            for c_in, c_out in zip(in_channels, proj_channels))
        self.embed = nn.Conv2d(
            image_channels + sum(proj_channels), embed_channels, kernel_size=1, bias=False)
        for proj in self.projections:
            nn.init.kaiming_normal_(proj.weight, nonlinearity='relu')
        nn.init.xavier_uniform_(self.embed.weight, gain=embed_init_gain)

    def embedding(self, feats: Sequence[Tensor], img: Tensor, size: Sequence[int]) -> Tensor:
        """Per-pixel L2-normalised embedding.

        Args:
            feats (Sequence[Tensor]): Backbone features, the i-th has a shape
                (N, in_channels[i], h_i, w_i); detached here.
            img (Tensor): Input image, has a shape (N, image_channels, H, W).
            size (Sequence[int]): Spatial size (h, w) of the CAM.

        Returns:
            Tensor: Embeddings, has a shape (N, embed_channels, h * w).
        """
        if len(feats) != len(self.projections):
            raise ValueError(f'PCM expects {len(self.projections)} feature maps, got {len(feats)}')
        size = tuple(size)
        parts = [F.interpolate(img, size=size, mode='bilinear', align_corners=True)]
        for feat, proj in zip(feats, self.projections):
            feat = F.relu(proj(feat.detach()))
            if tuple(feat.shape[-2:]) != size:
                feat = F.interpolate(feat, size=size, mode='bilinear', align_corners=False)
            parts.append(feat)
        emb = self.embed(torch.cat(parts, dim=1)).flatten(2)
        return emb / (emb.norm(dim=1, keepdim=True) + self.eps)

    def affinity(self, feats: Sequence[Tensor], img: Tensor, size: Sequence[int]) -> Tensor:
        """Column-normalised pixel affinity.

        Args:
            feats (Sequence[Tensor]): Backbone features, see :meth:`embedding`.
            img (Tensor): Input image, has a shape (N, image_channels, H, W).
            size (Sequence[int]): Spatial size (h, w) of the CAM.

        Returns:
            Tensor: Non-negative affinity whose columns sum to one, has a shape (N, h*w, h*w);
            entry (i, j) is the weight of pixel i in refined pixel j.
        """
        emb = self.embedding(feats, img, size)
        aff = F.relu(torch.bmm(emb.transpose(1, 2), emb))
        return aff / (aff.sum(dim=1, keepdim=True) + self.eps)

    def forward(self, cam: Tensor, feats: Sequence[Tensor], img: Tensor) -> Tensor:
        """Refine a CAM.

        Args:
            cam (Tensor): Raw CAM, channel 0 background, has a shape (N, C, h, w); it is
                normalised by :func:`pcm_cam_input` (``suppress_non_max``) without gradient.
            feats (Sequence[Tensor]): Backbone features, see :meth:`embedding`.
            img (Tensor): Input image, has a shape (N, image_channels, H, W).

        Returns:
            Tensor: Refined CAM, has a shape (N, C, h, w).
        """
        n, c, h, w = cam.shape
        aff = self.affinity(feats, img, (h, w))
        cam = pcm_cam_input(cam, suppress_non_max=self.suppress_non_max).flatten(2)
        return torch.bmm(cam, aff).view(n, c, h, w)
