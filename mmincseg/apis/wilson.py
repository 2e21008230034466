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
import os.path as osp
from typing import Optional

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import print_log

from .. import tasks
from ..utils.checkpoint import unwrap_state_dict
from ..utils.io import atomic_write
from .plan import StepPlan
from .results import PSEUDO_LABEL_METRICS_FILE
from .seam import accumulate_areas, build_step_train_images, label_metrics, true_mask


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
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmengine.runner import CheckpointLoader
    from mmseg.registry import MODELS

    from ..engine.hooks.incremental_step_hook import build_teacher, find_last_checkpoint
    if cfg.model.get('weak_localizer') is None or plan.teacher_model is None:
        return None
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    checkpoint = find_last_checkpoint(plan.step_dir)
    model = MODELS.build(copy.deepcopy(cfg.model))  # no init_weights: the checkpoint has all
    state = unwrap_state_dict(CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu'))
    model.load_state_dict(state, strict=True)
    model.set_teacher(build_teacher(plan.teacher_model,
                                    find_last_checkpoint(plan.prev_checkpoint)))
    model.to(device).eval()

    num_old = sum(plan.classes_per_step[:-1])
    num_channels = sum(plan.classes_per_step)
    ids = [0] + list(range(num_old, num_channels))
    names = [plan.class_names[plan.channels[k]] if plan.class_names else str(plan.channels[k])
             for k in ids]
    dataset = build_step_train_images(cfg)
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(dataset))
    areas = None
    ignored = pixels = 0
    for index in range(len(dataset)):
        data = model.data_preprocessor(pseudo_collate([dataset.prepare_data(index)]), False)
        targets, weights = model.weak_targets(data['inputs'], data['data_samples'])
        sample = model.postprocess_result(targets, data['data_samples'])[0]
        label = hard_weak_labels(sample.pred_sem_seg.data[0].cpu().numpy(), num_old,
                                 float(weights[0]))
        info = dataset.get_data_info(index)
        areas = accumulate_areas(areas, label, true_mask(info), info['img_path'], num_channels)
        ignored += int((label == tasks.IGNORE_INDEX).sum())
        pixels += label.size
        if bar is not None:
            bar.update()
    if bar is not None:
        print()
    metrics = label_metrics(areas, ids, names)
    metrics['ignored_fraction'] = round(ignored / pixels, 4) if pixels else None
    record = dict(config=plan.config, checkpoint=checkpoint, source='wilson_localizer',
                  task=plan.task, step=plan.step, setting=plan.setting,
                  classes=[plan.channels[k] for k in ids], num_images=len(dataset), **metrics)
    path = osp.join(plan.step_dir, PSEUDO_LABEL_METRICS_FILE)
    with atomic_write(path) as f:
        json.dump(record, f, indent=2)
    print_log(f"WILSON online pseudo-label mIoU {metrics['mIoU']} (background + "
              f'{names[1:]}, {len(dataset)} training images of step {plan.step}) -> {path}',
              logger='current')
    return record
