"""PLOP's Local POD distillation (Douillard et al., CVPR 2021, Sec. 3.1).

Pooled Outputs Distillation keeps the student's feature statistics close to the frozen teacher's:
each map is summarised by its width- and height-pooled means over a pyramid of local regions, and
the two summaries are compared with an L2 distance. PLOP applies it to every backbone stage, the
decoder's features and, on VOC, the logits, each term with its own factor.

What follows is what PLOP's public code computes (``features_distillation`` with
``collapse_channels='local'``, the ``--method PLOP`` options), written from its description:

- ``prepro='pow'``: every map is squared element-wise before pooling.
- No L2 normalisation of the embeddings: the code forces ``normalize=False`` for local POD (the
  paper's Eq. 2 normalises; its code, whose numbers are published, does not), so neither do we.
- The distance of a level is the L2 norm (not squared) of the embedding difference, per sample,
  then the mean over the batch.
- Each level is weighted (``pod_factor`` 0.01 for features, 0.0005 for logits on VOC), multiplied
  by ``sqrt(|C_0..t| / |C_t|)`` (PLOP's "POD schedule": seen classes over new classes), and the
  sum over levels is divided by the number of levels.
- Logits: the student has more channels than the teacher; its new-class logits are added to its
  background logit and dropped (``extra_channels='sum'``) before squaring.
"""
import math
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from mmseg.registry import MODELS

from .base import WeightedLoss

Features = Union[Tensor, Sequence[Tensor]]
Masks = Union[Tensor, Sequence[Optional[Tensor]]]
PREPROS = ('pow', 'none', 'abs', 'relu')


def _regions(side: int, scale: int) -> tuple:
    """(number of regions, cells per region) of one side split at ``scale``.

    PLOP's rule: ``scale`` regions of ``side // scale`` cells, the last ``side % scale`` cells left
    out. A side shorter than ``scale`` (PLOP would pool empty regions, NaN) gets ``side`` regions
    of one cell.
    """
    if side >= scale:
        return scale, side // scale
    return side, 1


def local_pod(x: Tensor, scales: Sequence[int] = (1, 2, 4)) -> Tensor:
    """The Local POD embedding of a feature map.

    For each scale ``s`` the map is split into ``s x s`` regions (``s`` bands of ``H // s`` rows
    times ``s`` bands of ``W // s`` columns; the remainder rows/columns are left out, as PLOP's
    code does). Each region ``R`` of ``h_R x w_R`` cells contributes its width-pooled means
    ``mean_j x[c, i, j]`` (``C * h_R`` values) and height-pooled means ``mean_i x[c, i, j]``
    (``C * w_R`` values). The embedding is the concatenation over scales and regions (in an order
    of our own; only distances between embeddings are used, which do not depend on it). A side
    shorter than ``s`` is split into one-cell regions (PLOP's code pools empty slices there).

    Args:
        x (Tensor): Feature map, has a shape (N, C, H, W).
        scales (Sequence[int]): Regions per side at each level of the pyramid. Defaults to
            (1, 2, 4), PLOP's ``spp_scales``.

    Returns:
        Tensor: Has a shape (N, D), ``D = C * sum_s n_h * n_w * (k_h + k_w)`` with ``n``
        regions of ``k`` cells per side at scale ``s``.
    """
    if x.dim() != 4:
        raise ValueError(f'local_pod: expected a (N, C, H, W) map, got {tuple(x.shape)}')
    n, c, height, width = x.shape
    parts = []
    for scale in scales:
        n_h, k_h = _regions(height, int(scale))
        n_w, k_w = _regions(width, int(scale))
        blocks = x[:, :, :n_h * k_h, :n_w * k_w].reshape(n, c, n_h, k_h, n_w, k_w)
        parts.append(blocks.mean(dim=5).reshape(n, -1))  # width pooling: (N, C, n_h, k_h, n_w)
        parts.append(blocks.mean(dim=3).reshape(n, -1))  # height pooling: (N, C, n_h, n_w, k_w)
    return torch.cat(parts, dim=1)


def _prepro(x: Tensor, prepro: str) -> Tensor:
    if prepro == 'pow':
        return x.square()
    if prepro == 'abs':
        return x.abs()
    if prepro == 'relu':
        return x.clamp(min=0)
    return x


def _crop_to_mask(x: Tensor, mask: Tensor) -> Tensor:
    """The bounding box of a sample's valid cells (``mask`` (1, h, w) or (h, w))."""
    mask = mask.reshape(mask.shape[-2:]).bool()
    rows = mask.any(dim=1).nonzero().flatten()
    cols = mask.any(dim=0).nonzero().flatten()
    if rows.numel() == 0:
        return x[..., :0, :0]
    return x[..., int(rows[0]):int(rows[-1]) + 1, int(cols[0]):int(cols[-1]) + 1]


def pod_level_distance(feature: Tensor, old_feature: Tensor, scales: Sequence[int] = (1, 2, 4),
                       prepro: str = 'pow', valid_mask: Optional[Tensor] = None) -> Tensor:
    """The POD distance of one level: ``mean_i || Phi(p(old_i)) - Phi(p(new_i)) ||_2``.

    ``Phi`` is :func:`local_pod`, ``p`` the pre-processing (``'pow'``: ``x ** 2``). Computed in
    float32 whatever the input dtype or autocast state.

    Args:
        feature (Tensor): Student map, has a shape (N, C, H, W).
        old_feature (Tensor): Teacher map of the same shape.
        scales (Sequence[int]): See :func:`local_pod`. Defaults to (1, 2, 4).
        prepro (str): ``'pow'`` (PLOP's), ``'abs'``, ``'relu'`` or ``'none'``. Defaults to 'pow'.
        valid_mask (Tensor, optional): Cells inside each sample's image, bool, has a shape
            (N, 1, H, W) or (N, H, W). Each sample's maps are then cropped to the bounding box of
            its valid cells before pooling, so batch padding changes neither the pooled means
            nor the regions (a padded image gets the embedding it has unpadded); a sample without
            valid cells is left out of the mean. Defaults to None (whole maps).

    Returns:
        Tensor: Scalar float32 distance (0 when no sample has a valid cell).
    """
    if feature.shape != old_feature.shape or feature.dim() != 4:
        raise ValueError(f'pod_level_distance: student map {tuple(feature.shape)} and teacher map '
                         f'{tuple(old_feature.shape)} must be (N, C, H, W) of the same shape '
                         '(distil the same layer of both models)')
    if prepro not in PREPROS:
        raise ValueError(f'pod: prepro={prepro!r} is not supported; use one of {PREPROS}')
    with torch.autocast(device_type=feature.device.type, enabled=False):
        new = _prepro(feature.float(), prepro)
        old = _prepro(old_feature.float(), prepro)
        if valid_mask is None:
            return torch.linalg.vector_norm(local_pod(old, scales) - local_pod(new, scales),
                                            dim=1).mean()
        if valid_mask.shape[0] != feature.shape[0] or \
                valid_mask.shape[-2:] != feature.shape[-2:]:
            raise ValueError(f'pod: valid_mask {tuple(valid_mask.shape)} does not match the map '
                             f'{tuple(feature.shape)}; give (N, 1, H, W) at its resolution')
        distances = []
        for i in range(feature.shape[0]):
            new_i = _crop_to_mask(new[i:i + 1], valid_mask[i])
            if new_i.numel() == 0:
                continue
            old_i = _crop_to_mask(old[i:i + 1], valid_mask[i])
            distances.append(torch.linalg.vector_norm(
                local_pod(old_i, scales) - local_pod(new_i, scales), dim=1))
        if not distances:
            return new.sum() * 0
        return torch.cat(distances).mean()


def collapse_new_logits(logits: Tensor, num_old: int) -> Tensor:
    """Student logits on the teacher's channels: background + every new class's logit, then the
    old classes (PLOP's ``extra_channels='sum'``; a sum of logits, not of probabilities).

    Args:
        logits (Tensor): Student logits, has a shape (N, C, H, W).
        num_old (int): The teacher's channels ``C_old <= C``.

    Returns:
        Tensor: Has a shape (N, C_old, H, W).
    """
    if logits.shape[1] == num_old:
        return logits
    if not 1 <= num_old < logits.shape[1]:
        raise ValueError(f'pod: the teacher has {num_old} channels, the student '
                         f'{logits.shape[1]}; the student must extend the teacher')
    background = logits[:, :1] + logits[:, num_old:].sum(dim=1, keepdim=True)
    return torch.cat([background, logits[:, 1:num_old]], dim=1)


def pod_distillation(features: Features, old_features: Features, scales: Sequence[int] = (1, 2, 4),
                     prepro: str = 'pow', valid_mask: Optional[Masks] = None,
                     level_weights: Optional[Sequence[float]] = None) -> Tensor:
    """Local POD over several levels: ``(1 / L) * sum_l w_l * d_l``.

    ``d_l`` is :func:`pod_level_distance` of level ``l`` (maps of any shapes, level by level),
    ``w_l`` its weight (1 by default), ``L`` the number of levels. For logits, pass the student's
    through :func:`collapse_new_logits` first.

    Args:
        features (Tensor | Sequence[Tensor]): Student maps, each (N, C_l, H_l, W_l).
        old_features (Tensor | Sequence[Tensor]): Teacher maps of the same shapes.
        scales (Sequence[int]): See :func:`local_pod`. Defaults to (1, 2, 4).
        prepro (str): See :func:`pod_level_distance`. Defaults to 'pow'.
        valid_mask (Tensor | Sequence[Tensor | None], optional): One mask per level (see
            :func:`pod_level_distance`). Defaults to None.
        level_weights (Sequence[float], optional): One weight per level. Defaults to None (1).

    Returns:
        Tensor: Scalar float32 loss.
    """
    features = [features] if isinstance(features, Tensor) else list(features)
    old_features = [old_features] if isinstance(old_features, Tensor) else list(old_features)
    if not features or len(features) != len(old_features):
        raise ValueError(f'pod_distillation: got {len(features)} student and {len(old_features)} '
                         'teacher maps; need the same non-zero number')
    masks = [None] * len(features) if valid_mask is None else (
        [valid_mask] if isinstance(valid_mask, Tensor) else list(valid_mask))
    weights = [1.0] * len(features) if level_weights is None else list(level_weights)
    if len(masks) != len(features) or len(weights) != len(features):
        raise ValueError(f'pod_distillation: {len(features)} levels but {len(masks)} masks and '
                         f'{len(weights)} level weights; give one of each per level')
    terms = [w * pod_level_distance(f, o, scales, prepro, m)
             for f, o, m, w in zip(features, old_features, masks, weights)]
    return torch.stack(terms).sum() / len(terms)


@MODELS.register_module()
class LocalPODLoss(WeightedLoss):
    """PLOP's Local POD on intermediate features and on the logits.

    With ``F`` feature levels and, when logits are given, one logit level (``L = F + 1``, else
    ``L = F``), and ``s = sqrt(num_classes / num_new_classes)`` when ``class_schedule``:

    ``loss_pod = s * loss_weight / L * sum_{l < F} d_l``,
    ``loss_pod_logits = s * logits_weight / L * d_logits``,

    ``d_l = mean_i || Phi(old_l,i ** 2) - Phi(new_l,i ** 2) ||_2`` (:func:`pod_level_distance`,
    ``Phi`` = :func:`local_pod` at ``scales``), the student's logits collapsed onto the teacher's
    channels first (:func:`collapse_new_logits`). Their sum is PLOP's ``features_distillation``
    with its VOC options (``--pod local --pod_factor 0.01 --pod_logits``, logit factor 0.0005,
    ``spp_scales`` 1 2 4, ``pow``, no normalisation, POD schedule on).

    Args:
        loss_weight (float): Factor of each feature level (PLOP's ``pod_factor``). Defaults to 0.01.
        logits_weight (float): Factor of the logit level. Defaults to 0.0005.
        scales (Sequence[int]): Regions per side (PLOP's ``spp_scales``). Defaults to (1, 2, 4).
        prepro (str): Element-wise map applied before pooling. Defaults to 'pow'.
        class_schedule (bool): Multiply by ``sqrt(num_classes / num_new_classes)`` (PLOP's
            ``use_pod_schedule``). Defaults to True.
        loss_name (str): Name of the feature term; the logit term is ``<loss_name>_logits``.
            Defaults to 'loss_pod'.
    """

    def __init__(self, loss_weight: float = 0.01, logits_weight: float = 0.0005,
                 scales: Sequence[int] = (1, 2, 4), prepro: str = 'pow',
                 class_schedule: bool = True, loss_name: str = 'loss_pod') -> None:
        super().__init__(loss_weight, loss_name)
        if prepro not in PREPROS:
            raise ValueError(f'LocalPODLoss: prepro={prepro!r} is not supported; use one of '
                             f'{PREPROS}')
        self.logits_weight = logits_weight
        self.scales = tuple(int(s) for s in scales)
        self.prepro = prepro
        self.class_schedule = class_schedule

    def forward(self, features: Features, old_features: Features,
                logits: Optional[Tensor] = None, old_logits: Optional[Tensor] = None,
                valid_mask: Optional[Masks] = None, logits_valid_mask: Optional[Tensor] = None,
                num_classes: Optional[int] = None,
                num_new_classes: Optional[int] = None) -> dict:
        """The feature and logit terms.

        Args:
            features (Tensor | Sequence[Tensor]): Student maps, each (N, C_l, H_l, W_l).
            old_features (Tensor | Sequence[Tensor]): Teacher maps of the same shapes.
            logits (Tensor, optional): Student logits, has a shape (N, C, h, w).
            old_logits (Tensor, optional): Teacher logits, has a shape (N, C_old, h, w).
            valid_mask (Tensor | Sequence[Tensor | None], optional): One mask per feature level.
            logits_valid_mask (Tensor, optional): Mask of the logits, (N, 1, h, w).
            num_classes (int, optional): Classes seen at this step (background included).
            num_new_classes (int, optional): Classes of this step. Both are needed with
                ``class_schedule``.

        Returns:
            dict[str, Tensor]: ``{loss_name: ..., loss_name + '_logits': ...}`` (the second only
            with logits).
        """
        features = [features] if isinstance(features, Tensor) else list(features)
        old_features = [old_features] if isinstance(old_features, Tensor) else list(old_features)
        with_logits = logits is not None and old_logits is not None
        num_levels = len(features) + int(with_logits)
        scale = 1.0
        if self.class_schedule:
            if not num_classes or not num_new_classes:
                raise ValueError('LocalPODLoss(class_schedule=True) needs num_classes and '
                                 'num_new_classes (seen and new classes of the step)')
            scale = math.sqrt(num_classes / num_new_classes)
        factor = scale * len(features) / num_levels  # pod_distillation divides by len(features)
        losses = {self.loss_name: self.loss_weight * factor * pod_distillation(
            features, old_features, self.scales, self.prepro, valid_mask)}
        if with_logits:
            student = collapse_new_logits(logits, old_logits.shape[1])
            losses[f'{self.loss_name}_logits'] = self.logits_weight * scale / num_levels * \
                pod_level_distance(student, old_logits, self.scales, self.prepro,
                                   logits_valid_mask)
        return losses

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, logits_weight={self.logits_weight}, '
                f'scales={self.scales}, prepro={self.prepro!r}, '
                f'class_schedule={self.class_schedule}')
