"""The one table of class-incremental splits.

Every other module (dataset, heads, hook, metric, configs) derives its class lists from here.
Class ids are PASCAL VOC label values; background is 0. Steps list their classes in increasing,
contiguous order, so the output channel of a class equals its label value in every model.
"""
from typing import Dict, List, Optional, Sequence

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
               'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')
NUM_VOC_CLASSES = len(VOC_CLASSES)  # 21 including background
IGNORE_INDEX = 255
SETTINGS = ('overlap', 'disjoint')


def _split(first: int, *sizes: int) -> List[List[int]]:
    """Build a split: step 0 has background + classes 1..first, then steps of the given sizes."""
    steps = [list(range(0, first + 1))]
    start = first + 1
    for size in sizes:
        steps.append(list(range(start, start + size)))
        start += size
    if start != NUM_VOC_CLASSES:
        raise AssertionError(f'split covers {start} classes, VOC has {NUM_VOC_CLASSES}')
    return steps


VOC_TASKS: Dict[str, List[List[int]]] = {
    '20-0': _split(20),  # joint / offline training, one step
    '19-1': _split(19, 1),
    '15-5': _split(15, 5),
    '15-1': _split(15, 1, 1, 1, 1, 1),
    '10-1': _split(10, *([1] * 10)),
    '10-5-5': _split(10, 5, 5),
    '5-3': _split(5, 3, 3, 3, 3, 3),
}
TASK_ALIASES = {'offline': '20-0', 'joint': '20-0', '15-5s': '15-1'}


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


def task_names() -> List[str]:
    """Names of all known splits (aliases included)."""
    return sorted(VOC_TASKS) + sorted(TASK_ALIASES)


def get_task(task: str) -> List[List[int]]:
    """Return the classes of every step of ``task``.

    Raises:
        ValueError: if ``task`` is not a known split; the message lists the valid ones.
    """
    name = TASK_ALIASES.get(str(task), str(task))
    if name not in VOC_TASKS:
        raise ValueError(f"unknown split '{task}' (incremental.task); valid splits: "
                         f"{', '.join(task_names())}. Add new ones to mmincseg/tasks.py:VOC_TASKS.")
    return [list(c) for c in VOC_TASKS[name]]


def num_steps(task: str) -> int:
    """Number of steps of ``task`` (step 0 included)."""
    return len(get_task(task))


def check_step(task: str, step: int) -> None:
    """Raise ``ValueError`` if ``step`` is not a step of ``task``."""
    n = num_steps(task)
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < n:
        raise ValueError(f"step {step!r} (incremental.step) is out of range for split '{task}', "
                         f'which has steps 0..{n - 1}')


def classes_of_step(task: str, step: int) -> List[int]:
    """Classes learned at ``step`` (C_t); step 0 includes background."""
    check_step(task, step)
    return get_task(task)[step]


def classes_seen(task: str, step: int) -> List[int]:
    """All classes learned at steps 0..step, background included."""
    check_step(task, step)
    return [c for s in get_task(task)[:step + 1] for c in s]


def old_classes(task: str, step: int) -> List[int]:
    """Classes learned before ``step`` (empty at step 0)."""
    check_step(task, step)
    return [c for s in get_task(task)[:step] for c in s]


def new_classes(task: str, step: int) -> List[int]:
    """Classes introduced at ``step`` (the step-0 classes at step 0, background excluded)."""
    return [c for c in classes_of_step(task, step) if c != 0]


def future_classes(task: str, step: int) -> List[int]:
    """Classes of steps after ``step``."""
    check_step(task, step)
    return [c for s in get_task(task)[step + 1:] for c in s]


def classes_per_step(task: str, step: int) -> List[int]:
    """Number of classifier channels of each step 0..step, e.g. ``[16, 5]`` for 15-5 step 1."""
    check_step(task, step)
    return [len(s) for s in get_task(task)[:step + 1]]


def class_names(ids: Sequence[int]) -> List[str]:
    """VOC names of the given class ids."""
    return [VOC_CLASSES[i] for i in ids]


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
