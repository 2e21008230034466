"""The plan of one step: what the resolver decided, as one printable, dumpable object.

``plan, cfg = plan_step(config, work_dir, ...)`` loads the config file once, resolves it once
and returns both the :class:`StepPlan` (folders, previous checkpoint, teacher, classes, the run's
steps, the weak pipeline's SEAM and pseudo-label folders, the method's settings) and the resolved
config. Training, testing, the run chain and the weak pipeline read the plan instead of deriving
these facts again. The plan knows no dataset in particular: classes are the dataset's label
values (:mod:`mmincseg.tasks`), ``class_names`` names them and ``channels`` says which class each
output channel is (the class order).
"""
import copy
import dataclasses
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from . import config as resolver
from .config import set_data_root


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """What one step (or the SEAM of a weak step) does, as the resolver decided it.

    Attributes:
        config (str): The config file the step was planned from.
        method (str): ``incremental.method`` (``'mib'``, ``'ft'``, ``'joint'``, ...).
        labels (str): ``'gt'`` (true masks) or ``'seam'`` (weakly supervised).
        task (str): The split, e.g. ``'15-5'``.
        setting (str): ``'overlap'`` or ``'disjoint'``.
        step (int): The step t.
        steps (list[int]): Every step of the run (``[0]`` for joint).
        run_dir (str): The run directory holding ``step<t>/``.
        step_dir (str): ``<run_dir>/step<t>``.
        work_dir (str): Where this config trains: ``step_dir``, or ``seam_dir`` for a SEAM config.
        prev_checkpoint (str | None): Previous-step checkpoint file or step directory (None at
            step 0 and for joint).
        old_classes (list[int]): Class ids learned before step t (empty at step 0).
        new_classes (list[int]): Class ids introduced at step t (background excluded).
        seen_classes (list[int]): Class ids learned at steps 0..t, background included.
        classes_per_step (list[int]): Classifier channels of each step 0..t.
        teacher_model (dict | None): Config of the step t-1 model the previous checkpoint is
            loaded into (the ``IncrementalStepHook``'s ``teacher_model``); None without teacher.
        needs_pseudo_labels (bool): The step trains on SEAM pseudo-labels.
        seam_config (str | None): The SEAM config that makes them (``incremental.seam``).
        seam_cfg_options (dict | None): The overrides the SEAM config trains with (its step,
            folder, no own validation, ``incremental.seam.cfg_options``).
        seam_dir (str | None): Where the SEAM trains (``<step_dir>/seam``).
        pseudo_label_dir (str | None): Where the pseudo-labels are written and read.
        method_settings (dict): The method's recipe: loss kind, distillation and its weights.
        trains (str): ``'segmentor'`` or ``'seam'`` (a SEAM config's own plan).
        class_names (list[str]): The dataset's class names by label value (background first).
        channels (list[int]): The class id of each output channel of the split's last model
            (background 0, then the classes in the order they are learned).
        seam_negatives (dict | None): ``threshold``, ``weight`` and ``label_dir`` of the SEAM's
            negatives from the previous model (``incremental.seam.negatives``); None without.
    """

    config: str
    method: str
    labels: str
    task: str
    setting: str
    step: int
    steps: List[int]
    run_dir: str
    step_dir: str
    work_dir: str
    prev_checkpoint: Optional[str]
    old_classes: List[int]
    new_classes: List[int]
    seen_classes: List[int]
    classes_per_step: List[int]
    teacher_model: Optional[Dict[str, Any]]
    needs_pseudo_labels: bool
    seam_config: Optional[str]
    seam_cfg_options: Optional[Dict[str, Any]]
    seam_dir: Optional[str]
    pseudo_label_dir: Optional[str]
    method_settings: Dict[str, Any]
    trains: str = 'segmentor'
    class_names: List[str] = dataclasses.field(default_factory=list)
    channels: List[int] = dataclasses.field(default_factory=list)
    seam_negatives: Optional[Dict[str, Any]] = None

    def to_dict(self) -> Dict[str, Any]:
        """The plan as plain data (a deep copy; JSON-serialisable)."""
        return copy.deepcopy(dataclasses.asdict(self))

    def step_dir_of(self, step: int) -> str:
        """The directory of another step of the same run."""
        return resolver.step_dir(self.run_dir, step)

    def describe(self) -> str:
        """A short human-readable account of what the step will do (``print(plan)``)."""
        head = (f'{self.method} {self.task} step {self.step} (run steps {_ids(self.steps)}), '
                f'{self.setting}, labels {self.labels}')
        if self.trains == 'seam':
            head = (f'SEAM of step {self.step} of {self.task} - learns background + '
                    f'{_ids(self.new_classes)} from image-level labels')
        lines = [head, f'  config      {self.config}']
        lines.append(f'  classes     old {_ids(self.old_classes)} | new {_ids(self.new_classes)} '
                     f'| seen {len(self.seen_classes)} (per step {self.classes_per_step})')
        if self.class_names:
            identity = self.channels == list(range(len(self.channels)))
            lines.append(f'  dataset     {len(self.class_names) - 1} classes + background, order '
                         + ('identity (channel k = class k)' if identity else
                            f'channels {_ids(self.channels[:12])}'
                            + ('...' if len(self.channels) > 12 else '')))
        if self.trains == 'segmentor':
            if self.teacher_model is not None:
                lines.append(f'  teacher     step-{self.step - 1} model '
                             f'(classes per step {self.teacher_model.get("classes_per_step")}) '
                             f'from {self.prev_checkpoint}')
            else:
                lines.append('  teacher     none')
            lines.append(f'  method      {_settings(self.method_settings)}')
        lines.append(f'  folders     run {self.run_dir} | trains in {self.work_dir}')
        if self.needs_pseudo_labels:
            seam = self.seam_config or '(none: incremental.seam is missing)'
            lines.append(f'  pseudo      SEAM {seam} trains in {self.seam_dir}')
            lines.append(f'              pseudo-labels in {self.pseudo_label_dir}')
            if self.seam_negatives is not None:
                neg = self.seam_negatives
                lines.append(f"              negatives: previous model's old classes at p >= "
                             f"{neg['threshold']} (weight {neg['weight']}) in {neg['label_dir']}")
        return '\n'.join(lines)

    __str__ = describe


def _ids(ids: Sequence[int]) -> str:
    """``[0-15]``, ``[16, 17]``, ``[]``: ids with runs of 3+ consecutive ids as ranges."""
    ids = list(ids)
    parts, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f'{ids[i]}-{ids[j]}')
        else:
            parts.extend(str(v) for v in ids[i:j + 1])
        i = j + 1
    if len(parts) > 16:  # a class order of ADE20K's 150 classes: the ends and how many
        parts = parts[:8] + [f'... {len(ids)} classes ...'] + parts[-4:]
    return '[' + ', '.join(parts) + ']'


def _settings(settings: Dict[str, Any]) -> str:
    return ', '.join(f'{k}={v}' for k, v in settings.items()) or '-'


def plan_step(config: str,
              work_dir: Optional[str] = None,
              data_root: Optional[str] = None,
              cfg_options: Optional[dict] = None,
              step: Optional[int] = None) -> Tuple[StepPlan, Config]:
    """Load a step config once, apply overrides, resolve it once, and plan the step.

    Args:
        config (str): A step config (or a SEAM config) with an ``incremental`` block.
        work_dir (str, optional): The run directory; the step writes into ``<work_dir>/step<t>``.
            Without it, mmseg's default ``work_dirs/<config name>`` with a trailing ``_step<t>``
            removed.
        data_root (str, optional): Dataset root of every dataset of the config.
        cfg_options (dict, optional): Config overrides (``--cfg-options``).
        step (int, optional): Plan this step (``incremental.step``) instead of the config's own.

    Returns:
        tuple[StepPlan, Config]: The plan and the resolved config.

    Raises:
        FileNotFoundError: ``config`` or ``data_root`` does not exist.
        ValueError: the ``incremental`` block or the model is wrong (naming the key and the fix).
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file {config} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if step is not None and cfg.get('incremental') is not None:
        cfg.merge_from_dict({'incremental.step': step})
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    if data_root is not None:
        if not osp.isdir(data_root):
            raise FileNotFoundError(f'--data-root {data_root} is not a directory')
        set_data_root(cfg, data_root)
    cfg, facts = resolver.resolve_step(cfg)
    return StepPlan(config=config, **facts), cfg
