"""The step plan: its fields for every kind of step, one load and resolution per step, the CLI.

Only config loading and resolution run here (training is replaced by a stand-in runner that
writes a step's files), so the whole file takes seconds.
"""
import collections
import dataclasses
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config

from mmincseg import tasks
from mmincseg.apis import config as resolver
from mmincseg.apis import plan_run, plan_step, run_incremental, train_step
from mmincseg.apis import seam as seam_api
from mmincseg.engine.hooks.incremental_step_hook import teacher_model_config

MIB = 'configs/mib/bisenet_r18_toyvoc_15-5_step0.py'
MIB_15_1 = 'configs/mib/bisenet_r18_toyvoc_15-1_step0.py'
JOINT = 'configs/joint/bisenet_r18_toyvoc_15-5.py'
WEAK = 'configs/mib_seam/bisenet_r18_toyvoc_15-5_step0.py'
SEAM = 'configs/seam/seam_r18_toyvoc_15-5.py'
RUN = 'work_dirs/x'


def _hook(cfg, kind='IncrementalStepHook'):
    found = [h for h in cfg.custom_hooks if h['type'] == kind]
    return found[0] if found else None


# ------------------------------------------------------------------------------ fields
def test_mib_15_5_step1():
    plan, cfg = plan_step(MIB, RUN, step=1)
    assert (plan.config, plan.method, plan.labels, plan.task, plan.setting, plan.step) == \
        (MIB, 'mib', 'gt', '15-5', 'overlap', 1)
    assert plan.steps == [0, 1] and plan.trains == 'segmentor'
    assert plan.run_dir == RUN and plan.step_dir == osp.join(RUN, 'step1') == cfg.work_dir
    assert plan.work_dir == plan.step_dir and plan.step_dir_of(0) == osp.join(RUN, 'step0')
    assert plan.prev_checkpoint == osp.join(RUN, 'step0')
    assert plan.old_classes == list(range(16)) and plan.new_classes == [16, 17, 18, 19, 20]
    assert plan.seen_classes == list(range(21)) and plan.classes_per_step == [16, 5]
    assert plan.method_settings == dict(unbiased=True, kd='UnbiasedKDLoss', kd_weight=10.0,
                                        kd_alpha=1.0, init_novel=True)
    assert not plan.needs_pseudo_labels
    assert plan.seam_config is plan.seam_dir is plan.pseudo_label_dir is None
    # what the resolved config does is what the plan says
    hook = _hook(cfg)
    assert hook['prev_checkpoint'] == plan.prev_checkpoint
    assert hook['teacher_model'] == plan.teacher_model
    assert cfg.model.classes_per_step == plan.classes_per_step


def test_teacher_is_the_students_model_of_the_previous_step():
    """The hook's ``teacher_model`` is what it built from ``runner.cfg.model`` before."""
    plan, cfg = plan_step(MIB, RUN, step=1)
    assert plan.teacher_model == teacher_model_config(cfg.model.to_dict(), [16])
    teacher = plan.teacher_model
    assert teacher['classes_per_step'] == [16] and teacher['type'] == 'IncrementalEncoderDecoder'
    assert teacher['distill_loss'] is None and teacher['feature_distill_loss'] is None
    assert 'init_cfg' not in teacher and 'init_cfg' not in teacher['backbone']
    assert cfg.model.distill_loss is not None  # the student keeps its own


def test_mib_15_1_step3():
    plan, _ = plan_step(MIB_15_1, RUN, step=3)
    assert plan.steps == list(range(6)) and plan.step == 3
    assert plan.old_classes == list(range(18)) and plan.new_classes == [18]
    assert plan.seen_classes == list(range(19)) and plan.classes_per_step == [16, 1, 1, 1]
    assert plan.prev_checkpoint == osp.join(RUN, 'step2')
    assert plan.teacher_model['classes_per_step'] == [16, 1, 1]
    assert plan.method_settings['kd_weight'] == 100.0  # MiB's 15-1 setting


def test_joint():
    plan, _ = plan_step(JOINT, RUN)
    assert (plan.method, plan.task, plan.step, plan.steps) == ('joint', '15-5', 0, [0])
    assert plan.old_classes == [] and plan.new_classes == list(range(1, 21))
    assert plan.seen_classes == list(range(21)) and plan.classes_per_step == [21]
    assert plan.prev_checkpoint is None and plan.teacher_model is None
    assert not plan.needs_pseudo_labels


def test_step0_has_no_previous_checkpoint_nor_teacher():
    plan, cfg = plan_step(MIB, RUN)
    assert plan.step == 0 and plan.steps == [0, 1]
    assert plan.prev_checkpoint is None and plan.teacher_model is None
    assert plan.old_classes == [] and plan.new_classes == list(range(1, 16))
    assert plan.seen_classes == list(range(16)) and _hook(cfg) is None


def test_weak_step_plans_seam_and_pseudo_labels(tmp_path):
    run = str(tmp_path)
    plan, cfg = plan_step(WEAK, run, step=1)
    assert plan.labels == 'seam' and plan.needs_pseudo_labels
    assert plan.seam_config == osp.abspath(SEAM)
    assert plan.seam_dir == osp.join(run, 'step1', 'seam')
    assert plan.pseudo_label_dir == osp.join(run, 'step1', 'pseudo_labels')
    assert plan.seam_cfg_options == {
        'incremental.task': '15-5', 'incremental.step': 1, 'incremental.setting': 'overlap',
        'incremental.work_root': run, 'train_cfg.val_begin': resolver.SKIP_VALIDATION}
    loader = [t for t in cfg.train_dataloader.dataset.pipeline
              if t['type'] == 'LoadPseudoLabel'][0]
    assert loader['pseudo_label_dir'] == plan.pseudo_label_dir
    assert loader['classes'] == plan.new_classes
    # the SEAM planned with the plan's options learns the step's classes where the plan says
    seam_plan, seam_cfg = plan_step(plan.seam_config, run, cfg_options=plan.seam_cfg_options)
    assert seam_plan.trains == 'seam' and seam_plan.work_dir == plan.seam_dir == seam_cfg.work_dir
    assert seam_cfg.model.class_ids == [0] + plan.new_classes
    assert seam_plan.teacher_model is None and not seam_plan.needs_pseudo_labels
    # step 0 of the weak split trains on true masks
    step0, _ = plan_step(WEAK, run, step=0)
    assert not step0.needs_pseudo_labels and step0.seam_config is None
    # the weak joint step needs them at step 0, from the all-classes SEAM
    joint, _ = plan_step('configs/joint_seam/bisenet_r18_toyvoc_15-5.py', run)
    assert joint.needs_pseudo_labels and joint.seam_dir == osp.join(run, 'step0', 'seam')
    assert joint.seam_cfg_options['incremental.task'] == '20-0'


def test_weak_step_without_seam_config_is_a_clear_error(tmp_path):
    weak = tmp_path / 'weak.py'
    weak.write_text(f"_base_ = ['{osp.abspath(MIB)}']\nincremental = dict(labels='seam')\n")
    plan, _ = plan_step(str(weak), str(tmp_path), step=1)
    assert plan.needs_pseudo_labels and plan.seam_config is None  # own pseudo-labels: fine
    with pytest.raises(ValueError, match=r"weak\.py: incremental.labels='seam' needs the SEAM "
                       r'config of its steps: incremental\.seam=dict'):
        seam_api.make_step_pseudo_labels(plan)


def test_plan_is_printable_dumpable_frozen_data():
    plan, _ = plan_step(WEAK, RUN, step=1)
    data = plan.to_dict()
    assert json.loads(json.dumps(data))['seam_dir'] == plan.seam_dir  # JSON-serialisable
    assert {f.name for f in dataclasses.fields(plan)} == set(data)
    data['old_classes'].append(99)
    assert 99 not in plan.old_classes  # a copy
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.step = 2
    text = str(plan)
    assert text == plan.describe() and len(text.splitlines()) <= 10
    for part in ('mib 15-5 step 1', 'old [0-15]', 'new [16-20]', 'step-0 model',
                 osp.join(RUN, 'step0'), plan.seam_dir, plan.pseudo_label_dir, 'kd_weight=10.0'):
        assert part in text, part
    # class ids only, never one dataset's names ('train' is also a word of the text)
    assert not [n for n in tasks.VOC_CLASSES[1:] if n in text and n != 'train']


def test_plan_run_and_its_errors(tmp_path):
    plans = plan_run(MIB, str(tmp_path))
    assert [p.step for p, _ in plans] == [0, 1]
    assert [c.work_dir for _, c in plans] == [p.step_dir for p, _ in plans]
    assert [p.step for p, _ in plan_run(MIB, str(tmp_path), steps=[1])] == [1]
    with pytest.raises(ValueError, match=r"--steps \[7\] are not steps of split '15-5' "
                       r'\(valid: \[0, 1\]\)'):
        plan_run(MIB, str(tmp_path), steps=[7])
    with pytest.raises(ValueError, match=r'--steps \[1\] are not steps .*valid: \[0\]'):
        plan_run(JOINT, str(tmp_path), steps=[1])
    with pytest.raises(FileNotFoundError, match='config file nope.py does not exist'):
        plan_step('nope.py')
    plain = tmp_path / 'plain.py'
    plain.write_text("model = dict(type='EncoderDecoder')\n")
    with pytest.raises(ValueError, match=r'plain\.py has no `incremental` block'):
        plan_step(str(plain), step=1)
    _, cfg = plan_step(MIB, str(tmp_path))
    with pytest.raises(ValueError, match='resolved already'):
        resolver.resolve_step(cfg)


# --------------------------------------------------------------- one load per step
class _Counts:
    """Counts ``Config.fromfile`` calls and real resolutions (``config.resolve_step``, which
    every resolution goes through), by config file name."""

    def __init__(self, monkeypatch):
        self.loads = collections.Counter()
        self.resolutions = collections.Counter()
        fromfile, resolve_step = Config.fromfile, resolver.resolve_step

        def counting_fromfile(filename, *args, **kwargs):
            self.loads[osp.basename(str(filename))] += 1
            return fromfile(filename, *args, **kwargs)

        def counting_resolve(cfg):
            self.resolutions[osp.basename(str(cfg.filename))] += 1
            return resolve_step(cfg)

        monkeypatch.setattr(Config, 'fromfile', staticmethod(counting_fromfile))
        monkeypatch.setattr(resolver, 'resolve_step', counting_resolve)


class _StandInRunner:
    """Writes what a trained step leaves (checkpoint, its record, step_result.json)."""

    built = []

    def __init__(self, cfg):
        self.cfg = cfg
        _StandInRunner.built.append(cfg)

    def train(self):
        work = self.cfg.work_dir
        os.makedirs(work, exist_ok=True)
        ckpt = osp.join(work, 'epoch_1.pth')
        open(ckpt, 'wb').close()
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(ckpt)
        info = [h for h in self.cfg.custom_hooks if h['type'] == 'StepResultHook'][0]['info']
        with open(osp.join(work, 'step_result.json'), 'w') as f:
            json.dump(dict(info, metrics={}), f)


@pytest.fixture
def no_training(monkeypatch):
    """Runners that only write a step's files; a SEAM over no images."""
    from mmseg.registry import RUNNERS

    class _Seam:
        class_ids = [0, 16, 17, 18, 19, 20]

    _StandInRunner.built = []
    monkeypatch.setattr(RUNNERS, 'build', _StandInRunner)
    monkeypatch.setattr(seam_api, 'build_seam_model', lambda *args, **kwargs: _Seam())
    monkeypatch.setattr(seam_api, 'build_step_images', lambda cfg: [])
    return _StandInRunner.built


def test_train_step_loads_and_resolves_the_config_once(monkeypatch, no_training, tmp_path):
    counts = _Counts(monkeypatch)
    run = str(tmp_path / 'run')
    train_step(MIB, work_dir=run, cfg_options={'incremental.step': 1})
    assert counts.loads == {osp.basename(MIB): 1}
    assert counts.resolutions == {osp.basename(MIB): 1}
    assert [c.work_dir for c in no_training] == [osp.join(run, 'step1')]


def test_weak_step_of_a_run_loads_each_config_once(monkeypatch, no_training, tmp_path):
    """One weak step of ``run_incremental``: the weak config is loaded and resolved once (was 5
    loads, 2 resolutions with the CLI's wiring), its SEAM config once (was 2 and 2); the run
    needs no wiring by the caller."""
    counts = _Counts(monkeypatch)
    run = str(tmp_path / 'run')
    summary = run_incremental(WEAK, run, steps=[1])
    assert counts.loads == {osp.basename(WEAK): 1, osp.basename(SEAM): 1}
    assert counts.resolutions == {osp.basename(WEAK): 1, osp.basename(SEAM): 1}
    # SEAM, then its pseudo-labels (measured), then the step on them
    assert [c.work_dir for c in no_training] == [osp.join(run, 'step1', 'seam'),
                                                 osp.join(run, 'step1')]
    assert osp.isfile(osp.join(run, 'step1', 'pseudo_label_metrics.json'))
    assert osp.isdir(osp.join(run, 'step1', 'pseudo_labels'))
    assert 'LoadPseudoLabel' in str(no_training[1].train_dataloader.dataset.pipeline)
    assert [s['step'] for s in summary['steps']] == [1] and summary['labels'] == 'seam'


def test_plain_run_loads_each_step_once(monkeypatch, no_training, tmp_path):
    counts = _Counts(monkeypatch)
    run = str(tmp_path / 'run')
    run_incremental(MIB, run)
    assert counts.loads == {osp.basename(MIB): 2}  # was 3 (one more to read the steps)
    assert counts.resolutions == {osp.basename(MIB): 2}
    assert [c.work_dir for c in no_training] == [osp.join(run, f'step{t}') for t in (0, 1)]


def test_run_checks_and_trains_the_same_folders(monkeypatch, no_training, tmp_path):
    """A run directory named like a step config's default (``..._step0``) is the resolver's
    run directory with the suffix removed: the chain now reads the plans' folders, so it skips,
    trains and summarises the folders the steps really write."""
    run = str(tmp_path / 'bisenet_step0')
    summary = run_incremental(MIB, run)
    trained = [c.work_dir for c in no_training]
    assert trained == [osp.join(str(tmp_path), 'bisenet', f'step{t}') for t in (0, 1)]
    assert [s['step'] for s in summary['steps']] == [0, 1]
    run_incremental(MIB, run)  # finished: nothing trained again
    assert [c.work_dir for c in no_training] == trained


# ------------------------------------------------------------------------------- CLI
def test_print_plan_trains_nothing(repo_root, tmp_path):
    work = str(tmp_path / 'run')
    proc = subprocess.run([sys.executable, 'tools/run_incremental.py', WEAK, '--work-dir', work,
                           '--print-plan'], cwd=repo_root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert 'mib 15-5 step 0 (run steps [0, 1])' in out and 'mib 15-5 step 1' in out
    assert f"trains in {osp.join(work, 'step1', 'seam')}" in out
    assert f"pseudo-labels in {osp.join(work, 'step1', 'pseudo_labels')}" in out
    assert out.count('pseudo-labels in') == 1  # step 0 trains on true masks
    assert not osp.exists(work)
    proc = subprocess.run([sys.executable, 'tools/run_incremental.py', MIB, '--work-dir', work,
                           '--dry-run', '--steps', '7'], cwd=repo_root, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and 'error: --steps [7] are not steps' in proc.stderr
    assert 'Traceback' not in proc.stderr
