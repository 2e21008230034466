"""Class-incremental splits and class orders, parsed for any dataset.

Every other module (dataset, heads, hook, metric, configs) derives its class lists from here.
A dataset has ``num_classes`` label values ``0..num_classes - 1``, background 0 included (VOC: 21,
ADE20K under MiB's protocol: 151). A split is parsed, not looked up (:func:`split_sizes`):

- ``'A-B'``: A classes (plus background) at step 0, then steps of B until every class is in
  (``'15-1'``, ``'100-10'``, ``'50-50'``); ``'A-0'`` with A = every class is joint training;
- ``'A-B-C...'`` (three or more parts): explicit step sizes (``'10-5-5'``);
- aliases: ``'A-Bs'`` (MiB's sequential name: A, then B steps of one class, ``'15-5s'`` =
  ``'15-1'``), ``'offline'`` / ``'joint'`` (every class in one step).

A **class order** (:func:`resolve_order`) is the sequence in which the foreground classes are
learned: step 0 learns its first A classes, and so on. Output channel k of every model is the
k-th class learned (channel 0 is background), so the class id of a channel is
``channels[k]``; with the identity order (the default) channel k is class k, as in every
existing config. Class ids are always the dataset's own label values.
"""
import dataclasses
import functools
import random
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
               'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')
NUM_VOC_CLASSES = len(VOC_CLASSES)  # 21 including background
#: ADE20K's 150 classes plus MiB's background (the annotations' label 0), see datasets/.
NUM_ADE20K_CLASSES = 151
IGNORE_INDEX = 255
SETTINGS = ('overlap', 'disjoint')

#: The splits the papers report, per dataset (any other well-formed name parses too).
VOC_SPLITS = ('20-0', '19-1', '15-5', '15-1', '10-1', '10-10', '10-5-5', '5-3')
ADE20K_SPLITS = ('150-0', '100-50', '100-10', '50-50', '100-5')
JOINT_ALIASES = ('offline', 'joint')
TASK_ALIASES = {'offline': '20-0', 'joint': '20-0', '15-5s': '15-1'}  # as VOC reads them

#: An order given in a config: None (identity), a named order, ``'random:<seed>'`` or a
#: permutation of the foreground class ids.
OrderSpec = Union[None, str, Sequence[int]]

# MiB's alternative ADE20K class orders (its tasks.py: 100-50b/c, 100-10b/c, 50b/c). Each letter
# is one order of the 150 classes: its 50-50 steps, and the last 50 classes in its 100-10 steps,
# so 100-50, 100-10 and 50-50 read the classes of each of MiB's steps off one permutation.
MIB_ADE20K_ORDERS: Dict[str, Tuple[int, ...]] = {
    'b': (1, 9, 14, 18, 22, 24, 25, 27, 28, 29, 32, 38, 42, 45, 46, 47, 48, 49, 54, 56, 58, 61, 62,
          63, 69, 74, 75, 76, 77, 81, 82, 84, 90, 93, 96, 100, 103, 104, 109, 117, 119, 121, 123,
          128, 129, 130, 134, 135, 136, 144,
          3, 5, 6, 8, 10, 12, 13, 19, 21, 23, 26, 31, 33, 34, 36, 39, 40, 43, 44, 53, 55, 57, 60,
          70, 71, 80, 86, 87, 91, 95, 99, 101, 105, 106, 107, 113, 116, 120, 125, 126, 131, 132,
          133, 140, 142, 143, 147, 148, 149, 150,
          11, 16, 50, 64, 66, 73, 89, 92, 145, 146, 30, 37, 51, 52, 72, 85, 98, 114, 115, 138, 2,
          35, 65, 97, 110, 111, 112, 118, 124, 141, 4, 7, 15, 41, 67, 78, 79, 88, 108, 139, 17,
          20, 59, 68, 83, 94, 102, 122, 127, 137),
    'c': (5, 10, 11, 12, 13, 16, 17, 19, 20, 23, 27, 28, 30, 31, 32, 33, 37, 43, 46, 52, 56, 57,
          65, 66, 69, 70, 74, 76, 77, 79, 82, 83, 86, 87, 105, 109, 110, 111, 119, 128, 129, 132,
          133, 134, 138, 142, 143, 144, 146, 147,
          1, 6, 8, 9, 14, 24, 25, 26, 29, 34, 35, 36, 40, 41, 44, 45, 48, 50, 54, 61, 63, 67, 68,
          71, 78, 81, 84, 85, 90, 94, 95, 96, 97, 98, 99, 102, 106, 112, 114, 115, 118, 120, 121,
          123, 124, 126, 135, 136, 139, 149,
          3, 4, 7, 18, 39, 64, 73, 101, 113, 137, 47, 51, 55, 60, 62, 80, 116, 127, 140, 148, 22,
          42, 49, 58, 59, 89, 91, 92, 108, 125, 2, 38, 53, 100, 104, 117, 130, 131, 141, 145, 15,
          21, 72, 75, 88, 93, 103, 107, 122, 150),
}
_RANDOM_ORDER = re.compile(r'^random:(\d+)$')
_SPLIT_NAME = re.compile(r'^\d+(-\d+)+s?$')


def voc_palette() -> List[int]:
    """The PASCAL VOC colour map of its palette PNGs (bit-interleaved), flattened to 768 ints:
    label value v has colour ``palette[3v:3v+3]``, the VOC masks' and our PNGs' palette."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def task_names(num_classes: int = NUM_VOC_CLASSES) -> List[str]:
    """The published splits of a dataset with ``num_classes`` classes (VOC's by default) and the
    aliases that parse for it (any other well-formed name works too)."""
    published = {NUM_VOC_CLASSES: VOC_SPLITS, NUM_ADE20K_CLASSES: ADE20K_SPLITS}
    candidates = published.get(num_classes, VOC_SPLITS + ADE20K_SPLITS)
    known = [n for n in candidates if _parses(n, num_classes)]
    aliases = [n for n in sorted(TASK_ALIASES) if _parses(n, num_classes)]
    return sorted(known) + aliases


def _parses(task: str, num_classes: int) -> bool:
    return _sizes(task, num_classes)[0] is not None


def _examples(num_classes: int) -> str:
    names = task_names(num_classes)
    if names:
        return f"splits of {num_classes - 1} classes: {', '.join(names)}"
    half = max(1, (num_classes - 1) // 2)
    return f"e.g. '{half}-{num_classes - 1 - half}'"


def _sizes(task: str, num_classes: int) -> Tuple[Optional[List[int]], str]:
    """The step sizes of ``task``, or None and why it does not parse."""
    total = num_classes - 1
    name = str(task)
    where = f"split '{task}' (incremental.task)"
    if name in JOINT_ALIASES:
        return [total], ''
    if not _SPLIT_NAME.match(name):
        return None, (f"unknown {where}: a split is named 'A-B' (A classes, then steps of B), "
                      f"'A-B-C...' (explicit step sizes), 'A-Bs' or one of "
                      f'{list(JOINT_ALIASES)}')
    sequential = name.endswith('s')
    parts = [int(p) for p in name.rstrip('s').split('-')]
    first = parts[0]
    if first < 1:
        return None, f'{where}: step 0 must learn at least one class'
    if sequential:
        if len(parts) != 2:
            return None, f"{where}: only 'A-Bs' (A classes, then B steps of one) takes an 's'"
        sizes = [first] + [1] * parts[1]
    elif len(parts) == 2:
        size, rest = parts[1], total - first
        if size == 0:
            sizes = [first]
        elif rest > 0 and rest % size == 0:
            sizes = [first] + [size] * (rest // size)
        else:
            reason = (f'{first} classes at step 0 leave {rest}, not a positive multiple of {size}'
                      if rest >= 0 else f'step 0 alone asks for {first} classes')
            return None, (f'{where} does not cover the {total} classes of the dataset exactly: '
                          f'{reason}')
    else:
        sizes = parts
        if any(s < 1 for s in sizes):
            return None, f'{where}: explicit step sizes must be positive, got {sizes}'
    if sum(sizes) != total:
        return None, (f'{where} does not cover the {total} classes of the dataset exactly: its '
                      f'steps learn {sum(sizes)} ({" + ".join(map(str, sizes))})')
    return sizes, ''


def split_sizes(task: str, num_classes: int = NUM_VOC_CLASSES) -> List[int]:
    """Number of foreground classes each step of ``task`` learns (step 0 without background).

    Args:
        task (str): The split name (``incremental.task``), see the module docstring.
        num_classes (int): Label values of the dataset, background included.

    Returns:
        list[int]: e.g. ``[15, 1, 1, 1, 1, 1]`` for ``'15-1'`` of VOC.

    Raises:
        ValueError: the name is malformed or does not cover the dataset's classes exactly; the
            message says why and lists splits that fit.
    """
    sizes, why = _sizes(task, num_classes)
    if sizes is None:
        raise ValueError(f'{why}; {_examples(num_classes)}')
    return sizes


def named_orders(num_classes: int) -> List[str]:
    """Names of the orders defined for a dataset with ``num_classes`` classes."""
    return sorted(MIB_ADE20K_ORDERS) if num_classes == NUM_ADE20K_CLASSES else []


def resolve_order(order: OrderSpec, num_classes: int = NUM_VOC_CLASSES) -> Tuple[int, ...]:
    """The foreground class ids in the order they are learned.

    Args:
        order: ``None`` (identity: 1, 2, ..., the default), a permutation of ``1..num_classes-1``,
            ``'random:<seed>'`` (a permutation drawn from the seed, the same on every machine) or
            a named order (:func:`named_orders`: MiB's ADE20K orders ``'b'`` and ``'c'``).
        num_classes (int): Label values of the dataset, background included.

    Raises:
        ValueError: an unknown name, or a sequence that is not a permutation of the foreground
            ids (names what is missing, extra or repeated).
    """
    ids = list(range(1, num_classes))
    if order is None:
        return tuple(ids)
    if isinstance(order, str):
        m = _RANDOM_ORDER.match(order)
        if m:
            random.Random(int(m.group(1))).shuffle(ids)
            return tuple(ids)
        if order in named_orders(num_classes):
            return MIB_ADE20K_ORDERS[order]
        known = named_orders(num_classes)
        raise ValueError(
            f"unknown class order {order!r} (incremental.order); valid: a permutation of the "
            f"class ids 1..{num_classes - 1}, 'random:<seed>'"
            + (f', or one of {known}' if known else
               f" (named orders: {sorted(MIB_ADE20K_ORDERS)}, MiB's, for ADE20K's 150 classes)"))
    values = list(order)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f'incremental.order must hold integer class ids, got {values}')
    missing = sorted(set(ids) - set(values))
    extra = sorted(set(values) - set(ids))
    repeated = sorted({v for v in values if values.count(v) > 1})
    if missing or extra or repeated:
        raise ValueError(
            f'incremental.order is not a permutation of the foreground class ids '
            f'1..{num_classes - 1} (background 0 is always channel 0): missing {missing}, '
            f'not classes of the dataset {extra}, repeated {repeated}')
    return tuple(values)


def _order_key(order: OrderSpec):
    return order if order is None or isinstance(order, str) else tuple(order)


@dataclasses.dataclass(frozen=True)
class Split:
    """The classes of every step of a split of one dataset in one class order (plain data).

    Attributes:
        task (str): The split name as given.
        num_classes (int): Label values of the dataset, background included.
        order (tuple[int]): Foreground class ids in the order they are learned.
        steps (tuple[tuple[int]]): Class ids of each step; step 0 starts with background 0.
    """

    task: str
    num_classes: int
    order: Tuple[int, ...]
    steps: Tuple[Tuple[int, ...], ...]

    @property
    def num_steps(self) -> int:
        """Number of steps (step 0 included)."""
        return len(self.steps)

    @property
    def channels(self) -> Tuple[int, ...]:
        """Class id of each output channel of the last step's model: ``(0,) + order``."""
        return (0, ) + self.order

    @property
    def is_identity(self) -> bool:
        """Whether channel k is class k (the default order)."""
        return self.order == tuple(range(1, self.num_classes))

    def check_step(self, step: int) -> None:
        """Raise ``ValueError`` if ``step`` is not a step of the split."""
        n = self.num_steps
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < n:
            raise ValueError(f"step {step!r} (incremental.step) is out of range for split "
                             f"'{self.task}', which has steps 0..{n - 1}")

    def classes_of_step(self, step: int) -> List[int]:
        """Classes learned at ``step`` (C_t); step 0 includes background."""
        self.check_step(step)
        return list(self.steps[step])

    def classes_seen(self, step: int) -> List[int]:
        """All classes learned at steps 0..step in channel order, background included."""
        self.check_step(step)
        return [c for s in self.steps[:step + 1] for c in s]

    def old_classes(self, step: int) -> List[int]:
        """Classes learned before ``step`` (empty at step 0)."""
        self.check_step(step)
        return [c for s in self.steps[:step] for c in s]

    def new_classes(self, step: int) -> List[int]:
        """Classes introduced at ``step`` (the step-0 classes at step 0, background excluded)."""
        return [c for c in self.classes_of_step(step) if c != 0]

    def future_classes(self, step: int) -> List[int]:
        """Classes of steps after ``step``."""
        self.check_step(step)
        return [c for s in self.steps[step + 1:] for c in s]

    def classes_per_step(self, step: int) -> List[int]:
        """Classifier channels of each step 0..step, e.g. ``[16, 5]`` for 15-5 step 1."""
        self.check_step(step)
        return [len(s) for s in self.steps[:step + 1]]


@functools.lru_cache(maxsize=256)
def _get_split(task: str, num_classes: int, order) -> Split:
    sizes = split_sizes(task, num_classes)
    learned = resolve_order(order if not isinstance(order, tuple) else list(order), num_classes)
    steps, start = [], 0
    for i, size in enumerate(sizes):
        steps.append(((0, ) if i == 0 else ()) + learned[start:start + size])
        start += size
    return Split(str(task), num_classes, learned, tuple(steps))


def get_split(task: str, num_classes: int = NUM_VOC_CLASSES, order: OrderSpec = None) -> Split:
    """The :class:`Split` of ``task`` for a dataset of ``num_classes`` label values (VOC's 21 by
    default) learned in ``order`` (:func:`resolve_order`).

    Raises:
        ValueError: the split or order is wrong (see :func:`split_sizes`, :func:`resolve_order`).
    """
    return _get_split(str(task), int(num_classes), _order_key(order))


# VOC-default shorthands (``num_classes``/``order`` select another dataset or order).
def get_task(task: str, num_classes: int = NUM_VOC_CLASSES,
             order: OrderSpec = None) -> List[List[int]]:
    """Return the classes of every step of ``task``.

    Raises:
        ValueError: if ``task`` does not parse for the dataset; the message lists valid ones.
    """
    return [list(s) for s in get_split(task, num_classes, order).steps]


def num_steps(task: str, num_classes: int = NUM_VOC_CLASSES) -> int:
    """Number of steps of ``task`` (step 0 included)."""
    return len(split_sizes(task, num_classes))


def check_step(task: str, step: int, num_classes: int = NUM_VOC_CLASSES) -> None:
    """Raise ``ValueError`` if ``step`` is not a step of ``task``."""
    get_split(task, num_classes).check_step(step)


def classes_of_step(task: str, step: int, num_classes: int = NUM_VOC_CLASSES,
                    order: OrderSpec = None) -> List[int]:
    """Classes learned at ``step`` (C_t); step 0 includes background."""
    return get_split(task, num_classes, order).classes_of_step(step)


def classes_seen(task: str, step: int, num_classes: int = NUM_VOC_CLASSES,
                 order: OrderSpec = None) -> List[int]:
    """All classes learned at steps 0..step (in channel order), background included."""
    return get_split(task, num_classes, order).classes_seen(step)


def old_classes(task: str, step: int, num_classes: int = NUM_VOC_CLASSES,
                order: OrderSpec = None) -> List[int]:
    """Classes learned before ``step`` (empty at step 0)."""
    return get_split(task, num_classes, order).old_classes(step)


def new_classes(task: str, step: int, num_classes: int = NUM_VOC_CLASSES,
                order: OrderSpec = None) -> List[int]:
    """Classes introduced at ``step`` (the step-0 classes at step 0, background excluded)."""
    return get_split(task, num_classes, order).new_classes(step)


def future_classes(task: str, step: int, num_classes: int = NUM_VOC_CLASSES,
                   order: OrderSpec = None) -> List[int]:
    """Classes of steps after ``step``."""
    return get_split(task, num_classes, order).future_classes(step)


def classes_per_step(task: str, step: int, num_classes: int = NUM_VOC_CLASSES) -> List[int]:
    """Number of classifier channels of each step 0..step, e.g. ``[16, 5]`` for 15-5 step 1."""
    return get_split(task, num_classes).classes_per_step(step)


def joint_task(num_classes: int = NUM_VOC_CLASSES) -> str:
    """The one-step split of every class of a dataset: ``'20-0'`` for VOC, ``'150-0'`` for
    ADE20K."""
    return f'{num_classes - 1}-0'


def class_names(ids: Sequence[int], names: Sequence[str] = VOC_CLASSES) -> List[str]:
    """Names of the given class ids (VOC's unless the dataset's ``names`` are given)."""
    return [names[i] for i in ids]


#: Every VOC split of the papers, as class ids per step (kept for readers and tests).
VOC_TASKS: Dict[str, List[List[int]]] = {name: get_task(name) for name in VOC_SPLITS}


def check_setting(setting: str) -> None:
    """Raise ``ValueError`` for a setting other than overlap/disjoint."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting '{setting}' (incremental.setting); valid: "
                         f"{', '.join(SETTINGS)}")


ENTRY_POINTS = ("mmincseg's tools/train.py, tools/test.py or tools/run_incremental.py, `mim train "
                "mmincseg` / `mim test mmincseg`, or mmseg's own tools/train.py (it builds the "
                "config's runner_type='IncrementalRunner')")


def require_step(component: str, task: Optional[str], step: Optional[int]) -> None:
    """Refuse a component built without its split and step (no silent default split).

    Both come from the config's ``incremental`` block, filled in by the resolver that the
    ``IncrementalRunner`` runs; a runner that does not resolve the block (mmseg's
    ``tools/test.py`` builds a plain ``Runner``) would otherwise evaluate or train another step.

    Raises:
        ValueError: naming the component and the supported entry points.
    """
    if task is None or step is None:
        raise ValueError(
            f'{component} was built without its split and step (task={task!r}, step={step!r}): '
            "they come from the config's `incremental` block, which only mmincseg's "
            f'IncrementalRunner resolves. Run step configs with {ENTRY_POINTS}; mmseg\'s '
            "tools/test.py builds a plain Runner and cannot run them.")
