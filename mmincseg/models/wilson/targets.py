"""WILSON's online targets as pure functions (Cermelli et al., CVPR 2022; fcdl94/WILSON train.py).

Channel layout everywhere: ``C = n_old + n_new`` channels, channel 0 background, channels
``1 .. n_old - 1`` the old foreground classes, channels ``n_old ..`` the classes of the step.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def ngwp_scores(logits: Tensor, focal_lambda: float = 0.01) -> Tensor:
    """Image-level class scores of WILSON's localizer: normalised global weighted pooling plus
    the focal mask penalty (its ``ngwp_focal``, from Araslanov & Roth's single-stage WSSS).

    With ``m = softmax(logits)`` over channels and per-channel sums over the pixels,
    ``y_c = sum(logits_c * m_c) / (1 + sum(m_c)) + (1 - mean(m_c))^3 * log(lambda + mean(m_c))``.

    Args:
        logits (Tensor): Localizer logits, has a shape (N, C, h, w).
        focal_lambda (float): The lambda inside the log. Default: 0.01.

    Returns:
        Tensor: Scores (logits of the presence of each class), has a shape (N, C).
    """
    flat = logits.flatten(2)
    masks = flat.softmax(dim=1)
    pooled = (flat * masks).sum(-1) / (1.0 + masks.sum(-1))
    coverage = masks.mean(-1)
    return pooled + (1 - coverage).pow(3) * torch.log(focal_lambda + coverage)


def label_mask(new_labels: Tensor, n_old: int) -> Tensor:
    """Per-channel presence mask of a weak step: background 1, old classes 0 (the images of a
    weak step carry no old-class labels), new classes their image-level label.

    Args:
        new_labels (Tensor): Multi-hot labels of the new classes, has a shape (N, n_new).
        n_old (int): Old channels, background included.

    Returns:
        Tensor: Has a shape (N, n_old + n_new), float.
    """
    n = new_labels.size(0)
    old = new_labels.new_zeros(n, n_old)
    old[:, 0] = 1
    return torch.cat([old, new_labels], dim=1).float()


def soft_pseudo_labels(localizer_logits: Tensor, channel_mask: Tensor, alpha: float = 0.5) -> Tensor:
    """WILSON's soft pseudo-labels: the localizer's masked softmax mixed with its one-hot arg-max.

    ``p = softmax(logits) * mask`` (channels of classes absent from the image zeroed), then
    ``alpha * onehot(argmax p) + (1 - alpha) * p`` (WILSON's ``--alpha``; ties of the arg-max
    all get the one-hot part, as its ``binarize``).

    Args:
        localizer_logits (Tensor): Has a shape (N, C, h, w).
        channel_mask (Tensor): Presence of each channel, has a shape (N, C)
            (:func:`label_mask`).
        alpha (float): Weight of the hard part, in [0, 1]. Default: 0.5 (WILSON on VOC).

    Returns:
        Tensor: Pseudo-labels in [0, 1], has a shape (N, C, h, w).
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f'WILSON alpha must be in [0, 1], got {alpha}')
    if channel_mask.shape != localizer_logits.shape[:2]:
        raise ValueError(f'channel_mask of shape {tuple(channel_mask.shape)} does not match '
                         f'localizer logits of shape {tuple(localizer_logits.shape)}')
    probs = localizer_logits.softmax(dim=1) * channel_mask[:, :, None, None]
    hard = (probs >= probs.max(dim=1, keepdim=True)[0]).to(probs.dtype)
    return alpha * hard + (1 - alpha) * probs


def segmentation_targets(old_logits: Tensor, pseudo_labels: Tensor) -> Tensor:
    """WILSON's per-channel targets of the segmentation model.

    Old channels: the old model's sigmoid outputs; new channels: the pseudo-labels; background:
    the minimum of the old model's and the pseudo-label's background.

    Args:
        old_logits (Tensor): Old-model logits, has a shape (N, n_old, h, w).
        pseudo_labels (Tensor): Soft pseudo-labels (:func:`soft_pseudo_labels`), has a shape
            (N, n_old + n_new, h, w).

    Returns:
        Tensor: Targets in [0, 1], has a shape (N, n_old + n_new, h, w).
    """
    n_old = old_logits.size(1)
    if old_logits.shape[2:] != pseudo_labels.shape[2:] or pseudo_labels.size(1) <= n_old:
        raise ValueError(f'old logits {tuple(old_logits.shape)} and pseudo-labels '
                         f'{tuple(pseudo_labels.shape)} must share (N, h, w) and the '
                         'pseudo-labels must have more channels')
    old = torch.sigmoid(old_logits)
    background = torch.min(old[:, :1], pseudo_labels[:, :1])
    return torch.cat([background, old[:, 1:], pseudo_labels[:, n_old:]], dim=1)


def image_weights(pseudo_labels: Tensor, new_labels: Tensor) -> Tensor:
    """1 for the images whose pseudo-labels have mass on exactly their labelled new classes,
    else 0 (WILSON's ``batch_weight``).

    Args:
        pseudo_labels (Tensor): Has a shape (N, n_old + n_new, h, w).
        new_labels (Tensor): Multi-hot labels of the new classes, has a shape (N, n_new).

    Returns:
        Tensor: Has a shape (N,), float.
    """
    n_new = new_labels.size(1)
    present = pseudo_labels[:, -n_new:].flatten(2).sum(-1) > 0
    return (present == new_labels.bool()).all(dim=1).to(pseudo_labels.dtype)


def localizer_prior_loss(localizer_logits: Tensor, old_logits: Tensor) -> Tensor:
    """WILSON's localisation prior: the localizer's old channels learn the old model's sigmoid
    outputs, binary cross-entropy averaged over elements.

    Args:
        localizer_logits (Tensor): Has a shape (N, C, h, w), C > n_old.
        old_logits (Tensor): Old-model logits, has a shape (N, n_old, h, w) (resized by the
            caller).

    Returns:
        Tensor: Scalar loss.
    """
    n_old = old_logits.size(1)
    return F.binary_cross_entropy_with_logits(localizer_logits[:, :n_old],
                                              torch.sigmoid(old_logits.detach()))


def localizer_cls_loss(localizer_logits: Tensor, new_labels: Tensor,
                       focal_lambda: float = 0.01) -> Tensor:
    """Multi-label loss of the localizer on the new classes: BCE of their :func:`ngwp_scores`
    with the image-level labels, averaged over images and classes.

    Args:
        localizer_logits (Tensor): Has a shape (N, C, h, w).
        new_labels (Tensor): Multi-hot labels of the last ``n_new`` channels, shape (N, n_new).
        focal_lambda (float): See :func:`ngwp_scores`. Default: 0.01.

    Returns:
        Tensor: Scalar loss.
    """
    scores = ngwp_scores(localizer_logits, focal_lambda)[:, -new_labels.size(1):]
    return F.binary_cross_entropy_with_logits(scores, new_labels.to(scores.dtype))


def wilson_seg_loss(logits: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """WILSON's segmentation loss: per-pixel BCE summed over channels, averaged over each
    image's pixels, then the ``weights``-weighted mean over images.

    Args:
        logits (Tensor): Segmentation logits, has a shape (N, C, h, w).
        targets (Tensor): Soft targets (:func:`segmentation_targets`), same shape.
        weights (Tensor): Image weights (:func:`image_weights`), has a shape (N,).

    Returns:
        Tensor: Scalar loss (0 when every weight is 0).
    """
    if logits.shape != targets.shape:
        raise ValueError(f'WILSON logits {tuple(logits.shape)} and targets '
                         f'{tuple(targets.shape)} must have the same shape')
    per_image = F.binary_cross_entropy_with_logits(
        logits, targets, reduction='none').sum(dim=1).flatten(1).mean(dim=1)
    return (weights * per_image).sum() / (weights.sum() + 1e-5)


def confident_masks(masks: Tensor, cutoff_fg: float = 0.6, cutoff_bg: float = 0.7,
                    cutoff_low: float = 0.2) -> Tensor:
    """Hard masks of the pixels each channel is confident about (WILSON's ``pseudo_gtmask``).

    A pixel belongs to channel c when its score exceeds ``max(cutoff * max_c, cutoff_low)``,
    ``max_c`` the channel's highest score in the image (``cutoff_bg`` for channel 0,
    ``cutoff_fg`` for the others); a pixel claimed by several channels belongs to none.

    Args:
        masks (Tensor): Soft masks, has a shape (N, C, h, w).
        cutoff_fg (float): Share of its maximum a foreground channel must exceed. Default: 0.6.
        cutoff_bg (float): The same for the background channel. Default: 0.7.
        cutoff_low (float): No channel takes a pixel at or below this score. Default: 0.2.

    Returns:
        Tensor: 0/1 masks of the same shape (float); a pixel has at most one 1.
    """
    flat = masks.flatten(2)
    cut = flat.max(dim=-1, keepdim=True)[0].clone()
    cut[:, :1] *= cutoff_bg
    cut[:, 1:] *= cutoff_fg
    hard = (flat > cut.clamp(min=cutoff_low)).to(masks.dtype)
    hard = hard * (hard.sum(dim=1, keepdim=True) <= 1).to(masks.dtype)
    return hard.view_as(masks)


def balanced_mask_ce(logits: Tensor, hard_masks: Tensor, new_labels: Tensor) -> Tensor:
    """The localizer's self-training loss on its refined masks (WILSON's
    ``balanced_mask_loss_ce``): cross-entropy towards each pixel's channel, weighted per pixel
    by ``1 - n_c / (1 + n)`` (``n_c`` the image's pixels of that channel, ``n`` of all
    channels), unassigned pixels contributing 0, averaged over the image's pixels; an image
    counts only when its masks hold exactly background plus its labelled new classes.

    Args:
        logits (Tensor): Localizer logits (training mode), has a shape (N, C, h, w).
        hard_masks (Tensor): From :func:`confident_masks`, has a shape (N, C, h', w').
        new_labels (Tensor): Multi-hot labels of the new classes, has a shape (N, n_new).

    Returns:
        Tensor: Scalar loss (mean over all N images, the ones that do not count as 0).
    """
    if logits.shape[2:] != hard_masks.shape[2:]:
        logits = F.interpolate(logits, size=hard_masks.shape[2:], mode='bilinear',
                               align_corners=True)
    n = hard_masks.size(0)
    target = hard_masks.argmax(dim=1)
    target[hard_masks.sum(dim=1) < 1] = 255
    per_class = hard_masks.flatten(2).sum(-1)  # (N, C)
    total = per_class.sum(-1, keepdim=True)
    class_weight = (total - per_class) / (1 + total)
    pixel_weight = (hard_masks * class_weight[:, :, None, None]).sum(dim=1).view(n, -1)
    ce = F.cross_entropy(logits, target, ignore_index=255, reduction='none').view(n, -1)
    counts = (new_labels.sum(-1) + 1) == (per_class > 0).sum(-1)
    return (counts.to(ce.dtype) * (pixel_weight * ce).mean(-1)).mean()
