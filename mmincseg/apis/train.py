"""Train / test one incremental step (what tools/train.py and tools/test.py call)."""
import contextlib
import json
import logging
import os
import os.path as osp
import re
import time
from typing import Iterator, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from .plan import plan_step

from ..engine.hooks.step_result_hook import RESULT_FILE
from ..utils.checkpoint import checkpoint_record, recorded_checkpoint, unwrap_state_dict


def load_step_config(config: str,
                     work_dir: Optional[str] = None,
                     data_root: Optional[str] = None,
                     cfg_options: Optional[dict] = None) -> Config:
    """Load a step config, apply CLI overrides and resolve its ``incremental`` block.

    ``work_dir`` is the run directory; the step writes into ``<work_dir>/step<t>``. Without it,
    mmseg's default ``work_dirs/<config name>`` is used with a trailing ``_step<t>`` removed.
    The resolved config of :func:`~mmincseg.apis.plan.plan_step` (one load, one resolution).
    """
    return plan_step(config, work_dir, data_root, cfg_options)[1]


def _enable_amp(cfg: Config) -> None:
    """``--amp``: MMEngine's AmpOptimWrapper (fp16, dynamic loss scale) on GPU; bf16 autocast
    with ``CPUAmpOptimWrapper`` without one (MMEngine's wrapper refuses to run on CPU)."""
    if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper':
        import torch
        if torch.cuda.is_available():
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
        else:
            cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
            cfg.optim_wrapper.dtype = 'bfloat16'


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """Re-raise a data-loader worker's error with its own message only.

    PyTorch re-raises an error of a worker process as the same type whose message is the
    worker's whole traceback ("Caught ValueError in DataLoader worker process 0. Original
    Traceback ..."); our errors already name the file and the fix, so the last line is kept.
    """
    try:
        yield
    except (ValueError, FileNotFoundError) as e:
        text = str(e)
        marker = f'\n{type(e).__name__}: '
        if 'DataLoader worker process' not in text or marker not in text:
            raise
        raise type(e)(text.rsplit(marker, 1)[1].strip()) from e


def step_is_finished(step_dir: str) -> bool:
    """Whether a step directory holds a completed step (its result file)."""
    return osp.isfile(osp.join(step_dir, RESULT_FILE))


def protect_step_dir(step_dir: str, resume: bool, force: bool) -> None:
    """Refuse to overwrite a finished or interrupted step unless told to.

    A finished step is kept (error) unless ``force``; with ``force`` the old directory is moved
    aside to ``<step_dir>.old-<time>``, never deleted. An interrupted one needs ``resume`` or
    ``force``.
    """
    if not osp.isdir(step_dir) or resume:
        if resume and step_is_finished(step_dir) and not force:
            raise FileExistsError(f'{step_dir} is already finished ({RESULT_FILE} exists); '
                                  'nothing to resume. Use --force to retrain it.')
        return
    has_ckpt = osp.isfile(checkpoint_record(step_dir))
    if not (step_is_finished(step_dir) or has_ckpt):
        return
    if force:
        backup = f'{step_dir}.old-{time.strftime("%Y%m%d_%H%M%S")}'
        n = 1
        while osp.exists(backup):  # two --force runs within a second: never replace a backup
            backup = f'{step_dir}.old-{time.strftime("%Y%m%d_%H%M%S")}-{n}'
            n += 1
        os.rename(step_dir, backup)
        print_log(f'--force: moved the previous {step_dir} to {backup}', logger='current')
        return
    state = 'finished' if step_is_finished(step_dir) else 'interrupted (has checkpoints)'
    raise FileExistsError(f'{step_dir} holds a {state} step. Use --resume to continue it, '
                          '--force to retrain (the old directory is moved aside), or another '
                          '--work-dir.')


def resume_checkpoint(step_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` continues an interrupted step from.

    The one MMEngine's ``last_checkpoint`` record names; when that record is empty or names a
    missing file (a run killed while writing it), the newest ``*.pth`` of ``step_dir`` that
    loads (a checkpoint cut short by the kill is skipped). None when there is none.
    """
    record = checkpoint_record(step_dir)
    named = recorded_checkpoint(step_dir)
    if named is not None and osp.isfile(named):
        return named
    import glob

    import torch
    for candidate in sorted(glob.glob(osp.join(step_dir, '*.pth')), key=osp.getmtime,
                            reverse=True):
        try:
            torch.load(candidate, map_location='cpu', weights_only=False)
        except Exception:  # truncated by the kill: try the previous one
            print_log(f'--resume: skipping {candidate}, which does not load', logger='current',
                      level=logging.WARNING)
            continue
        print_log(f'--resume: {record} is missing or broken; continuing from {candidate}',
                  logger='current', level=logging.WARNING)
        return candidate
    return None


def train_step(config: str,
               work_dir: Optional[str] = None,
               data_root: Optional[str] = None,
               cfg_options: Optional[dict] = None,
               resume: bool = False,
               force: bool = False,
               amp: bool = False,
               launcher: str = 'none') -> dict:
    """Train one step; returns its result (metrics, timings) also written to ``step_result.json``.

    The config is loaded and resolved once (:func:`~mmincseg.apis.plan.plan_step`), then
    :func:`train_resolved` trains it.
    """
    _, cfg = plan_step(config, work_dir, data_root, cfg_options)
    return train_resolved(cfg, resume=resume, force=force, amp=amp, launcher=launcher)


def train_resolved(cfg: Config,
                   resume: bool = False,
                   force: bool = False,
                   amp: bool = False,
                   launcher: str = 'none') -> dict:
    """Train a resolved step config (the config of :func:`~mmincseg.apis.plan.plan_step`).

    A finished or interrupted step directory (``cfg.work_dir``) is refused unless ``resume``
    (continue from its last checkpoint) or ``force`` (retrain; the old directory is moved aside).
    ``cfg`` is modified (launcher, resume, checkpoint to resume from).

    Returns:
        dict: The step's result (``step_result.json``), empty when the step wrote none.
    """
    cfg.launcher = launcher
    cfg.resume = resume
    if amp:
        _enable_amp(cfg)
    if int(os.environ.get('RANK', '0')) == 0 or not force:
        # every process refuses alike; only the first one moves a directory aside (--force)
        protect_step_dir(cfg.work_dir, resume, force)
    if resume and cfg.get('load_from') is None and osp.isdir(cfg.work_dir):
        # MMEngine resumes from load_from when it is set (else from last_checkpoint as written)
        cfg.load_from = resume_checkpoint(cfg.work_dir)
    from mmseg.registry import RUNNERS
    runner = RUNNERS.build(cfg)
    with clear_errors():
        runner.train()
    result_file = osp.join(cfg.work_dir, RESULT_FILE)
    if osp.isfile(result_file):
        with open(result_file) as f:
            return json.load(f)
    return {}


def check_checkpoint_classes(checkpoint: str, classes_per_step: Sequence[int]) -> None:
    """Fail early, naming the file, when a checkpoint's classifiers do not fit the step.

    Raises:
        ValueError: a head's per-step class counts differ from ``classes_per_step``.
    """
    from mmengine.runner import CheckpointLoader
    state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = unwrap_state_dict(state)
    heads: dict = {}
    for key, value in state.items():
        m = re.match(r'(.*conv_seg)(?:\.classifiers\.(\d+))?\.weight$', key)
        if m:
            heads.setdefault(m.group(1), {})[int(m.group(2) or 0)] = int(value.shape[0])
    expected = [int(n) for n in classes_per_step]
    for head, steps in heads.items():
        found = [steps[k] for k in sorted(steps)]
        plain_ok = len(steps) == 1 and len(expected) == 1 and found == expected
        if found != expected and not plain_ok:
            raise ValueError(
                f'checkpoint {checkpoint} does not fit this step: {head} has classes per step '
                f'{found}, the config expects {expected} (sum {sum(expected)}). Use the config of '
                'the split and step the checkpoint was trained for.')


def test_step(config: str,
              checkpoint: str,
              work_dir: Optional[str] = None,
              data_root: Optional[str] = None,
              cfg_options: Optional[dict] = None,
              out: Optional[str] = None,
              show_dir: Optional[str] = None,
              launcher: str = 'none') -> dict:
    """Evaluate ``checkpoint`` with the step's metric; optionally write prediction PNGs to ``out``."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    plan, cfg = plan_step(config, work_dir, data_root, cfg_options)
    if plan.trains == 'segmentor':
        check_checkpoint_classes(checkpoint, plan.classes_per_step)
    cfg.launcher = launcher
    cfg.load_from = checkpoint
    # the IncrementalStepHook stays: it acts in before_train only, which testing never calls
    if out is not None:
        if osp.isdir(out) and os.listdir(out):
            print_log(f'--out {out} is not empty; files of the same name are replaced',
                      logger='current', level=logging.WARNING)
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    if show_dir is not None:
        cfg.default_hooks.visualization.draw = True
        cfg.visualizer['save_dir'] = show_dir
    from mmseg.registry import RUNNERS
    runner = RUNNERS.build(cfg)
    with clear_errors():
        return runner.test()
