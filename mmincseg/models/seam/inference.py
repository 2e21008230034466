"""Multi-scale CAM inference and CAM -> pseudo-label conversion (SEAM)."""
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from mmincseg.tasks import IGNORE_INDEX


def infer_cams(model: nn.Module,
               img: Tensor,
               scales: Sequence[float] = (0.5, 1.0, 1.5, 2.0),
               flip: bool = True,
               img_labels: Optional[Sequence[int]] = None,
               use_pcm: bool = True,
               norm: str = 'min_max') -> Tensor:
    """Multi-scale, flip-augmented CAMs of one image.

    At every scale the image and its horizontal flip go through the model as one batch; the
    (PCM-refined) CAMs are ReLU'd, resized to the image size, un-flipped and summed over scales and
    flips. Channels of classes not in ``img_labels`` and the background channel are zeroed, and each
    remaining channel is mapped onto [0, 1]: ``(x - min) / (max - min)`` over the image (``norm=
    'min_max'``, SEAM's ``infer_SEAM.py``) or ``x / max`` (``'max'``). Runs without gradient; the
    caller chooses the model's mode (``model.eval()`` for pseudo-labels).

    Args:
        model (nn.Module): A :class:`SEAMNet` (anything whose ``forward(x, mode='tensor')`` returns
            ``(cam, refined_cam)``, each of shape (N, C, h, w), channel k being class
            ``model.class_ids[k]``).
        img (Tensor): Normalised image, has a shape (3, H, W) or (1, 3, H, W).
        scales (Sequence[float]): Rescale factors. Default: (0.5, 1.0, 1.5, 2.0).
        flip (bool): Whether to add the horizontal flip at every scale. Default: True.
        img_labels (Sequence[int], optional): Class ids (e.g. VOC ids) present in the image; ids not
            in ``model.class_ids`` are ignored. None keeps every foreground channel.
        use_pcm (bool): Use the PCM-refined CAM (SEAM) or the raw CAM. Default: True.
        norm (str): ``'min_max'`` (SEAM) or ``'max'``. Default: 'min_max'.

    Returns:
        Tensor: CAMs in [0, 1], has a shape (C, H, W), C = ``len(model.class_ids)``; channel 0
        (background) and unlabelled classes are zero.
    """
    if img.dim() == 3:
        img = img[None]
    if img.dim() != 4 or img.size(0) != 1:
        raise ValueError(f'infer_cams takes one image of shape (3, H, W) or (1, 3, H, W), got '
                         f'{tuple(img.shape)}')
    if not scales:
        raise ValueError('infer_cams needs at least one scale')
    class_ids = list(model.class_ids)
    height, width = img.shape[-2:]
    total = None
    with torch.no_grad():
        for scale in scales:
            size = (max(1, int(round(height * scale))), max(1, int(round(width * scale))))
            x = img if size == (height, width) else F.interpolate(
                img, size=size, mode='bilinear', align_corners=False)
            if flip:
                x = torch.cat([x, x.flip(-1)], dim=0)
            cam, refined = model(x, mode='tensor')
            cam = refined if use_pcm else cam
            cam = F.relu(F.interpolate(cam, size=(height, width), mode='bilinear',
                                       align_corners=False))
            if flip:
                cam = cam[0:1] + cam[1:2].flip(-1)
            total = cam[0] if total is None else total + cam[0]
    keep = torch.zeros(len(class_ids), dtype=total.dtype, device=total.device)
    wanted = None if img_labels is None else {int(c) for c in img_labels}
    for k, class_id in enumerate(class_ids):
        if class_id != 0 and (wanted is None or class_id in wanted):
            keep[k] = 1
    if norm not in ('min_max', 'max'):
        raise ValueError(f"infer_cams norm must be 'min_max' or 'max', got {norm!r}")
    flat = total.flatten(1)
    peak = flat.max(dim=1)[0][:, None, None]
    low = flat.min(dim=1)[0][:, None, None] if norm == 'min_max' else torch.zeros_like(peak)
    return (total - low) / (peak - low + 1e-5) * keep[:, None, None]


def cams_to_pseudo_label(cams: Union[np.ndarray, Tensor],
                         class_ids: Sequence[int],
                         img_labels: Optional[Sequence[int]],
                         bg_alpha: float = 0.26,
                         ignore_below: Optional[float] = None,
                         max_foreground: Optional[float] = None,
                         adaptive_alpha: bool = False) -> np.ndarray:
    """Turn normalised CAMs into a pseudo-label map.

    Each pixel takes the labelled class of highest score, or background (0) where every labelled
    class scores below ``bg_alpha`` (SEAM's constant background score). With ``ignore_below`` set,
    pixels whose best score lies in ``[ignore_below, bg_alpha)`` become 255 (ignored in training)
    and only those below ``ignore_below`` become background.

    With ``max_foreground`` set, a map whose labelled classes cover more than that fraction of the
    image is taken as a failed localisation (a CAM high everywhere, as a SEAM trained on images
    that all show its one class can learn): its class pixels become 255, so the step learns
    nothing wrong from the image (distillation still applies), instead of learning "the class is
    everywhere" and overwriting the background and the old classes.

    With ``adaptive_alpha`` the background score of each image is ``max(bg_alpha, t)``, ``t`` the
    Otsu threshold (OpenCV) of its best-class score map: a CAM that is high over a wide area (a
    SEAM with few or no negative images) is cut where its own histogram separates peak from
    plateau instead of at a constant tuned for VOC. No ground truth is involved.

    Args:
        cams (np.ndarray | Tensor): Per-class scores in [0, 1], has a shape (C, H, W).
        class_ids (Sequence[int]): Class id (e.g. VOC id) of every channel, length C; channels
            whose id is 0 (background) are not used.
        img_labels (Sequence[int], optional): Class ids present in the image; ids not in
            ``class_ids`` are ignored. None uses every foreground channel.
        bg_alpha (float): Background score. Default: 0.26.
        ignore_below (float, optional): Lower end of the uncertain band, in [0, bg_alpha].
            Default: None (no ignore region, as SEAM).
        max_foreground (float, optional): Largest credible foreground fraction, in (0, 1].
            Default: None (no check, as SEAM).
        adaptive_alpha (bool): Raise ``bg_alpha`` per image to the Otsu threshold of the map.
            Default: False (constant, as SEAM).

    Returns:
        np.ndarray: Label map of class ids, dtype uint8, has a shape (H, W); values in
        {0} | labelled classes (| {255} with ``ignore_below``).
    """
    if isinstance(cams, Tensor):
        cams = cams.detach().float().cpu().numpy()
    cams = np.asarray(cams, dtype=np.float32)
    class_ids = [int(c) for c in class_ids]
    if cams.ndim != 3 or cams.shape[0] != len(class_ids):
        raise ValueError(f'cams must have a shape (C, H, W) with C = len(class_ids) = '
                         f'{len(class_ids)}, got {cams.shape}')
    if any(not 0 <= c < IGNORE_INDEX for c in class_ids):
        raise ValueError(f'class_ids must lie in [0, {IGNORE_INDEX}) to fit a uint8 label map, '
                         f'got {class_ids}')
    if ignore_below is not None and not 0 <= ignore_below <= bg_alpha:
        raise ValueError(f'ignore_below must lie in [0, bg_alpha={bg_alpha}], got {ignore_below}')
    if max_foreground is not None and not 0 < max_foreground <= 1:
        raise ValueError(f'max_foreground must lie in (0, 1], got {max_foreground}')
    wanted = None if img_labels is None else {int(c) for c in img_labels}
    keep = [k for k, c in enumerate(class_ids)
            if c != 0 and (wanted is None or c in wanted)]
    label = np.zeros(cams.shape[1:], dtype=np.uint8)
    if not keep:
        return label
    scores = cams[keep]
    best = scores.max(axis=0)
    ids = np.asarray(class_ids, dtype=np.uint8)[keep][scores.argmax(axis=0)]
    if adaptive_alpha:
        otsu, _ = cv2.threshold(np.clip(best * 255, 0, 255).astype(np.uint8), 0, 255,
                                cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        # OpenCV keeps the levels above ``otsu`` of the truncated 8-bit map: v >= (otsu + 1) / 255
        bg_alpha = max(bg_alpha, (float(otsu) + 1) / 255)
    label = np.where(best >= bg_alpha, ids, 0).astype(np.uint8)
    if ignore_below is not None:
        label[(best >= ignore_below) & (best < bg_alpha)] = IGNORE_INDEX
    if max_foreground is not None:
        foreground = (label != 0) & (label != IGNORE_INDEX)
        if foreground.mean() > max_foreground:
            label[foreground] = IGNORE_INDEX
    return label
