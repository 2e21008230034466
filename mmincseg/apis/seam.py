"""Weak supervision with SEAM: pseudo-labels of a step, their quality, and the run-chain hook.

``make_pseudo_labels`` runs a trained :class:`~mmincseg.models.seam.SEAMNet` over the training
images of one step and writes one palette PNG of class ids per image; ``LoadPseudoLabel`` then
replaces the true masks by these files in the step's training pipeline.
:func:`make_step_pseudo_labels` reads a weak step's plan (``needs_pseudo_labels``, its SEAM
config and folders) and trains the step's SEAM and makes its pseudo-labels;
:func:`~mmincseg.apis.run.run_incremental` calls it before every step that needs them, so one
``run_incremental`` call (or ``tools/run_incremental.py``) runs a weakly supervised split end to
end.

Layout of a weak run ``W``: ``W/step<t>/seam/`` (SEAM training), ``W/step<t>/pseudo_labels/``
(``<image name>.png``), ``W/step<t>/pseudo_label_metrics.json`` (pseudo-label mIoU against the
true masks, for reporting only; nothing trains on it), then the segmentation step in ``W/step<t>``.
With ``incremental.seam.negatives`` also ``W/step<t>/old_model_labels/`` (the previous model's
confident old classes, the SEAM's negatives) and its ``old_model_labels_metrics.json``.
"""
import copy
import json
import os
import os.path as osp
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from PIL import Image

from .. import tasks
from ..utils.checkpoint import checkpoint_record, unwrap_state_dict
from ..utils.io import atomic_write
from .config import (SKIP_VALIDATION, check_incremental, inner_dataset,  # noqa: F401
                     missing_seam_config, resolve_config_path, seam_of_step,
                     without_pixel_labels)
from .plan import StepPlan, plan_step
from .results import PSEUDO_LABEL_METRICS_FILE
from .train import load_step_config, step_is_finished, train_resolved

# --------------------------------------------------------------------------------- building
def load_seam_config(seam_config: Union[str, Config],
                     data_root: Optional[str] = None,
                     cfg_options: Optional[dict] = None) -> Config:
    """Load and resolve a SEAM config (its ``model.type`` must be ``'SEAMNet'``).

    Raises:
        ValueError: the config is not a SEAM config.
    """
    if isinstance(seam_config, Config):
        from .config import resolve_incremental_config, set_data_root
        cfg = copy.deepcopy(seam_config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        if data_root is not None:
            set_data_root(cfg, data_root)
        cfg = resolve_incremental_config(cfg)
    else:
        cfg = load_step_config(seam_config, data_root=data_root, cfg_options=cfg_options)
    if cfg.model.get('type') != 'SEAMNet':
        source = seam_config if isinstance(seam_config, str) else 'the config'
        raise ValueError(f"{source} is not a SEAM config (model.type is "
                         f"{cfg.model.get('type')!r}, expected 'SEAMNet'); use one of "
                         'configs/seam/')
    return cfg


def build_seam_model(cfg: Config, checkpoint: str, device: Optional[str] = None):
    """Build the config's SEAMNet, load ``checkpoint`` and put it in eval mode.

    Raises:
        FileNotFoundError: the checkpoint does not exist.
        ValueError: the checkpoint is not a SEAMNet of the config's classes and architecture,
            naming the file and the expected classes.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import CheckpointLoader
    from mmseg.registry import MODELS

    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'SEAM checkpoint {checkpoint} does not exist; train the SEAM of '
                                'this step first (tools/train.py SEAM_CONFIG)')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(copy.deepcopy(cfg.model))  # no init_weights: no pretrained download
    state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = unwrap_state_dict(state)
    check_seam_checkpoint(state, model, checkpoint, cfg)
    state.setdefault('_extra_state', model.get_extra_state())  # checkpoints of older versions
    fix = 'Use the checkpoint trained with this config (same backbone).'
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # tensor shape mismatches
        raise ValueError(f'SEAM checkpoint {checkpoint} does not fit the model of '
                         f'{cfg.filename}: {e}. {fix}') from e
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f'SEAM checkpoint {checkpoint} does not fit the model of '
                         f'{cfg.filename}: missing keys {result.missing_keys[:5]}, unexpected keys '
                         f'{result.unexpected_keys[:5]}. {fix}')
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    return model.to(device).eval()


def check_seam_checkpoint(state: dict, model, checkpoint: str, cfg: Config) -> None:
    """Raise a clear error when ``state`` was trained for classes other than ``model``'s."""
    inc = cfg.get('incremental', {})
    expected = (f"class_ids {model.class_ids} ({tasks.class_names(model.class_ids)}; split "
                f"{inc.get('task')!r} step {inc.get('step')})")
    fix = ('Train the SEAM of this split and step (tools/train.py with its configs/seam/ config) '
           'or pass its checkpoint.')
    weight = state.get('classifier.weight')
    if weight is None:
        raise ValueError(f'{checkpoint} is not a SEAMNet checkpoint (no classifier.weight); '
                         f'expected a SEAM trained for {expected}. {fix}')
    extra = state.get('_extra_state')
    saved = extra.get('class_ids') if isinstance(extra, dict) else None
    if saved is not None and [int(c) for c in saved] != model.class_ids:
        raise ValueError(f'SEAM checkpoint {checkpoint} was trained for class_ids {list(saved)} '
                         f'({tasks.class_names(saved)}), but {cfg.filename} expects {expected}. '
                         f'{fix}')
    if weight.shape[0] != model.num_classes:
        raise ValueError(f'SEAM checkpoint {checkpoint} has a classifier for {weight.shape[0]} '
                         f'classes, but {cfg.filename} expects {len(model.class_ids)}: {expected}. '
                         f'{fix}')


def pseudo_label_pipeline(cfg: Config) -> List[dict]:
    """The config's test pipeline without annotations, packing ``img_labels``."""
    pipeline = cfg.get('test_pipeline') or inner_dataset(cfg, 'val_dataloader').pipeline
    # true masks are read separately, and only to evaluate
    return without_pixel_labels(pipeline)


def build_step_images(cfg: Config, loader: str = 'train_dataloader',
                      ann_file: Optional[str] = None):
    """The images of the config's step with the pseudo-label (test) pipeline.

    The training selection of the step (images holding one of its classes, classes of other
    steps as background) from the dataset of ``loader``: by default the training images, which
    get pseudo-labels.

    Args:
        cfg (Config): A SEAM or step config.
        loader (str): The dataloader whose dataset is read. Default: 'train_dataloader'.
        ann_file (str, optional): Image list replacing that dataset's (relative to its
            ``data_root``), e.g. ``'ImageSets/Segmentation/val.txt'``. Default: None.
    """
    from mmseg.registry import DATASETS
    ds_cfg = copy.deepcopy(inner_dataset(cfg, loader))
    ds_cfg.update(subset='train', test_mode=False, pipeline=pseudo_label_pipeline(cfg))
    if ann_file is not None:
        ds_cfg['ann_file'] = ann_file
    return DATASETS.build(ds_cfg)


def true_mask(data_info: dict) -> np.ndarray:
    """The step-remapped true mask of a data info (as the step's training sees it)."""
    from mmseg.datasets.transforms import LoadAnnotations
    results = dict(seg_map_path=data_info['seg_map_path'], label_map=data_info.get('label_map'),
                   reduce_zero_label=data_info.get('reduce_zero_label', False), seg_fields=[])
    return LoadAnnotations()(results)['gt_seg_map']


def write_label_png(path: str, label: np.ndarray) -> None:
    """Write a class-id map as a VOC palette PNG, atomically (temp file + ``os.replace``)."""
    img = Image.fromarray(np.asarray(label, dtype=np.uint8))
    img.putpalette(tasks.voc_palette())
    with atomic_write(path, 'wb') as f:
        img.save(f, format='PNG')


def read_label_png(path: str) -> np.ndarray:
    """Read a class-id PNG (palette or grayscale)."""
    with Image.open(path) as img:
        return np.asarray(img, dtype=np.uint8)


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


def one_image_batch(model, data: dict) -> dict:
    """One ``dataset.prepare_data`` item through the model's data preprocessor as a batch of
    one (no training augmentation): ``inputs`` (1, 3, H, W) and ``data_samples``."""
    from mmengine.dataset import pseudo_collate
    return model.data_preprocessor(pseudo_collate([data]), False)


def image_cams(model, dataset, index: int) -> Tuple[np.ndarray, List[int]]:
    """A SEAM's CAMs of one step image, as the pseudo-labels take them
    (:meth:`SEAMNet.sample_cams`: padding removed, at the original size), as float numpy, and
    the image's labels."""
    batch = one_image_batch(model, dataset.prepare_data(index))
    with torch.no_grad():
        cams, labels = model.sample_cams(batch['inputs'][0], batch['data_samples'][0])
    return cams.float().cpu().numpy(), labels


def _predict(model, data: dict):
    from mmengine.dataset import pseudo_collate
    with torch.no_grad():
        return model.test_step(pseudo_collate([data]))[0]


def label_step_images(dataset, out_dir: str, label_of: Callable[[dict], np.ndarray],
                      force: bool = False, read_existing: bool = True,
                      progress: bool = True) -> Iterator[Tuple[dict, str, Optional[np.ndarray],
                                                               bool]]:
    """Give every image of a step's training set a label PNG ``<out_dir>/<image name>.png``.

    The one loop of the weak steps' per-image labellers (SEAM pseudo-labels, the previous
    model's negatives): an existing file is kept unless ``force``; otherwise
    ``label_of(dataset.prepare_data(index))`` makes the class-id map, written atomically as a
    palette PNG.

    Args:
        dataset: The step's training images (:func:`build_step_images`).
        out_dir (str): Folder of the PNGs (created).
        label_of (callable): Packed sample -> uint8 class-id map at the image's original size.
        force (bool): Re-make existing files. Default: False.
        read_existing (bool): Read a kept file back (else its label is None). Default: True.
        progress (bool): Show a progress bar. Default: True.

    Yields:
        tuple: ``(data info, PNG path, label or None, written)`` per image, in dataset order.
    """
    os.makedirs(out_dir, exist_ok=True)
    for index in step_indices(dataset, progress):
        info = dataset.get_data_info(index)
        name = osp.splitext(osp.basename(info['img_path']))[0]
        path = osp.join(out_dir, f'{name}.png')
        if osp.isfile(path) and not force:
            label, written = (read_label_png(path) if read_existing else None), False
        else:
            label, written = label_of(dataset.prepare_data(index)), True
            write_label_png(path, label)
        yield info, path, label, written


def step_indices(dataset, progress: bool = True) -> Iterable[int]:
    """The indices of a step's images, behind mmengine's progress bar when ``progress``."""
    if not progress:
        return range(len(dataset))
    from mmengine.utils import track_iter_progress
    return track_iter_progress(range(len(dataset)))


# --------------------------------------------------------------------------- pseudo-labels
def make_pseudo_labels(seam_config: Union[str, Config],
                       checkpoint: str,
                       out_dir: str,
                       data_root: Optional[str] = None,
                       cfg_options: Optional[dict] = None,
                       force: bool = False,
                       evaluate: bool = False,
                       progress: bool = True,
                       device: Optional[str] = None) -> dict:
    """Write SEAM pseudo-labels of the training images of a step.

    The step (split, step, setting) and the images are those of the SEAM config's training set
    (``incremental`` block, ``--cfg-options incremental.step=...`` to change). Each image gets
    ``<out_dir>/<image name>.png``, a VOC palette PNG of class ids in {0} + its labelled classes
    of the step, at the image's original size, written atomically. Existing files are kept unless
    ``force``.

    Args:
        seam_config (str | Config): A SEAM config (configs/seam/).
        checkpoint (str): The SEAMNet checkpoint of that step.
        out_dir (str): Folder of the PNGs, e.g. ``<run>/step<t>/pseudo_labels``.
        data_root (str, optional): Dataset root replacing the config's.
        cfg_options (dict, optional): Config overrides.
        force (bool): Re-make existing files. Default: False.
        evaluate (bool): Also compute the pseudo-label IoU against the true (step-remapped) masks
            over {0} + C_t and write ``<out_dir>/../pseudo_label_metrics.json``. Default: False.
        progress (bool): Show a progress bar. Default: True.
        device (str, optional): Torch device; default CUDA when available.

    Returns:
        dict: ``out_dir``, ``num_images``, ``written``, ``skipped``; with ``evaluate`` also
        ``mIoU``, ``aAcc`` (percent, 2 decimals; ignored pixels count as misses), ``per_class``
        ({class name: IoU}), ``ignored_fraction`` (share of 255 pixels) and ``metrics_file``.
    """
    cfg = load_seam_config(seam_config, data_root, cfg_options)
    model = build_seam_model(cfg, checkpoint, device)
    dataset = build_step_images(cfg)
    num_images = len(dataset)

    def label_of(data: dict) -> np.ndarray:
        return _predict(model, data).pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)

    written = skipped = 0
    scores = LabelScores()
    for info, path, label, was_written in label_step_images(
            dataset, out_dir, label_of, force=force, read_existing=evaluate, progress=progress):
        written += was_written
        skipped += not was_written
        if evaluate:
            scores.add(label, true_mask(info), path)
    result = dict(out_dir=out_dir, num_images=num_images, written=written, skipped=skipped)
    inc = cfg.incremental
    print_log(f"pseudo-labels of {inc['task']} step {inc['step']}: {written} written, {skipped} "
              f'kept, in {out_dir}', logger='current')
    if evaluate:
        # (pixels left unlabelled, 255: the uncertain band, or maps refused by max_foreground)
        metrics = scores.metrics(model.class_ids)
        metrics_file = osp.join(osp.dirname(osp.abspath(out_dir.rstrip('/\\'))),
                                PSEUDO_LABEL_METRICS_FILE)
        record = dict(config=getattr(cfg, 'filename', None), checkpoint=checkpoint,
                      task=inc['task'], step=inc['step'], setting=inc['setting'],
                      classes=model.class_ids, num_images=num_images, **metrics)
        with atomic_write(metrics_file) as f:
            json.dump(record, f, indent=2)
        result.update(metrics, metrics_file=metrics_file)
        print_log(f"pseudo-label mIoU {metrics['mIoU']} (background + "
                  f"{tasks.class_names(model.class_ids[1:])}), aAcc {metrics['aAcc']} -> "
                  f'{metrics_file}', logger='current')
    return result


def sweep_bg_alpha(seam_config: Union[str, Config],
                   checkpoint: str,
                   alphas: Sequence[float],
                   loader: str = 'val_dataloader',
                   ann_file: Optional[str] = None,
                   data_root: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   progress: bool = True,
                   device: Optional[str] = None) -> dict:
    """Pseudo-label quality of a SEAM checkpoint for several background scores (``bg_alpha``).

    Each image's CAMs are computed once (the config's ``test_cfg``: scales, flip, PCM, norm)
    and labelled with every alpha (the other ``test_cfg`` checks kept); each labelling is
    scored against the step-remapped true masks as :func:`make_pseudo_labels` scores its
    PNGs. Nothing is written. The images are the step's selection from the dataset of the SEAM
    config's ``loader``: its ``val_dataloader`` by default (VOC: VOC train's masks, where SEAM
    reports its CAMs), with ``ann_file`` another list of that dataset's folders (choose alpha on
    ``'ImageSets/Segmentation/val.txt'``); ``'train_dataloader'``: the images that get
    pseudo-labels (report the chosen alpha there).

    Args:
        seam_config (str | Config): A SEAM config (configs/seam/).
        checkpoint (str): The SEAMNet checkpoint of that step.
        alphas (Sequence[float]): Background scores to try, each in (0, 1].
        loader (str): Dataloader whose dataset is read. Default: 'val_dataloader'.
        ann_file (str, optional): Image list replacing that dataset's (its image and mask
            folders kept; :func:`build_step_images`). Default: None.
        data_root (str, optional): Dataset root replacing the config's.
        cfg_options (dict, optional): Config overrides.
        progress (bool): Show a progress bar. Default: True.
        device (str, optional): Torch device; default CUDA when available.

    Returns:
        dict: ``images`` (the list read), ``num_images``, ``classes`` and ``alphas``: one
        record per alpha (``bg_alpha``, ``mIoU``, ``aAcc``, ``per_class``,
        ``ignored_fraction``), in the given order; ``best``: the alpha of the highest mIoU.
    """
    alphas = [float(a) for a in alphas]
    if not alphas or any(not 0 < a <= 1 for a in alphas):
        raise ValueError(f'alphas must be background scores in (0, 1], got {alphas}')
    cfg = load_seam_config(seam_config, data_root, cfg_options)
    model = build_seam_model(cfg, checkpoint, device)
    ignore_below = model.test_cfg['ignore_below']
    if ignore_below is not None and min(alphas) < ignore_below:
        raise ValueError(f'alphas {alphas} go below the config\'s test_cfg.ignore_below='
                         f'{ignore_below}: sweep alphas >= it, or set '
                         'model.test_cfg.ignore_below=None')
    dataset = build_step_images(cfg, loader, ann_file)
    scores = {alpha: LabelScores() for alpha in alphas}
    for index in step_indices(dataset, progress):
        cams, img_labels = image_cams(model, dataset, index)  # once, not once per alpha
        info = dataset.get_data_info(index)
        gt = true_mask(info)
        for alpha in alphas:
            scores[alpha].add(model.cams_to_label(cams, img_labels, bg_alpha=alpha), gt,
                              info['img_path'])
    records = [dict(bg_alpha=alpha, **scores[alpha].metrics(model.class_ids))
               for alpha in alphas]
    scored = [r for r in records if not np.isnan(r['mIoU'])]
    best = max(scored, key=lambda r: r['mIoU'])['bg_alpha'] if scored else None
    inc = cfg.incremental
    return dict(config=getattr(cfg, 'filename', None), checkpoint=checkpoint,
                images=dataset.ann_file,
                task=inc['task'], step=inc['step'], classes=model.class_ids,
                num_images=len(dataset), alphas=records, best=best)


def accumulate_areas(areas: Optional[List[torch.Tensor]], label: np.ndarray, gt: np.ndarray,
                     path: str, num_classes: int = tasks.NUM_VOC_CLASSES) -> List[torch.Tensor]:
    """Add one image's intersection / union / label / prediction areas (mmseg's
    ``IoUMetric.intersect_and_union``, 255 ignored) of ``label`` against ``gt`` to ``areas``.

    Raises:
        ValueError: the two maps differ in size (names ``path``).
    """
    from mmseg.evaluation import IoUMetric
    if label.shape != gt.shape:
        raise ValueError(f'label map of {path} has size {label.shape}, its true mask '
                         f'{gt.shape}; a pseudo-label file of another image size: re-make it '
                         '(make_pseudo_labels --force)')
    new = IoUMetric.intersect_and_union(torch.from_numpy(label.astype(np.int64)),
                                        torch.from_numpy(gt.astype(np.int64)),
                                        num_classes, tasks.IGNORE_INDEX)
    return list(new) if areas is None else [a + b for a, b in zip(areas, new)]


def label_metrics(areas: Optional[List[torch.Tensor]], class_ids: Sequence[int],
                  names: Optional[Sequence[str]] = None) -> dict:
    """mIoU and aAcc (percent) over the label values ``class_ids`` (background included) from
    :func:`accumulate_areas`' sums; ``per_class`` keyed by ``names`` (default: VOC's names of
    the ids)."""
    if areas is None:
        return dict(mIoU=float('nan'), aAcc=float('nan'), per_class={})
    intersect, union, _, label_area = (a.double().numpy() for a in areas)
    ids = list(class_ids)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = intersect[ids] / union[ids]
    names = tasks.class_names(ids) if names is None else list(names)
    per_class = {name: (None if np.isnan(v) else round(float(v) * 100, 2))
                 for name, v in zip(names, iou)}
    miou = float(np.round(np.nanmean(iou) * 100, 2)) if not np.all(np.isnan(iou)) else float('nan')
    total = label_area.sum()
    a_acc = float(np.round(intersect.sum() / total * 100, 2)) if total else float('nan')
    return dict(mIoU=miou, aAcc=a_acc, per_class=per_class)


class LabelScores:
    """Running scores of label maps against true masks: the IoU areas
    (:func:`accumulate_areas`) and the share of unlabelled (255) pixels.

    Args:
        num_classes (int): Label values counted. Default: VOC's 21.
    """

    def __init__(self, num_classes: int = tasks.NUM_VOC_CLASSES) -> None:
        self.num_classes = num_classes
        self.areas: Optional[List[torch.Tensor]] = None
        self.ignored = self.pixels = 0

    def add(self, label: np.ndarray, gt: np.ndarray, path: str) -> None:
        """Count one image's ``label`` against its true mask ``gt`` (``path`` names it in the
        size error)."""
        self.areas = accumulate_areas(self.areas, label, gt, path, self.num_classes)
        self.ignored += int((label == tasks.IGNORE_INDEX).sum())
        self.pixels += label.size

    def metrics(self, class_ids: Sequence[int], names: Optional[Sequence[str]] = None) -> dict:
        """:func:`label_metrics` plus ``ignored_fraction`` (None before any image)."""
        metrics = label_metrics(self.areas, class_ids, names)
        metrics['ignored_fraction'] = (round(self.ignored / self.pixels, 4) if self.pixels
                                       else None)
        return metrics


# ------------------------------------------------------------------------------ run chain
def seam_config_of(config: str, cfg: Config, step: int) -> Tuple[str, dict]:
    """The SEAM config of a weak config's step and the overrides that pin it to that step
    (:func:`~mmincseg.apis.config.seam_of_step` of the config's ``incremental`` block).

    ``incremental.seam = dict(config='configs/seam/seam_r18_toyvoc_15-1.py',
    cfg_options=dict(...))``: one SEAM config serves every step, since the SEAM's split, step
    and setting are set to the weak step's data (for joint: all 20 classes, ``'20-0'`` step 0).
    A ``{step}`` in the path is replaced by the step (one SEAM file per step also works).
    """
    inc = check_incremental(cfg.get('incremental'), config)
    return seam_of_step(inc, config, step)


def make_old_model_labels(plan: StepPlan, seam_cfg: Config, progress: bool = True,
                          device: Optional[str] = None) -> dict:
    """The previous step's confident old-class pixels of a weak step's images (the SEAM's
    negatives, ``incremental.seam.negatives``).

    The step-(t-1) model (``plan.teacher_model`` loaded from ``plan.prev_checkpoint``) labels
    every training image of the SEAM config at its original size; a pixel keeps the old class it
    is given when its probability is at least ``plan.seam_negatives['threshold']`` and the class
    is not background (the old model calls the new objects background), else 255. One palette
    PNG per image in ``plan.seam_negatives['label_dir']`` (existing files kept), and
    ``<step_dir>/old_model_labels_metrics.json``: the share of pixels labelled (``coverage``)
    and the share of those that are no new-class object in the true mask (``precision``;
    reporting only, nothing trains on it).

    Args:
        plan (StepPlan): The weak step's plan, with ``seam_negatives``.
        seam_cfg (Config): Its resolved SEAM config (the images).
        progress (bool): Show a progress bar. Default: True.
        device (str, optional): Torch device; default CUDA when available.

    Returns:
        dict: ``label_dir``, ``num_images``, ``written``, ``skipped``, ``coverage``,
        ``precision`` and ``metrics_file``.
    """
    from ..engine.hooks.incremental_step_hook import build_teacher, find_last_checkpoint
    negatives = plan.seam_negatives
    if negatives is None or plan.teacher_model is None or plan.prev_checkpoint is None:
        raise ValueError(f'{plan.config}: step {plan.step} has no previous-step model to take '
                         'negatives from (incremental.seam.negatives)')
    from mmengine.registry import init_default_scope
    init_default_scope(seam_cfg.get('default_scope', 'mmseg'))  # before any runner sets it
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    teacher = build_teacher(ConfigDict(plan.teacher_model),  # mmseg reads test_cfg.mode
                            find_last_checkpoint(plan.prev_checkpoint)).to(device).eval()
    dataset = build_step_images(seam_cfg)
    out_dir = negatives['label_dir']
    new = np.zeros(256, dtype=bool)
    new[plan.new_classes] = True
    channels = torch.tensor(plan.channels[:len(plan.old_classes)], device=device)

    def label_of(data: dict) -> np.ndarray:
        prob = _predict(teacher, data).seg_logits.data.softmax(dim=0)
        conf, channel = prob.max(dim=0)
        keep = (conf >= negatives['threshold']) & (channel > 0)
        label = torch.where(keep, channels[channel], torch.full_like(channel, 255))
        return label.cpu().numpy().astype(np.uint8)

    written = skipped = labelled = correct = pixels = 0
    for info, _, label, was_written in label_step_images(dataset, out_dir, label_of,
                                                         progress=progress):
        written += was_written
        skipped += not was_written
        negative = (label != 0) & (label != tasks.IGNORE_INDEX)
        labelled += int(negative.sum())
        correct += int((negative & ~new[true_mask(info)]).sum())
        pixels += label.size
    metrics = dict(label_dir=out_dir, num_images=len(dataset), written=written, skipped=skipped,
                   threshold=negatives['threshold'],
                   coverage=round(labelled / pixels, 4) if pixels else None,
                   precision=round(correct / labelled, 4) if labelled else None)
    metrics_file = osp.join(plan.step_dir, f'{osp.basename(out_dir.rstrip("/"))}_metrics.json')
    with atomic_write(metrics_file) as f:
        json.dump(metrics, f, indent=2)
    print_log(f"step {plan.step}: previous model's old classes on {metrics['coverage']} of the "
              f"pixels (precision {metrics['precision']}) -> {out_dir}", logger='current')
    return dict(metrics, metrics_file=metrics_file)


def make_step_pseudo_labels(plan: StepPlan,
                            data_root: Optional[str] = None,
                            evaluate: bool = True) -> Optional[dict]:
    """Before a weakly supervised step: train its SEAM, then make its pseudo-labels.

    Everything comes from the step's plan: nothing to do unless ``plan.needs_pseudo_labels``;
    the SEAM config ``plan.seam_config`` trains with ``plan.seam_cfg_options`` into
    ``plan.seam_dir`` (skipped when finished, resumed when interrupted; its own end-of-training
    validation is skipped, see :func:`~mmincseg.apis.config.seam_training_options`), and the
    pseudo-labels go to ``plan.pseudo_label_dir`` (existing files kept). The SEAM config is loaded
    and resolved once.

    Args:
        plan (StepPlan): The plan of the weak step (:func:`~mmincseg.apis.plan.plan_step`).
        data_root (str, optional): Dataset root of every dataset (as given to the step).
        evaluate (bool): Write the pseudo-label mIoU against the true masks (reporting only).

    Returns:
        dict | None: The result of :func:`make_pseudo_labels`, None when nothing was needed.

    Raises:
        ValueError: the step needs pseudo-labels but its config names no SEAM config.
    """
    if not plan.needs_pseudo_labels:
        return None
    if plan.seam_config is None:
        raise missing_seam_config(plan.config)
    seam_plan, seam_cfg = plan_step(plan.seam_config, work_dir=plan.run_dir, data_root=data_root,
                                    cfg_options=plan.seam_cfg_options)
    if seam_plan.trains != 'seam' or seam_plan.work_dir != plan.seam_dir:
        raise ValueError(f'{plan.seam_config} (incremental.seam.config of {plan.config}) is not a '
                         f'SEAM config training into {plan.seam_dir} (model.type '
                         f"{seam_cfg.model.get('type')!r}, work_dir {seam_plan.work_dir}); use one "
                         'of configs/seam/')
    if plan.seam_negatives is not None:
        make_old_model_labels(plan, seam_cfg)
    if step_is_finished(plan.seam_dir):
        print_log(f'step {plan.step}: SEAM finished earlier ({plan.seam_dir}), not retrained',
                  logger='current')
    else:
        print_log(f'===== SEAM for step {plan.step} ({plan.seam_config}) -> {plan.seam_dir}',
                  logger='current')
        interrupted = osp.isfile(checkpoint_record(plan.seam_dir))
        train_resolved(copy.deepcopy(seam_cfg), resume=interrupted)
    from ..engine.hooks import find_last_checkpoint
    checkpoint = find_last_checkpoint(plan.seam_dir)
    return make_pseudo_labels(seam_cfg, checkpoint, plan.pseudo_label_dir, evaluate=evaluate)


def pseudo_labels_of_step(config: str,
                          work_dir: Optional[str] = None,
                          data_root: Optional[str] = None,
                          cfg_options: Optional[dict] = None,
                          evaluate: bool = True) -> Tuple[StepPlan, dict]:
    """Plan a weak step config's step and make its pseudo-labels (:func:`make_step_pseudo_labels`):
    the SEAM is trained into ``plan.seam_dir`` unless finished, the PNGs go to
    ``plan.pseudo_label_dir``. What ``tools/make_pseudo_labels.py WEAK_CONFIG`` runs.

    Raises:
        ValueError: ``config`` is a SEAM config (give its checkpoint: :func:`make_pseudo_labels`)
            or its step trains on true masks (step 0, ``labels='gt'``).
    """
    plan, _ = plan_step(config, work_dir, data_root, cfg_options)
    if plan.trains == 'seam':
        raise ValueError(f'{config} is a SEAM config: give its checkpoint too '
                         f'(tools/make_pseudo_labels.py {config} SEAM_CHECKPOINT --out DIR), or '
                         'give the weak step config that names it')
    if not plan.needs_pseudo_labels:
        raise ValueError(f'{config} step {plan.step} trains on true masks (labels='
                         f"{plan.labels!r}): nothing to make. Pick a step > 0 of a weak config "
                         "(--cfg-options incremental.step=1) or one with labels='seam'")
    return plan, make_step_pseudo_labels(plan, data_root, evaluate)


# --------------------------------------------------------------------------- visualisation
def visualize_cams(seam_config: Union[str, Config],
                   checkpoint: str,
                   out_dir: str,
                   names: Optional[Sequence[str]] = None,
                   num_images: int = 4,
                   data_root: Optional[str] = None,
                   cfg_options: Optional[dict] = None,
                   device: Optional[str] = None) -> List[str]:
    """Write, per image, ``image | CAM of each labelled class | pseudo-label | true mask``.

    Args:
        seam_config (str | Config): A SEAM config.
        checkpoint (str): Its SEAMNet checkpoint.
        out_dir (str): Output folder; files ``<image name>_cams.png``.
        names (Sequence[str], optional): Image names (without extension) among the step's training
            images; default the first ``num_images``.
        num_images (int): Images when ``names`` is None. Default: 4.
        data_root, cfg_options, device: As :func:`make_pseudo_labels`.

    Returns:
        list[str]: The written files.
    """
    import cv2

    cfg = load_seam_config(seam_config, data_root, cfg_options)
    model = build_seam_model(cfg, checkpoint, device)
    dataset = build_step_images(cfg)
    palette = bgr_palette()
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for index in pick_images(dataset, names, num_images):
        info = dataset.get_data_info(index)
        cams, labels = image_cams(model, dataset, index)  # as the pseudo-labels see them
        image = cv2.imread(info['img_path'], cv2.IMREAD_COLOR)
        pseudo = model.cams_to_label(cams, labels)
        panels = [(image, 'image')]
        for class_id in labels:
            if class_id in model.class_ids:
                panels.append((heat_overlay(image, cams[model.class_ids.index(class_id)]),
                               f'CAM {tasks.VOC_CLASSES[class_id]}'))
        panels.append((palette[pseudo], 'pseudo-label'))
        panels.append((palette[true_mask(info)], 'true mask'))
        name = osp.splitext(osp.basename(info['img_path']))[0]
        written.append(write_panels(osp.join(out_dir, f'{name}_cams.png'), panels))
    return written


def pick_images(dataset, names: Optional[Sequence[str]], num_images: int) -> List[int]:
    """Indices of the images ``names`` (without extension) of a step's training images, or of
    the first ``num_images``.

    Raises:
        ValueError: a name is not a training image of the step (names some that are).
    """
    if not names:
        return list(range(min(num_images, len(dataset))))
    index_of = {osp.splitext(osp.basename(dataset.get_data_info(i)['img_path']))[0]: i
                for i in range(len(dataset))}
    missing = [n for n in names if n not in index_of]
    if missing:
        raise ValueError(f'images {missing} are not training images of this step; some of '
                         f'its images: {sorted(index_of)[:5]}')
    return [index_of[n] for n in names]


def bgr_palette() -> np.ndarray:
    """VOC's palette as a (256, 3) BGR array (class-id maps to OpenCV colours)."""
    return np.asarray(tasks.voc_palette(), dtype=np.uint8).reshape(256, 3)[:, ::-1]


def heat_overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """A [0, 1] map as a JET heat map over a BGR image (half and half)."""
    import cv2
    colours = cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.addWeighted(image, 0.5, colours, 0.5, 0)


def write_panels(path: str, panels: List[Tuple[np.ndarray, str]]) -> str:
    """Write titled panels side by side as one PNG, atomically; returns ``path``."""
    import cv2
    ok, png = cv2.imencode('.png', _side_by_side(panels))
    if not ok:
        raise RuntimeError(f'cannot encode {path}')
    with atomic_write(path, 'wb') as f:
        f.write(png.tobytes())
    return path


def _side_by_side(panels: List[Tuple[np.ndarray, str]], gap: int = 4,
                  min_height: int = 256) -> np.ndarray:
    """Panels of equal height in a row, each with its title above (small images enlarged)."""
    import cv2
    factor = max(1, int(np.ceil(min_height / panels[0][0].shape[0])))
    if factor > 1:
        panels = [(cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST),
                   title) for img, title in panels]
    height = panels[0][0].shape[0]
    scale = max(0.3, height / 400)
    title_h = int(22 * scale) + 6
    columns = []
    for img, title in panels:
        column = np.full((height + title_h, img.shape[1], 3), 255, dtype=np.uint8)
        column[title_h:] = img
        cv2.putText(column, title, (2, title_h - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
        columns += [column, np.full((height + title_h, gap, 3), 255, dtype=np.uint8)]
    return np.concatenate(columns[:-1], axis=1)
