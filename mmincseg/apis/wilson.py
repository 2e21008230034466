"""How good are a WILSON step's online pseudo-labels? (the localizer's counterpart of the SEAM
pseudo-label mIoU).

A WILSON step (``method='wilson'``, ``labels='image'``) writes no pseudo-label files: its heads
learn soft targets made online by the localizer (new classes) and the previous model
(background and old classes). After the step trains, :func:`evaluate_localizer` runs the
trained localizer and the teacher once over the step's training images, takes the arg-max of
those targets as a label map (old channels count as background, as in the step's true masks;
an image with weight 0 teaches nothing and is left unlabelled, 255) and scores it against the
true masks: ``<step>/pseudo_label_metrics.json``, in the same format as the SEAM steps', so
``results.md`` shows it in the pseudo-label mIoU column.
"""
import copy
import json
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log

from .. import tasks
from ..utils.checkpoint import unwrap_state_dict
from ..utils.io import atomic_write
from .plan import StepPlan
from .results import PSEUDO_LABEL_METRICS_FILE
from .seam import (LabelScores, bgr_palette, build_step_images, heat_overlay, one_image_batch,
                   pick_images, step_indices, true_mask, write_panels)


def hard_weak_labels(channel_map: np.ndarray, num_old: int, weight: float) -> np.ndarray:
    """A label map from the arg-max channel of a WILSON step's targets.

    Args:
        channel_map (np.ndarray): Arg-max channel per pixel.
        num_old (int): Old channels, background included: they become background 0.
        weight (float): The image's weight; 0 leaves the whole image unlabelled (255).

    Returns:
        np.ndarray: uint8 labels: 0, a new channel, or 255.
    """
    if weight <= 0:
        return np.full(channel_map.shape, tasks.IGNORE_INDEX, dtype=np.uint8)
    return np.where(channel_map >= num_old, channel_map, 0).astype(np.uint8)


def build_wilson_step(plan: StepPlan, cfg: Config, device: Optional[str] = None):
    """A finished WILSON step's model (its last checkpoint, localizer included) with the
    previous step as teacher, in eval mode.

    Raises:
        ValueError: the step has no localizer or no previous step.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import CheckpointLoader
    from mmseg.registry import MODELS

    from ..engine.hooks.incremental_step_hook import build_teacher, find_last_checkpoint
    if cfg.model.get('weak_localizer') is None or plan.teacher_model is None:
        raise ValueError(f'{plan.config} step {plan.step} is no WILSON step (no weak_localizer '
                         "or no previous step): use method='wilson', labels='image' at a step > 0")
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = MODELS.build(copy.deepcopy(cfg.model))  # no init_weights: the checkpoint has all
    state = CheckpointLoader.load_checkpoint(find_last_checkpoint(plan.step_dir),
                                             map_location='cpu')
    model.load_state_dict(unwrap_state_dict(state), strict=True)
    model.to(device).eval()
    # the teacher lives outside the module tree (model.to does not move it): on the device
    # before set_teacher, which picks its memory format from there (as the step hook does)
    teacher = build_teacher(plan.teacher_model, find_last_checkpoint(plan.prev_checkpoint))
    model.set_teacher(teacher.to(device))
    return model


def _targets_at_image_size(model, data: dict) -> Tuple[np.ndarray, float]:
    """The step's targets (C, H, W) at the original image size and the image's weight."""
    batch = one_image_batch(model, data)
    targets, weights = model.weak_targets(batch['inputs'], batch['data_samples'])
    sample = model.postprocess_result(targets, batch['data_samples'])[0]
    return sample.seg_logits.data.cpu().numpy(), float(weights[0])


def evaluate_localizer(plan: StepPlan, cfg: Config, progress: bool = True,
                       device: Optional[str] = None) -> Optional[dict]:
    """Score a finished WILSON step's online pseudo-labels on its training images.

    Args:
        plan (StepPlan): The step's plan (a step > 0 trained with a ``weak_localizer``).
        cfg (Config): The step's resolved config (:func:`~mmincseg.apis.plan.plan_step`).
        progress (bool): Show a progress bar. Default: True.
        device (str, optional): Default: CUDA when available, else CPU.

    Returns:
        dict | None: The record written to ``<step>/pseudo_label_metrics.json`` (``mIoU``,
        ``aAcc``, ``per_class``, ``ignored_fraction``, ...); None for a step without a
        localizer.
    """
    from ..engine.hooks.incremental_step_hook import find_last_checkpoint
    if cfg.model.get('weak_localizer') is None or plan.teacher_model is None:
        return None
    model = build_wilson_step(plan, cfg, device)
    num_old = sum(plan.classes_per_step[:-1])
    num_channels = sum(plan.classes_per_step)
    ids = [0] + list(range(num_old, num_channels))
    names = [_channel_name(plan, k) for k in ids]
    dataset = build_step_images(cfg)
    scores = LabelScores(num_channels)
    for index in step_indices(dataset, progress):
        targets, weight = _targets_at_image_size(model, dataset.prepare_data(index))
        label = hard_weak_labels(targets.argmax(axis=0), num_old, weight)
        info = dataset.get_data_info(index)
        scores.add(label, true_mask(info), info['img_path'])
    metrics = scores.metrics(ids, names)
    record = dict(config=plan.config, checkpoint=find_last_checkpoint(plan.step_dir),
                  source='wilson_localizer', task=plan.task, step=plan.step,
                  setting=plan.setting, classes=[plan.channels[k] for k in ids],
                  num_images=len(dataset), **metrics)
    path = osp.join(plan.step_dir, PSEUDO_LABEL_METRICS_FILE)
    with atomic_write(path) as f:
        json.dump(record, f, indent=2)
    print_log(f"WILSON online pseudo-label mIoU {metrics['mIoU']} (background + "
              f'{names[1:]}, {len(dataset)} training images of step {plan.step}) -> {path}',
              logger='current')
    return record


def _channel_name(plan: StepPlan, channel: int) -> str:
    class_id = plan.channels[channel]
    return plan.class_names[class_id] if plan.class_names else str(class_id)


def visualize_localizer(plan: StepPlan, cfg: Config, out_dir: str,
                        names: Optional[Sequence[str]] = None, num_images: int = 4,
                        device: Optional[str] = None) -> List[str]:
    """WILSON's Figure 1: per image ``image | target of each labelled new class | pseudo-label
    | true mask`` of a finished WILSON step (what its heads learned from, as
    :func:`evaluate_localizer` scores it).

    Args:
        plan (StepPlan): The step's plan; cfg (Config): its resolved config.
        out_dir (str): Output folder; files ``<image name>_localizer.png``.
        names (Sequence[str], optional): Image names among the step's training images; default
            the first ``num_images``.
        num_images (int): Images when ``names`` is None. Default: 4.
        device (str, optional): Default: CUDA when available, else CPU.

    Returns:
        list[str]: The written files.
    """
    import cv2
    model = build_wilson_step(plan, cfg, device)
    num_old = sum(plan.classes_per_step[:-1])
    channel_of = {plan.channels[k]: k for k in range(num_old, sum(plan.classes_per_step))}
    dataset = build_step_images(cfg)
    palette = bgr_palette()
    # channel -> class id for the palette (as IncrementalIoUMetric's --out PNGs), 255 kept
    class_of = np.zeros(256, dtype=np.uint8)
    class_of[:len(plan.channels)] = plan.channels
    class_of[tasks.IGNORE_INDEX] = tasks.IGNORE_INDEX
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for index in pick_images(dataset, names, num_images):
        info = dataset.get_data_info(index)
        data = dataset.prepare_data(index)
        targets, weight = _targets_at_image_size(model, data)
        image = cv2.imread(info['img_path'], cv2.IMREAD_COLOR)
        panels = [(image, 'image')]
        for class_id in data['data_samples'].metainfo['img_labels']:
            if class_id in channel_of:
                panels.append((heat_overlay(image, targets[channel_of[class_id]]),
                               f'target {_channel_name(plan, channel_of[class_id])}'))
        label = hard_weak_labels(targets.argmax(axis=0), num_old, weight)
        title = 'pseudo-label' + ('' if weight > 0 else ' (weight 0)')
        panels += [(palette[class_of[label]], title),
                   (palette[class_of[true_mask(info)]], 'true mask')]
        name = osp.splitext(osp.basename(info['img_path']))[0]
        written.append(write_panels(osp.join(out_dir, f'{name}_localizer.png'), panels))
    return written
