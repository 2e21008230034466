"""PASCAL VOC for one step of a class-incremental split."""
import hashlib
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS
from PIL import Image

from ..tasks import (IGNORE_INDEX, NUM_VOC_CLASSES, check_setting, class_names, classes_of_step,
                     classes_seen, future_classes, new_classes, require_step)
from ..utils.io import atomic_write
from .image_labels import IMAGE_LABELS_FILE, read_image_labels
from .samplers import sample_random_state

VALID_LABELS = frozenset(range(NUM_VOC_CLASSES)) | {IGNORE_INDEX}
INDEX_VERSION = 1
# VOC2012 + SBD (the protocol's 10582 training images) and plain VOC2012 (1464)
SBD_SPLIT, SBD_MASKS = 'train_aug.txt', 'SegmentationClassAug'
PLAIN_SPLIT, PLAIN_MASKS = 'train.txt', 'SegmentationClass'


def default_cache_dir() -> str:
    """Where per-image class indices are cached (``$MMINCSEG_CACHE/index``)."""
    root = os.environ.get('MMINCSEG_CACHE', osp.join(osp.expanduser('~'), '.cache', 'mmincseg'))
    return osp.join(root, 'index')


def read_mask_classes(path: str) -> List[int]:
    """Class ids (background and 255 excluded) present in a VOC mask.

    Raises:
        ValueError: the file cannot be decoded, or has values outside {0..20, 255}.
    """
    try:
        with Image.open(path) as img:
            mask = np.asarray(img)
    except Exception as e:  # PIL raises several types for truncated / non-image files
        raise ValueError(f'cannot read mask {path}: {e}. Re-extract the file or remove its name '
                         'from the split list.') from e
    if mask.ndim != 2:
        raise ValueError(f'mask {path} has shape {mask.shape}; expected a single-channel '
                         '(palette or grayscale) PNG of class indices')
    values = np.unique(mask)
    bad = sorted(set(values.tolist()) - VALID_LABELS)
    if bad:
        raise ValueError(f'mask {path} has label values {bad} outside {{0..20, 255}}; VOC masks '
                         'hold class indices (a colour-RGB mask must be converted to indices)')
    return [int(v) for v in values if 0 < v < NUM_VOC_CLASSES]


def scan_mask_classes(seg_paths: List[str], cache_dir: Optional[str] = None) -> List[List[int]]:
    """Classes of every mask, cached on disk keyed by path, size and mtime of each file.

    A VOC-aug pass reads 10k masks; later steps and runs reuse the cache and re-read only masks
    whose file changed.
    """
    cache_dir = cache_dir or default_cache_dir()
    key = hashlib.sha1('\n'.join(osp.abspath(p) for p in seg_paths).encode()).hexdigest()[:16]
    cache_file = osp.join(cache_dir, f'mask_classes_{key}.json')
    cached: Dict[str, list] = {}
    if osp.isfile(cache_file):
        try:
            with open(cache_file) as f:
                data = json.load(f)
            if data.get('version') == INDEX_VERSION:
                cached = data['entries']
        except (OSError, ValueError, KeyError):
            cached = {}  # a broken cache is rebuilt, never trusted
    entries, result, changed = {}, [], False
    for path in seg_paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise FileNotFoundError(f'mask {path} listed in the split file does not exist; check '
                                    '--data-root and data_prefix.seg_map_path') from None
        stamp = [st.st_size, st.st_mtime_ns]
        hit = cached.get(path)
        if hit is not None and hit[0] == stamp:
            classes = hit[1]
        else:
            classes = read_mask_classes(path)
            changed = True
        entries[path] = [stamp, classes]
        result.append(classes)
    if changed or len(entries) != len(cached):
        try:
            with atomic_write(cache_file) as f:
                json.dump({'version': INDEX_VERSION, 'entries': entries}, f)
        except OSError:
            pass  # read-only cache location: work without a cache
    return result


def check_images_exist(img_paths: List[str], ann_file: str) -> None:
    """Fail before training when images listed in the split file are missing.

    Raises:
        FileNotFoundError: naming the first missing images and how to fix it.
    """
    missing = [p for p in img_paths if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} image(s) listed in {ann_file} do not exist, e.g. {missing[:3]}; '
            'check --data-root and data_prefix.img_path, or remove their names from the split '
            'list.')


def _raised_by_mmincseg(error: BaseException) -> bool:
    """Whether ``error`` was raised by mmincseg code (whose messages already name the file)."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get('__name__', '')).startswith('mmincseg.')


def select_step_images(image_classes: List[List[int]], task: str, step: int,
                       setting: str) -> List[int]:
    """Indices of the training images of ``step``.

    Overlapped: every image that contains a class of step ``step``. Disjoint: additionally drop
    images that contain a class of a later step.
    """
    check_setting(setting)
    wanted = set(new_classes(task, step))
    future = set(future_classes(task, step))
    keep = []
    for i, classes in enumerate(image_classes):
        present = set(classes)
        if not present & wanted:
            continue
        if setting == 'disjoint' and present & future:
            continue
        keep.append(i)
    return keep


def train_label_map(task: str, step: int) -> Dict[int, int]:
    """Training remapping of step ``step``: classes not in C_t become background (255 kept)."""
    current = set(classes_of_step(task, step))
    return {c: (c if c in current else 0) for c in range(NUM_VOC_CLASSES)}


def val_label_map(task: str, step: int) -> Dict[int, int]:
    """Validation remapping: classes not learned yet become 255 (ignored)."""
    seen = set(classes_seen(task, step))
    return {c: (c if c in seen else IGNORE_INDEX) for c in range(NUM_VOC_CLASSES)}


@DATASETS.register_module()
class IncrementalVOCDataset(PascalVOCDataset):
    """PASCAL VOC restricted to one step of a class-incremental split.

    Loading is mmseg's ``PascalVOCDataset``; this class selects the images of the step and sets
    the per-image ``label_map`` that mmseg's ``LoadAnnotations`` applies. ``metainfo['classes']``
    are the classes seen up to the step (in channel order), so metrics and visualisers see
    exactly the model's output channels.

    Args:
        task (str): Split name from :mod:`mmincseg.tasks`, e.g. ``'15-5'``. Required: the
            resolver sets it from the config's ``incremental`` block (no default split).
        step (int): Step index. Required, as ``task``.
        setting (str): ``'overlap'`` or ``'disjoint'``.
        subset (str, optional): ``'train'`` (select the step's images, unseen/old classes -> 0)
            or ``'val'`` (all images, classes not learned yet -> 255). Defaults to ``'val'``
            when ``test_mode`` else ``'train'``.
        image_labels_file (str, optional): Image-level labels file relative to ``data_root``;
            when it does not exist, image labels are derived from the masks.
        cache_dir (str, optional): Where to cache the per-image class index.
        **kwargs: Passed to ``PascalVOCDataset`` (``ann_file``, ``data_root``, ``data_prefix``,
            ``pipeline``...).
    """

    def __init__(self,
                 task: Optional[str] = None,
                 step: Optional[int] = None,
                 setting: str = 'overlap',
                 subset: Optional[str] = None,
                 image_labels_file: str = IMAGE_LABELS_FILE,
                 cache_dir: Optional[str] = None,
                 **kwargs) -> None:
        require_step('IncrementalVOCDataset', task, step)
        check_setting(setting)
        seen = classes_seen(task, step)  # validates task and step
        self.task, self.step, self.setting = task, step, setting
        self.subset = subset or ('val' if kwargs.get('test_mode', False) else 'train')
        if self.subset not in ('train', 'val'):
            raise ValueError(f"subset must be 'train' or 'val', got {self.subset!r}")
        self.image_labels_file = image_labels_file
        self.cache_dir = cache_dir
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        metainfo['classes'] = tuple(class_names(seen))
        super().__init__(metainfo=metainfo, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Load the split list, select the step's images and attach labels and label maps."""
        self._fall_back_without_sbd()
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'split list {self.ann_file} does not exist. Point --data-root at a VOC2012 '
                'folder (VOCdevkit/VOC2012 layout) or make the toy one with tools/make_toy_voc.py')
        data_list = super().load_data_list()
        check_images_exist([d['img_path'] for d in data_list], self.ann_file)
        image_classes = scan_mask_classes([d['seg_map_path'] for d in data_list], self.cache_dir)
        labels_path = osp.join(self.data_root or '', self.image_labels_file or '')
        file_labels = read_image_labels(labels_path) if (
            self.image_labels_file and osp.isfile(labels_path)) else None

        if self.subset == 'train':
            keep = select_step_images(image_classes, self.task, self.step, self.setting)
            if not keep:
                raise ValueError(
                    f"split '{self.task}' step {self.step} ({self.setting}) selects no images "
                    f'from {self.ann_file}: none contains a class of '
                    f'{class_names(new_classes(self.task, self.step))}. Use a larger split list, '
                    "the 'overlap' setting, or check the masks.")
            label_map = train_label_map(self.task, self.step)
            label_space = set(classes_of_step(self.task, self.step))
        else:
            keep = list(range(len(data_list)))
            label_map = val_label_map(self.task, self.step)
            label_space = set(classes_seen(self.task, self.step))

        selected = []
        for i in keep:
            info = data_list[i]
            name = osp.splitext(osp.basename(info['img_path']))[0]
            if file_labels is not None and name in file_labels:
                present = file_labels[name]
            else:
                present = image_classes[i]
            info['label_map'] = label_map
            info['img_labels'] = sorted(c for c in present if c in label_space and c != 0)
            selected.append(info)
        return selected

    def _fall_back_without_sbd(self) -> None:
        """Train on ``train.txt`` + ``SegmentationClass/`` when a VOC2012 folder lacks SBD.

        Most people first have plain VOC2012 (1464 training masks); the protocol's 10582 images
        need the SBD extension (``SegmentationClassAug/``, ``train_aug.txt``). Without it the step
        trains on what there is, and one warning says how many images that is and how to add SBD.
        """
        if osp.isfile(self.ann_file) or osp.basename(self.ann_file) != SBD_SPLIT:
            return
        plain = osp.join(osp.dirname(self.ann_file), PLAIN_SPLIT)
        if not osp.isfile(plain):
            return  # the missing-split-list error names the SBD list
        seg_dir = self.data_prefix.get('seg_map_path', '')
        if osp.basename(seg_dir.rstrip('/')) == SBD_MASKS and not osp.isdir(seg_dir):
            self.data_prefix['seg_map_path'] = osp.join(osp.dirname(seg_dir.rstrip('/')),
                                                        PLAIN_MASKS)
        with open(plain) as f:
            count = sum(1 for line in f if line.strip())
        print_log(
            f'{self.ann_file} does not exist (VOC2012 without the SBD extension): training on the '
            f'{count} images of {plain} with masks from {self.data_prefix["seg_map_path"]}. The '
            f'protocol trains on the 10582 images of {SBD_SPLIT}: add SBD with mmseg\'s '
            f'tools/dataset_converters/voc_aug.py ({SBD_MASKS}/ and {SBD_SPLIT}).',
            logger='current', level=logging.WARNING)
        self.ann_file = plain

    def __getitem__(self, idx: int) -> dict:
        """Sample ``idx``; a :class:`SampleIndex` first seeds its random transforms."""
        with sample_random_state(idx):
            return super().__getitem__(int(idx))

    def prepare_data(self, idx: int):
        """Run the pipeline on sample ``idx``; a failure names the sample's files and the fix.

        Decoding errors of a corrupt or truncated image (mmcv reports ``failed to load image``)
        or mask surface as one ``ValueError`` (``FileNotFoundError`` for a file that vanished)
        naming the image, its mask and the split list, instead of an assertion deep inside a
        data-loader worker. Errors raised by mmincseg's own transforms already say this and pass
        unchanged.
        """
        try:
            return super().prepare_data(idx)
        except Exception as e:
            if _raised_by_mmincseg(e):
                raise
            info = self.get_data_info(idx)
            name = osp.splitext(osp.basename(info['img_path']))[0]
            error = FileNotFoundError if isinstance(e, FileNotFoundError) else ValueError
            raise error(
                f"cannot load sample '{name}' of {self.ann_file} (image {info['img_path']}, "
                f"mask {info.get('seg_map_path')}): {type(e).__name__}: {e}. If a file is "
                f"corrupt or truncated, re-extract it (the toy VOC: re-run "
                f"tools/make_toy_voc.py) or remove '{name}' from the split list.") from e
