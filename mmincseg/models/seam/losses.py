"""SEAM losses as pure functions.

SEAM (Wang et al., CVPR 2020) trains a CAM network as a siamese pair on an image ``I`` and its
affine-transformed copy ``A(I)`` with three terms, all weighted 1 by default:

* a multi-label soft-margin classification loss on the global-average-pooled CAMs of both branches
  (:func:`cam_cls_loss`);
* the equivariant regularisation ER, an L1 distance between ``A(F(I))`` and ``F(A(I))`` on
  max-normalised, label-masked CAMs (:func:`equivariant_reg_loss`);
* the equivariant cross regularisation ECR, the two cross terms between one branch's PCM output and
  the other branch's CAM, each the mean of the largest 20% absolute differences
  (:func:`equivariant_cross_reg_loss`); SEAM's ``train_SEAM.py`` detaches that CAM and keeps only
  its best foreground class per pixel (:func:`max_onehot`), so ECR trains the PCM alone;
* the adaptive min-pooling term on the PCM output (:func:`adaptive_min_pool_loss`), which SEAM adds
  to its classification loss.

Beyond SEAM, :func:`negative_region_loss` scores the regions known to hold none of the step's
classes as negative images (one-class steps, whose images all hold the new class).

The helpers :func:`max_norm`, :func:`min_max_norm`, :func:`mask_cams` and
:func:`background_from_foreground` prepare the maps the way the model feeds them to the
regularisers. Channel 0 is always background.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def max_norm(cams: Tensor, eps: float = 1e-5) -> Tensor:
    """ReLU, then divide every channel by its spatial maximum.

    Args:
        cams (Tensor): Class activation maps, has a shape (N, C, H, W).
        eps (float): Added to the maximum so that all-zero channels stay zero. Default: 1e-5.

    Returns:
        Tensor: Maps in [0, 1), has a shape (N, C, H, W).
    """
    cams = F.relu(cams)
    peak = cams.flatten(2).max(dim=2)[0][..., None, None]
    return cams / (peak + eps)


def min_max_norm(cams: Tensor, eps: float = 1e-5) -> Tensor:
    """ReLU, then map every channel's spatial [min, max] range onto [0, 1).

    ``relu(relu(x) - min - eps) / (max - min + eps)``, the normalisation SEAM's ``max_norm``
    (``tool/visualization.py``) actually computes in training.

    Args:
        cams (Tensor): Class activation maps, has a shape (N, C, H, W).
        eps (float): Stabiliser; an all-equal channel becomes zero. Default: 1e-5.

    Returns:
        Tensor: Maps in [0, 1), has a shape (N, C, H, W).
    """
    cams = F.relu(cams)
    flat = cams.flatten(2)
    low = flat.min(dim=2)[0][..., None, None]
    high = flat.max(dim=2)[0][..., None, None]
    return F.relu(cams - low - eps) / (high - low + eps)


#: Per-channel CAM normalisations by name (SEAMNet ``cam_norm``, ``test_cfg.norm``).
CAM_NORMS = {'max': max_norm, 'min_max': min_max_norm}


def max_onehot(cams: Tensor) -> Tensor:
    """Keep, per pixel, only the largest foreground channel (ties keep all); background stays.

    Args:
        cams (Tensor): Maps, channel 0 background, has a shape (N, C, H, W), C >= 2.

    Returns:
        Tensor: Same shape; foreground channels below their pixel's foreground maximum are 0.
    """
    foreground = cams[:, 1:]
    best = foreground.max(dim=1, keepdim=True)[0]
    foreground = torch.where(foreground == best, foreground, torch.zeros_like(foreground))
    return torch.cat([cams[:, :1], foreground], dim=1)


def adaptive_min_pool_loss(cams: Tensor, ratio: float = 0.25) -> Tensor:
    """SEAM's adaptive min-pooling term: the mean of the smallest ``ratio`` of per-pixel maxima.

    Per pixel the largest channel score is taken; of each image the ``ratio * H * W`` smallest
    of these (at least one) are ReLU'd and averaged, then averaged over images. It pushes the
    least activated pixels (background) of the PCM output towards zero.

    Args:
        cams (Tensor): Label-masked foreground maps (the background channel removed), has a
            shape (N, K, H, W).
        ratio (float): Fraction of the pixels pooled, in (0, 1]. Default: 0.25 (SEAM's
            ``h * w // 4``).

    Returns:
        Tensor: Scalar loss.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f'adaptive_min_pool_loss ratio must be in (0, 1], got {ratio}')
    per_pixel = cams.max(dim=1)[0].flatten(1)
    k = max(1, int(per_pixel.size(1) * ratio))
    return F.relu(per_pixel.topk(k, dim=1, largest=False)[0]).mean()


def background_from_foreground(cams: Tensor) -> Tensor:
    """Return a copy of ``cams`` whose channel 0 is ``1 - max`` over the foreground channels.

    Args:
        cams (Tensor): Max-normalised maps, channel 0 background, has a shape (N, C, H, W), C >= 2.

    Returns:
        Tensor: Same shape; channels 1.. unchanged (not a view: safe for autograd).
    """
    if cams.size(1) < 2:
        raise ValueError(f'background_from_foreground needs a background and at least one '
                         f'foreground channel, got {cams.size(1)} channel(s)')
    background = 1 - cams[:, 1:].max(dim=1, keepdim=True)[0]
    return torch.cat([background, cams[:, 1:]], dim=1)


def mask_cams(cams: Tensor, labels: Tensor) -> Tensor:
    """Zero the channels of classes absent from each image.

    Args:
        cams (Tensor): Maps, has a shape (N, C, H, W).
        labels (Tensor): Multi-hot image labels, has a shape (N, C) (1 for present channels;
            background, channel 0, is normally 1).

    Returns:
        Tensor: ``cams * labels``, has a shape (N, C, H, W).
    """
    if labels.shape != cams.shape[:2]:
        raise ValueError(f'labels of shape {tuple(labels.shape)} do not match cams of shape '
                         f'{tuple(cams.shape)}; expected (N, C) = {tuple(cams.shape[:2])}')
    return cams * labels[:, :, None, None].to(cams.dtype)


def cam_cls_loss(cams: Tensor, labels: Tensor) -> Tensor:
    """Multi-label soft-margin loss on global-average-pooled CAMs.

    Args:
        cams (Tensor): Foreground CAMs (the background channel removed), has a shape (N, K, H, W).
        labels (Tensor): Multi-hot foreground labels, has a shape (N, K).

    Returns:
        Tensor: Scalar loss, the mean over images and classes.
    """
    if labels.shape != cams.shape[:2]:
        raise ValueError(f'labels of shape {tuple(labels.shape)} do not match cams of shape '
                         f'{tuple(cams.shape)}; expected (N, K) = {tuple(cams.shape[:2])}')
    scores = cams.mean(dim=(2, 3))
    return F.multilabel_soft_margin_loss(scores, labels.to(scores.dtype))


def negative_region_loss(cams: Tensor, negative: Tensor) -> Tensor:
    """Classification loss of the regions known to hold none of the CAM's classes.

    Each image's negative region (e.g. the pixels the previous step's model confidently gives an
    old class) is pooled like an image of its own: the CAMs averaged over it, and each class's
    score pushed towards "absent" with the soft-margin loss of :func:`cam_cls_loss` for label 0
    (``softplus(score) = -log(1 - sigmoid(score))``). This gives a step whose images all hold
    its new class (a one-class step) negatives for its classifier.

    Args:
        cams (Tensor): Foreground CAMs, has a shape (N, K, h, w).
        negative (Tensor): Negative pixels (bool or {0, 1}), has a shape (N, H, W) at any
            resolution; a CAM cell is negative when at least half of its area is.

    Returns:
        Tensor: Scalar loss, the mean over the images with a negative region and the classes;
        zero (still part of the graph) when no image has one.
    """
    if negative.dim() != 3 or negative.shape[0] != cams.shape[0]:
        raise ValueError(f'negative of shape {tuple(negative.shape)} does not match cams of '
                         f'shape {tuple(cams.shape)}; expected (N, H, W) with N = {cams.shape[0]}')
    area = F.adaptive_avg_pool2d(negative[:, None].to(cams.dtype), cams.shape[-2:])
    mask = (area >= 0.5).to(cams.dtype)  # (N, 1, h, w)
    count = mask.sum(dim=(2, 3))  # (N, 1)
    has = count[:, 0] > 0
    if not bool(has.any()):
        return cams.sum() * 0
    scores = (cams * mask).sum(dim=(2, 3)) / count.clamp(min=1)
    return F.softplus(scores[has]).mean()


def equivariant_reg_loss(transformed_cam: Tensor, cam_of_transformed: Tensor) -> Tensor:
    """Equivariant regularisation ER: mean absolute difference of ``A(F(I))`` and ``F(A(I))``.

    Args:
        transformed_cam (Tensor): ``A(F(I))``, the first branch's CAM moved by the transform,
            has a shape (N, C, H, W).
        cam_of_transformed (Tensor): ``F(A(I))``, the CAM of the transformed image, same shape.

    Returns:
        Tensor: Scalar, zero iff the two maps are equal.
    """
    _check_same_shape(transformed_cam, cam_of_transformed, 'equivariant_reg_loss')
    return (transformed_cam - cam_of_transformed).abs().mean()


def topk_l1_loss(pred: Tensor, target: Tensor, top_ratio: float = 0.2) -> Tensor:
    """Mean of the largest ``top_ratio`` absolute differences of each image, averaged over images.

    Args:
        pred (Tensor): Has a shape (N, C, H, W).
        target (Tensor): Same shape as ``pred``.
        top_ratio (float): Fraction of the C*H*W elements of an image kept (at least one).
            Default: 0.2.

    Returns:
        Tensor: Scalar loss.
    """
    _check_same_shape(pred, target, 'topk_l1_loss')
    if not 0 < top_ratio <= 1:
        raise ValueError(f'top_ratio must be in (0, 1], got {top_ratio}')
    diff = (pred - target).abs().flatten(1)
    k = max(1, int(diff.size(1) * top_ratio))
    return diff.topk(k, dim=1)[0].mean()


def equivariant_cross_reg_loss(pcm_a: Tensor, cam_b: Tensor, pcm_b: Tensor, cam_a: Tensor,
                               top_ratio: float = 0.2) -> Tensor:
    """Equivariant cross regularisation ECR, the sum of the two cross terms.

    Both branches must already be in the same frame (the first branch moved by the transform).

    Args:
        pcm_a (Tensor): PCM-refined CAM of branch a, has a shape (N, C, H, W).
        cam_b (Tensor): CAM of branch b, same shape.
        pcm_b (Tensor): PCM-refined CAM of branch b, same shape.
        cam_a (Tensor): CAM of branch a, same shape.
        top_ratio (float): Fraction of the largest differences averaged per term. Default: 0.2.

    Returns:
        Tensor: Scalar, ``topk_l1(pcm_a, cam_b) + topk_l1(pcm_b, cam_a)``.
    """
    return topk_l1_loss(pcm_a, cam_b, top_ratio) + topk_l1_loss(pcm_b, cam_a, top_ratio)


def _check_same_shape(a: Tensor, b: Tensor, where: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f'{where}: the two maps must have the same shape, got {tuple(a.shape)} '
                         f'and {tuple(b.shape)}; resize the transformed branch to the other one')
