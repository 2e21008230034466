"""Chain the steps of a split: ``tools/run_incremental.py``.

Every step is planned once (:func:`~mmincseg.apis.plan.plan_step`: one load and one resolution
of the config per step); the run's steps, folders and the weak pipeline come from the plans.
"""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from ..tasks import NUM_VOC_CLASSES
from ..utils.checkpoint import checkpoint_record
from ..utils.io import atomic_write
from .config import step_dir
from .plan import StepPlan, plan_step
from .results import PSEUDO_LABEL_METRICS_FILE, pseudo_label_miou, step_entry, write_summary
from .seam import make_step_pseudo_labels
from .train import RESULT_FILE, step_is_finished, train_resolved
from .wilson import evaluate_localizer


def plan_run(config: str,
             work_dir: str,
             data_root: Optional[str] = None,
             steps: Optional[Sequence[int]] = None,
             cfg_options: Optional[dict] = None) -> List[Tuple[StepPlan, Config]]:
    """Plan every step a run trains: ``[(plan, resolved config), ...]`` in step order.

    Each step's config is loaded and resolved once; the run's steps are the plans' ``steps``.

    Args:
        config (str): Any step config of the split.
        work_dir (str): Run directory.
        data_root (str, optional): Dataset root for every dataset.
        steps (Sequence[int], optional): Only these steps (default: all).
        cfg_options (dict, optional): Config overrides applied to every step.

    Raises:
        ValueError: a step of ``steps`` is not a step of the split (naming the valid ones), or the
            config is wrong.
    """
    first_step = steps[0] if steps else None
    try:
        first = plan_step(config, work_dir, data_root, cfg_options, step=first_step)
    except ValueError:
        if first_step is None:
            raise
        first = plan_step(config, work_dir, data_root, cfg_options)  # its own step: which exist
    all_steps = first[0].steps
    todo = list(steps) if steps is not None else all_steps
    bad = [s for s in todo if s not in all_steps]
    if bad:
        raise ValueError(f"--steps {bad} are not steps of split '{first[0].task}' "
                         f'(valid: {all_steps})')
    planned = {first[0].step: first}
    for step in todo:
        if step not in planned:
            planned[step] = plan_step(config, work_dir, data_root, cfg_options, step=step)
    return [planned[step] for step in todo]


def describe_run(config: str,
                 work_dir: str,
                 data_root: Optional[str] = None,
                 steps: Optional[Sequence[int]] = None,
                 cfg_options: Optional[dict] = None) -> str:
    """The plans of a run's steps as text (``tools/run_incremental.py --print-plan``); nothing
    is trained or written."""
    return '\n\n'.join(plan.describe() for plan, _ in
                        plan_run(config, work_dir, data_root, steps, cfg_options))


def run_incremental(config: str,
                    work_dir: str,
                    data_root: Optional[str] = None,
                    steps: Optional[Sequence[int]] = None,
                    cfg_options: Optional[dict] = None,
                    resume: bool = False,
                    step0: Optional[str] = None) -> dict:
    """Train steps 0..T of a split (any step config of it) and write the run summary.

    Finished steps (with ``step_result.json``) are skipped; ``resume`` continues a crashed step
    from its last checkpoint. A weakly supervised step (``incremental.labels='seam'``, a plan with
    ``needs_pseudo_labels``) first trains its SEAM and makes its pseudo-labels
    (:func:`~mmincseg.apis.seam.make_step_pseudo_labels`). Writes ``work_dir/results.json``,
    ``results.md`` and ``miou_per_step.png``.

    Args:
        config (str): Any step config of the split.
        work_dir (str): Run directory; step t goes to ``work_dir/step<t>``.
        data_root (str, optional): Dataset root for every dataset.
        steps (Sequence[int], optional): Only these steps (default: all).
        cfg_options (dict, optional): Config overrides applied to every step (and, through
            ``incremental.seam.cfg_options``, to the SEAM of weak steps).
        resume (bool): Continue an interrupted step instead of refusing.
        step0 (str, optional): A finished step-0 directory to reuse (step 0 is the same for
            FT, LwF, ILT and MiB); its records are copied, the checkpoint is referenced.

    Returns:
        dict: The run summary (the content of results.json).
    """
    plans = plan_run(config, work_dir, data_root, steps, cfg_options)
    for plan, cfg in plans:
        if step0 is not None and plan.step == 0:
            link_step0(step0, plan.step_dir, plan.seen_classes)
        if step_is_finished(plan.step_dir):
            print_log(f'step {plan.step}: finished earlier ({plan.step_dir}/{RESULT_FILE}), '
                      'skipped', logger='current')
        else:
            make_step_pseudo_labels(plan, data_root=data_root)
            print_log(f'===== {plan.method} {plan.task} step {plan.step} -> {plan.step_dir}',
                      logger='current')
            interrupted = osp.isfile(checkpoint_record(plan.step_dir))
            train_resolved(cfg, resume=resume and interrupted)
        if plan.labels == 'image' and plan.step > 0 and not osp.isfile(
                osp.join(plan.step_dir, PSEUDO_LABEL_METRICS_FILE)):
            evaluate_localizer(plan, cfg)  # WILSON: its online pseudo-labels, once per step
    first = plans[0][0]
    return collect_summary(first.run_dir, first.to_dict(), first.steps)


def link_step0(source: str, target: str, classes: Sequence[int]) -> None:
    """Reuse a finished step 0: copy its result record and point at its checkpoint.

    A ``target`` already finished is kept when it holds ``source``'s checkpoint (a re-run).

    Raises:
        FileNotFoundError: ``source`` is not a finished step directory.
        ValueError: ``target`` is finished with another checkpoint (another step 0 linked or
            trained there), naming both and the fix.
    """
    from ..engine.hooks import find_last_checkpoint
    if step_is_finished(target):
        mine = osp.abspath(find_last_checkpoint(target))
        theirs = (osp.abspath(find_last_checkpoint(source)) if step_is_finished(source)
                  else None)
        if theirs is not None and mine != theirs:
            raise ValueError(f'--step0 {source}: {target} is already a finished step 0 with '
                             f'another checkpoint ({mine}, not {theirs}); its later steps '
                             'learned from that one. Use a new --work-dir, or move the run away '
                             'to start it again from this step 0.')
        return
    if not step_is_finished(source):
        raise FileNotFoundError(f'--step0 {source} is not a finished step directory (no '
                                f'{RESULT_FILE}); train step 0 there first')
    with open(osp.join(source, RESULT_FILE)) as f:
        found = json.load(f).get('classes')
    if found != list(classes):
        raise ValueError(f'--step0 {source} learned classes {found}, this split\'s step 0 has '
                         f'{list(classes)}; use a step 0 of the same classes')
    ckpt = osp.abspath(find_last_checkpoint(source))
    os.makedirs(target, exist_ok=True)
    # the checkpoint record first, the result (which marks the step finished) last, both atomic:
    # a run killed in between never sees a "finished" step 0 without its checkpoint
    with atomic_write(checkpoint_record(target)) as f:
        f.write(ckpt)
    with open(osp.join(source, RESULT_FILE)) as src, \
            atomic_write(osp.join(target, RESULT_FILE)) as f:
        f.write(src.read())
    print_log(f'step 0: reusing {source} ({ckpt})', logger='current')


def collect_summary(work_dir: str, inc: dict, all_steps: Sequence[int]) -> dict:
    """Gather the finished steps' results into the run summary and write its files.

    Args:
        work_dir (str): The run directory (a plan's ``run_dir``).
        inc (dict): ``task``, ``method``, ``setting`` and ``labels`` of the run (a plan's
            ``to_dict()`` or a resolved ``incremental`` block).
        all_steps (Sequence[int]): The run's steps (a plan's ``steps``).
    """
    entries = []
    for step in all_steps:
        path = osp.join(step_dir(work_dir, step), RESULT_FILE)
        if osp.isfile(path):
            with open(path) as f:
                entry = step_entry(json.load(f))
            quality = pseudo_label_miou(step_dir(work_dir, step))
            if quality is not None:
                entry['pseudo_label_mIoU'] = quality
            entries.append(entry)
    summary = dict(task=inc['task'], method=inc['method'], setting=inc['setting'],
                   labels=inc['labels'], steps=entries)
    names, channels = inc.get('class_names'), inc.get('channels')
    if names and len(names) != NUM_VOC_CLASSES:
        summary['num_classes'] = len(names)
    if channels and channels != list(range(len(channels))):
        summary['order'] = channels[1:]  # the class ids in the order they were learned
    if entries:
        write_summary(work_dir, summary)
    return summary
