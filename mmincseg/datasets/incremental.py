"""One step of a class-incremental split for any mmseg ``BaseSegDataset``.

:class:`IncrementalDatasetMixin` selects the images of the step and sets the per-image
``label_map`` that mmseg's ``LoadAnnotations`` applies; it works on top of any mmseg dataset
class, whose loading it keeps. Two ways in:

- ``IncrementalVOCDataset`` (PASCAL VOC, ``datasets/incremental_voc.py``), the mixin on
  ``PascalVOCDataset``;
- ``dict(type='IncrementalDataset', base_type='ADE20KDataset', ...)`` for any other registered
  dataset (``base_type`` defaults to mmseg's ``BaseSegDataset``, so a user's dataset can be given
  by config alone: ``metainfo=dict(classes=...)``, folders, suffixes).

**Class ids** are the dataset's own label values, background 0 included
(:func:`dataset_class_names`). A dataset whose label 0 is not one of its classes (mmseg's
``reduce_zero_label=True``, e.g. ADE20K, whose label 0 is "other") is read as MiB reads ADE20K:
label 0 is the background class, trained as background and ignored (255) in evaluation; the
classes keep their label values 1..N (mmseg's ``reduce_zero_label`` is turned off, the step's
label map does the rest). **Channels** follow the class order (``tasks.resolve_order``): labels
are mapped to the channel of their class, ``metainfo['classes']`` lists the seen classes in
channel order.
"""
import hashlib
import inspect
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image

from ..tasks import IGNORE_INDEX, OrderSpec, Split, check_setting, get_split, require_step
from ..utils.io import atomic_write
from .image_labels import IMAGE_LABELS_FILE, read_image_labels
from .samplers import sample_random_state

INDEX_VERSION = 1
BACKGROUND = 'background'
TaskOrSplit = Union[str, Split]


def default_cache_dir() -> str:
    """Where per-image class indices are cached (``$MMINCSEG_CACHE/index``)."""
    root = os.environ.get('MMINCSEG_CACHE', osp.join(osp.expanduser('~'), '.cache', 'mmincseg'))
    return osp.join(root, 'index')


# --------------------------------------------------------------------------------------------------
# Class space of a dataset
# --------------------------------------------------------------------------------------------------
def _dataset_class(dataset_type) -> Type[BaseSegDataset]:
    cls = dataset_type if isinstance(dataset_type, type) else DATASETS.get(dataset_type)
    if cls is None or not issubclass(cls, BaseSegDataset):
        raise ValueError(f'base_type={dataset_type!r} (IncrementalDataset) is not a registered '
                         "mmseg BaseSegDataset; give its registered name, e.g. 'ADE20KDataset', "
                         "or 'BaseSegDataset' for a dataset described by config")
    return cls


def _default_reduce_zero_label(cls: type) -> bool:
    """``reduce_zero_label`` a dataset class uses when the config does not set it."""
    for klass in cls.__mro__:
        if klass.__dict__.get('__init__') is None:
            continue
        param = inspect.signature(klass.__init__).parameters.get('reduce_zero_label')
        if param is not None and param.default is not inspect.Parameter.empty:
            return bool(param.default)
    return False


def class_space(dataset_cls: type, metainfo: Optional[dict] = None,
                reduce_zero_label: Optional[bool] = None) -> Tuple[Tuple[str, ...], bool]:
    """Names of a dataset's label values and whether its label 0 is "no class".

    Args:
        dataset_cls (type): The mmseg dataset class.
        metainfo (dict, optional): The config's ``metainfo`` (its ``classes`` win over the
            class's ``METAINFO``).
        reduce_zero_label (bool, optional): The config's value; None: the class's default.

    Returns:
        tuple: ``(names, zero_is_void)``: ``names[v]`` is the class of label value ``v``
        (``names[0]`` the background); ``zero_is_void`` for datasets whose label 0 is not one of
        their classes (``'background'`` is prepended to theirs).

    Raises:
        ValueError: the dataset names no classes (give ``metainfo=dict(classes=...)``).
    """
    classes = (metainfo or {}).get('classes') or dataset_cls.METAINFO.get('classes')
    if not classes:
        raise ValueError(f'{dataset_cls.__name__} names no classes: give the dataset config '
                         "metainfo=dict(classes=('background', 'cat', ...)) (label value v is "
                         'classes[v]; with reduce_zero_label=True label 0 is the background and '
                         'classes[i] is label i + 1)')
    zero_is_void = (_default_reduce_zero_label(dataset_cls)
                    if reduce_zero_label is None else bool(reduce_zero_label))
    names = ((BACKGROUND, ) if zero_is_void else ()) + tuple(classes)
    return names, zero_is_void


def dataset_class_names(cfg: dict) -> Tuple[str, ...]:
    """Names of the label values of an incremental dataset config (background first).

    ``IncrementalVOCDataset``: VOC's 21; ``IncrementalDataset``: its ``base_type``'s classes (or
    ``metainfo.classes``), with background prepended when label 0 is not a class.
    """
    dataset_type = cfg.get('type')
    if dataset_type in ('IncrementalDataset', 'mmseg.IncrementalDataset'):
        base = _dataset_class(cfg.get('base_type', 'BaseSegDataset'))
    else:
        base = _dataset_class(dataset_type)
    return class_space(base, cfg.get('metainfo'), cfg.get('reduce_zero_label'))[0]


def _palette(dataset_cls: type, metainfo: Optional[dict], names: Sequence[str],
             zero_is_void: bool) -> List[List[int]]:
    """A colour per label value: the dataset's palette (black background prepended when label 0
    is not a class), else mmseg's fixed random one."""
    palette = list((metainfo or {}).get('palette') or dataset_cls.METAINFO.get('palette') or [])
    if zero_is_void and len(palette) == len(names) - 1:
        palette = [[0, 0, 0]] + palette
    if len(palette) != len(names):
        state = np.random.get_state()
        np.random.seed(42)  # mmseg's choice for datasets without a palette
        palette = np.random.randint(0, 255, size=(len(names), 3)).tolist()
        np.random.set_state(state)
    return [list(map(int, c)) for c in palette]


# --------------------------------------------------------------------------------------------------
# Per-image class index
# --------------------------------------------------------------------------------------------------
def read_mask_classes(path: str, num_classes: int = 21) -> List[int]:
    """Class ids (background 0 and 255 excluded) present in a mask of class indices.

    Raises:
        ValueError: the file cannot be decoded, or has values outside ``{0..num_classes-1, 255}``.
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
    bad = [int(v) for v in values if not (v < num_classes or v == IGNORE_INDEX)]
    if bad:
        raise ValueError(f'mask {path} has label values {bad} outside {{0..{num_classes - 1}, '
                         f'{IGNORE_INDEX}}}; masks hold class indices (a colour-RGB mask must be '
                         'converted to indices), and the dataset has '
                         f'{num_classes} label values')
    return [int(v) for v in values if 0 < v < num_classes]


def scan_mask_classes(seg_paths: List[str], cache_dir: Optional[str] = None,
                      num_classes: int = 21) -> List[List[int]]:
    """Classes of every mask, cached on disk keyed by path, size and mtime of each file.

    A VOC-aug pass reads 10k masks (ADE20K 20k); later steps and runs reuse the cache and
    re-read only masks whose file changed.
    """
    cache_dir = cache_dir or default_cache_dir()
    keyed = '\n'.join(osp.abspath(p) for p in seg_paths) + f'\n#classes={num_classes}'
    key = hashlib.sha1(keyed.encode()).hexdigest()[:16]
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
            classes = read_mask_classes(path, num_classes)
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
            f'{len(missing)} image(s) listed in {ann_file or "the image folder"} do not exist, '
            f'e.g. {missing[:3]}; check --data-root and data_prefix.img_path, or remove their '
            'names from the split list.')


# --------------------------------------------------------------------------------------------------
# Selection and label maps of a step
# --------------------------------------------------------------------------------------------------
def _split(task: TaskOrSplit) -> Split:
    return task if isinstance(task, Split) else get_split(task)


def select_step_images(image_classes: List[List[int]], task: TaskOrSplit, step: int,
                       setting: str) -> List[int]:
    """Indices of the training images of ``step``.

    Overlapped: every image that contains a class of step ``step``. Disjoint: additionally drop
    images that contain a class of a later step.

    Args:
        image_classes: Class ids present in each image (background excluded).
        task: A VOC split name, or the :class:`~mmincseg.tasks.Split` of any dataset and order.
        step: The step.
        setting: ``'overlap'`` or ``'disjoint'``.
    """
    check_setting(setting)
    split = _split(task)
    wanted = set(split.new_classes(step))
    future = set(split.future_classes(step))
    keep = []
    for i, classes in enumerate(image_classes):
        present = set(classes)
        if not present & wanted:
            continue
        if setting == 'disjoint' and present & future:
            continue
        keep.append(i)
    return keep


def train_label_map(task: TaskOrSplit, step: int) -> Dict[int, int]:
    """Training remapping of step ``step``: each class of C_t to its channel, every other class
    to background 0 (255 kept). Label 0 stays background (also where it is "no class": MiB)."""
    split = _split(task)
    channel = {c: k for k, c in enumerate(split.channels)}
    current = set(split.classes_of_step(step))
    return {c: (channel[c] if c in current else 0) for c in range(split.num_classes)}


def val_label_map(task: TaskOrSplit, step: int, zero_is_void: bool = False) -> Dict[int, int]:
    """Validation remapping: each seen class to its channel, classes not learned yet to 255
    (ignored); label 0 too when it is not a class (``zero_is_void``, ADE20K as MiB)."""
    split = _split(task)
    channel = {c: k for k, c in enumerate(split.channels)}
    seen = set(split.classes_seen(step))
    mapping = {c: (channel[c] if c in seen else IGNORE_INDEX) for c in range(split.num_classes)}
    if zero_is_void:
        mapping[0] = IGNORE_INDEX
    return mapping


def _raised_by_mmincseg(error: BaseException) -> bool:
    """Whether ``error`` was raised by mmincseg code (whose messages already name the file)."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get('__name__', '')).startswith('mmincseg.')


def _without_reduce_zero_label(pipeline: Optional[Sequence]) -> list:
    """The pipeline with ``LoadAnnotations(reduce_zero_label=True)`` reading the dataset's value
    (mmseg asserts that both agree; the incremental label map handles label 0 instead)."""
    out = []
    for t in pipeline or []:
        if isinstance(t, dict) and t.get('type') in ('LoadAnnotations', 'mmseg.LoadAnnotations') \
                and t.get('reduce_zero_label'):
            t = dict(t, reduce_zero_label=None)
        out.append(t)
    return out


class IncrementalDatasetMixin:
    """One step of a class-incremental split, mixed into an mmseg dataset class.

    Loading is the dataset class's own (``load_data_list``); this mixin selects the images of the
    step and sets each image's ``label_map`` (and ``img_labels``, the class ids it contains).
    ``metainfo['classes']`` are the classes seen up to the step in channel order, so metrics and
    visualisers see exactly the model's output channels.

    Args:
        task (str): Split name (:mod:`mmincseg.tasks`), e.g. ``'15-5'``, ``'100-50'``. Required:
            the resolver sets it from the config's ``incremental`` block (no default split).
        step (int): Step index. Required, as ``task``.
        setting (str): ``'overlap'`` or ``'disjoint'``.
        order (optional): The class order (``incremental.order``); None: identity.
        subset (str, optional): ``'train'`` (select the step's images, unseen/old classes -> 0)
            or ``'val'`` (all images, classes not learned yet -> 255). Defaults to ``'val'``
            when ``test_mode`` else ``'train'``.
        image_labels_file (str, optional): Image-level labels file relative to ``data_root``;
            when it does not exist, image labels are derived from the masks.
        cache_dir (str, optional): Where to cache the per-image class index.
        **kwargs: Passed to the dataset class (``data_root``, ``data_prefix``, ``pipeline``...).
    """

    def __init__(self,
                 task: Optional[str] = None,
                 step: Optional[int] = None,
                 setting: str = 'overlap',
                 order: OrderSpec = None,
                 subset: Optional[str] = None,
                 image_labels_file: str = IMAGE_LABELS_FILE,
                 cache_dir: Optional[str] = None,
                 **kwargs) -> None:
        require_step(type(self).__name__, task, step)
        check_setting(setting)
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        self.class_names, self.zero_is_void = class_space(
            type(self), metainfo, kwargs.pop('reduce_zero_label', None))
        self.split = get_split(task, len(self.class_names), order)
        seen = self.split.classes_seen(step)  # validates the step
        self.task, self.step, self.setting, self.order = task, step, setting, order
        self.subset = subset or ('val' if kwargs.get('test_mode', False) else 'train')
        if self.subset not in ('train', 'val'):
            raise ValueError(f"subset must be 'train' or 'val', got {self.subset!r}")
        self.image_labels_file = image_labels_file
        self.cache_dir = cache_dir
        palette = _palette(type(self), metainfo, self.class_names, self.zero_is_void)
        metainfo.update(classes=tuple(self.class_names[c] for c in seen),
                        palette=[palette[c] for c in seen], zero_is_void=self.zero_is_void)
        if self.zero_is_void:
            kwargs['pipeline'] = _without_reduce_zero_label(kwargs.get('pipeline'))
        super().__init__(metainfo=metainfo, reduce_zero_label=False, **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> None:
        """No dataset-wide label map: every image gets the step's (:meth:`load_data_list`)."""
        return None

    @property
    def num_classes(self) -> int:
        """Label values of the dataset, background included."""
        return len(self.class_names)

    def _before_loading(self) -> None:
        """Hook of subclasses run before the split list is read (VOC: the SBD fallback)."""

    def load_data_list(self) -> List[dict]:
        """Load the image list, select the step's images and attach labels and label maps."""
        self._before_loading()
        if self.ann_file and not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'split list {self.ann_file} does not exist. Point --data-root at the dataset '
                'folder (VOCdevkit/VOC2012 or ADEChallengeData2016 layout), or make a toy one '
                'with tools/make_toy_voc.py / tools/make_toy_ade.py')
        img_dir = self.data_prefix.get('img_path', '')
        if not self.ann_file and not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'image folder {img_dir} does not exist; check --data-root and '
                'data_prefix.img_path (ADE20K: images/training, images/validation)')
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(f'{type(self).__name__} found no images in '
                             f'{self.ann_file or img_dir} (img_suffix {self.img_suffix!r})')
        check_images_exist([d['img_path'] for d in data_list], self.ann_file)
        image_classes = scan_mask_classes([d['seg_map_path'] for d in data_list], self.cache_dir,
                                          self.num_classes)
        labels_path = osp.join(self.data_root or '', self.image_labels_file or '')
        file_labels = read_image_labels(labels_path, self.num_classes) if (
            self.image_labels_file and osp.isfile(labels_path)) else None

        split, step = self.split, self.step
        if self.subset == 'train':
            keep = select_step_images(image_classes, split, step, self.setting)
            if not keep:
                new = [self.class_names[c] for c in split.new_classes(step)]
                raise ValueError(
                    f"split '{self.task}' step {step} ({self.setting}) selects no images "
                    f'from {self.ann_file or img_dir}: none contains a class of {new}. Use a '
                    "larger split list, the 'overlap' setting, or check the masks.")
            label_map = train_label_map(split, step)
            label_space = set(split.classes_of_step(step))
        else:
            keep = list(range(len(data_list)))
            label_map = val_label_map(split, step, self.zero_is_void)
            label_space = set(split.classes_seen(step))
        # mmseg's LoadAnnotations rewrites the mask once per entry: identities are left out
        label_map = {k: v for k, v in label_map.items() if k != v}

        selected = []
        for i in keep:
            info = data_list[i]
            name = osp.splitext(osp.basename(info['img_path']))[0]
            if file_labels is not None and name in file_labels:
                present = file_labels[name]
            else:
                present = image_classes[i]
            info['label_map'] = label_map
            info['reduce_zero_label'] = False
            info['img_labels'] = sorted(c for c in present if c in label_space and c != 0)
            selected.append(info)
        return selected

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
                f"cannot load sample '{name}' of {self.ann_file or 'the image folder'} (image "
                f"{info['img_path']}, mask {info.get('seg_map_path')}): {type(e).__name__}: {e}. "
                f'If a file is corrupt or truncated, re-extract it (a toy dataset: re-run its '
                f"tools/make_toy_*.py) or remove '{name}' from the split list.") from e


_CLASSES: Dict[type, type] = {}


def _rebuild(base: type, state: dict):
    """Unpickle an instance of :func:`incremental_dataset_class` ``(base)`` (made on demand)."""
    cls = incremental_dataset_class(base)
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


def incremental_dataset_class(base: type) -> type:
    """The class ``Incremental<Base>``: :class:`IncrementalDatasetMixin` over ``base`` (made
    once per base class; its instances pickle to data-loader workers of any start method)."""
    if issubclass(base, IncrementalDatasetMixin):
        return base
    if base not in _CLASSES:
        name = f'Incremental{base.__name__}'
        _CLASSES[base] = type(name, (IncrementalDatasetMixin, base), {
            '__module__': __name__,
            '__qualname__': name,
            '__doc__': f'{base.__name__} restricted to one step of a class-incremental split '
                       '(see IncrementalDatasetMixin).',
            '__reduce__': lambda self: (_rebuild, (base, self.__dict__)),
        })
    return _CLASSES[base]


@DATASETS.register_module(name='IncrementalDataset')
def build_incremental_dataset(base_type: Union[str, type] = 'BaseSegDataset',
                              **kwargs) -> BaseSegDataset:
    """``dict(type='IncrementalDataset', base_type=..., task=..., step=..., ...)``: the dataset
    ``base_type`` (any registered mmseg ``BaseSegDataset``) restricted to one incremental step.

    Args:
        base_type (str | type): The mmseg dataset, e.g. ``'ADE20KDataset'``; the default
            ``'BaseSegDataset'`` reads any folder of images and masks described by the config
            (``metainfo=dict(classes=...)``, ``data_prefix``, ``img_suffix``...).
        **kwargs: Arguments of :class:`IncrementalDatasetMixin` and of the dataset.

    Returns:
        BaseSegDataset: an instance of ``Incremental<base_type>``.
    """
    return incremental_dataset_class(_dataset_class(base_type))(**kwargs)

