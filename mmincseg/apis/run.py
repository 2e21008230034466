"""Chain the steps of a split: ``tools/run_incremental.py``."""
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.logging import print_log

from .. import tasks
from ..utils.checkpoint import checkpoint_record
from ..utils.io import atomic_write
from .config import check_incremental, data_task_step, step_dir
from .results import pseudo_label_miou, step_entry, write_summary
from .train import RESULT_FILE, step_is_finished, train_step


def steps_of_run(inc: dict) -> List[int]:
    """The steps a run of this block trains (joint: a single step 0)."""
    if inc.get('method') == 'joint':
        return [0]
    return list(range(tasks.num_steps(inc['task'])))


def run_incremental(config: str,
                    work_dir: str,
                    data_root: Optional[str] = None,
                    steps: Optional[Sequence[int]] = None,
                    cfg_options: Optional[dict] = None,
                    resume: bool = False,
                    step0: Optional[str] = None,
                    step_hooks: Optional[Dict[str, Callable]] = None) -> dict:
    """Train steps 0..T of a split (any step config of it) and write the run summary.

    Finished steps (with ``step_result.json``) are skipped; ``resume`` continues a crashed step
    from its last checkpoint. Writes ``work_dir/results.json``, ``results.md`` and
    ``miou_per_step.png``.

    Args:
        config (str): Any step config of the split.
        work_dir (str): Run directory; step t goes to ``work_dir/step<t>``.
        data_root (str, optional): Dataset root for every dataset.
        steps (Sequence[int], optional): Only these steps (default: all).
        cfg_options (dict, optional): Config overrides applied to every step.
        resume (bool): Continue an interrupted step instead of refusing.
        step0 (str, optional): A finished step-0 directory to reuse (step 0 is the same for
            FT, LwF, ILT and MiB); its records are copied, the checkpoint is referenced.
        step_hooks (dict, optional): ``{'before_step': fn(config, step, work_dir)}`` used by the
            weakly supervised pipeline to make pseudo-labels before a step trains.

    Returns:
        dict: The run summary (the content of results.json).
    """
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    inc = check_incremental(cfg.get('incremental'), config)
    all_steps = steps_of_run(inc)
    todo = list(steps) if steps is not None else all_steps
    bad = [s for s in todo if s not in all_steps]
    if bad:
        raise ValueError(f"--steps {bad} are not steps of split '{inc['task']}' "
                         f'(valid: {all_steps})')
    step_hooks = step_hooks or {}
    if step0 is not None and 0 in todo:
        link_step0(step0, step_dir(work_dir, 0), tasks.classes_of_step(*data_task_step(inc)))
    for step in todo:
        sdir = step_dir(work_dir, step)
        if step_is_finished(sdir):
            print_log(f'step {step}: finished earlier ({sdir}/{RESULT_FILE}), skipped',
                      logger='current')
            continue
        options = dict(cfg_options or {})
        options['incremental.step'] = step
        if 'before_step' in step_hooks:
            step_hooks['before_step'](config, step, work_dir)
        print_log(f"===== {inc['method']} {inc['task']} step {step} -> {sdir}", logger='current')
        interrupted = osp.isfile(checkpoint_record(sdir))
        train_step(config, work_dir=work_dir, data_root=data_root, cfg_options=options,
                   resume=resume and interrupted)
    return collect_summary(work_dir, inc, all_steps)


def link_step0(source: str, target: str, classes: Sequence[int]) -> None:
    """Reuse a finished step 0: copy its result record and point at its checkpoint.

    Raises:
        FileNotFoundError: ``source`` is not a finished step directory.
    """
    from ..engine.hooks import find_last_checkpoint
    if step_is_finished(target):
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
    """Gather the finished steps' results into the run summary and write its files."""
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
    if entries:
        write_summary(work_dir, summary)
    return summary
