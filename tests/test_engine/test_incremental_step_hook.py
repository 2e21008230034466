"""The step hook through a real Runner on the toy VOC: teacher, novel init, optimizer, resume."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS, RUNNERS

from mmincseg.apis import load_step_config, train_step
from mmincseg.engine.hooks import IncrementalStepHook, find_last_checkpoint
from loader_options import NO_WORKERS

pytestmark = pytest.mark.slow
CONFIG = 'configs/mib/bisenet_r18_toyvoc_15-5_step{}.py'
FAST = {'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 8, **NO_WORKERS}


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, toy_voc):
    work = str(tmp_path_factory.mktemp('run'))
    train_step(CONFIG.format(0), work_dir=work, data_root=toy_voc, cfg_options=dict(FAST))
    return work


def step1_runner(run_dir, toy_voc, **options):
    cfg = load_step_config(CONFIG.format(1), work_dir=run_dir, data_root=toy_voc,
                           cfg_options=dict(FAST, **options))
    return RUNNERS.build(cfg)


def test_hook_makes_frozen_teacher_and_mib_init(run_dir, toy_voc, prepare_runner):
    runner = prepare_runner(step1_runner(run_dir, toy_voc))
    model = runner.model
    teacher = model.teacher
    assert teacher is not None and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert not any(k.startswith('_teacher') or 'teacher' in k for k in model.state_dict())
    student_params = {id(p) for p in model.parameters()}
    assert not student_params & {id(p) for p in teacher.parameters()}

    # the optimizer built before the hook owns the new classifier rows of every head
    opt_params = {id(p) for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']}
    heads = [model.decode_head, *model.auxiliary_head]
    for head in heads:
        new = head.conv_seg.classifiers[1]
        assert id(new.weight) in opt_params and id(new.bias) in opt_params

    # novel init: old-class probabilities unchanged, bg + new share the old background
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats, old_feats = model.extract_feat(x), teacher.extract_feat(x)
        for head, old_head in zip(heads, [teacher.decode_head, *teacher.auxiliary_head]):
            p = F.softmax(head.forward(feats), 1)
            q = F.softmax(old_head.forward(old_feats), 1)
            torch.testing.assert_close(p[:, 1:16], q[:, 1:16], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(p[:, [0, *range(16, 21)]].sum(1), q[:, 0], atol=1e-5,
                                       rtol=1e-4)
            torch.testing.assert_close(p[:, 16], q[:, 0] / 6, atol=1e-5, rtol=1e-4)


def test_step1_trains_and_checkpoint_loads_into_plain_model(run_dir, toy_voc, prepare_runner):
    result = train_step(CONFIG.format(1), work_dir=run_dir, data_root=toy_voc,
                        cfg_options=dict(FAST))
    metrics = result['metrics']
    # the step-1 metric scores the 21 seen classes: mIoU is the mean of their IoUs
    ious = [metrics[k] for k in metrics if k.startswith('IoU.') and metrics[k] is not None]
    assert len([k for k in metrics if k.startswith('IoU.')]) == 21
    assert metrics['mIoU'] == pytest.approx(sum(ious) / len(ious), abs=0.02)
    assert 'mIoU_novel' in metrics
    ckpt_file = find_last_checkpoint(osp.join(run_dir, 'step1'))
    state = CheckpointLoader.load_checkpoint(ckpt_file)['state_dict']
    assert not any('teacher' in k for k in state)
    cfg = load_step_config(CONFIG.format(1), work_dir=run_dir, data_root=toy_voc)
    plain = MODELS.build(cfg.model)
    plain.load_state_dict(state, strict=True)

    # resume: the hook rebuilds the teacher but keeps the trained new rows
    trained = state['decode_head.conv_seg.classifiers.1.weight']
    runner = prepare_runner(step1_runner(run_dir, toy_voc, resume=True))
    assert runner.iter > 0 and runner.model.teacher is not None
    torch.testing.assert_close(runner.model.decode_head.conv_seg.classifiers[1].weight, trained)


def test_wrong_previous_checkpoint_is_a_clear_error(run_dir, toy_voc, tmp_path, prepare_runner):
    # a step-0 checkpoint of 15-1 is fine for 15-1 step 1 but a 15-5 step-1 run
    # checkpoint has 21 classes: wrong for the teacher of 15-1 step 2 (expects 17)
    bad = find_last_checkpoint(osp.join(run_dir, 'step1'))
    cfg = load_step_config('configs/mib/bisenet_r18_toyvoc_15-1_step0.py', work_dir=str(tmp_path),
                           data_root=toy_voc,
                           cfg_options=dict(FAST, **{'incremental.step': 2,
                                                     'incremental.prev_checkpoint': bad}))
    runner = RUNNERS.build(cfg)
    with pytest.raises(ValueError, match=r'does not match the previous step.*\[16, 1\]'):
        prepare_runner(runner)


def test_missing_previous_checkpoint_says_how_to_fix(tmp_path, toy_voc, prepare_runner):
    cfg = load_step_config(CONFIG.format(1), work_dir=str(tmp_path), data_root=toy_voc,
                           cfg_options=dict(FAST))
    runner = RUNNERS.build(cfg)
    with pytest.raises(FileNotFoundError, match=r'step0.*Train the previous step first'):
        prepare_runner(runner)
    assert isinstance(IncrementalStepHook(prev_checkpoint='x', teacher_model={}),
                      IncrementalStepHook)


def test_channels_last_hook_converts_student_and_teacher(run_dir, toy_voc, prepare_runner):
    plain = prepare_runner(step1_runner(run_dir, toy_voc)).model
    runner = prepare_runner(step1_runner(run_dir, toy_voc,
                                  custom_hooks=[dict(type='ChannelsLastHook')]))
    model = runner.model
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    teacher_convs = [m for m in model.teacher.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and teacher_convs
    for conv in convs + teacher_convs:
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    # the optimizer built before the hook still owns the (converted) parameters
    opt_params = {id(p) for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']}
    assert {id(c.weight) for c in convs} <= opt_params
    # same weights, same outputs as the NCHW model; the state dict loads into a plain model
    model.eval()
    plain.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_decode(x, [dict(img_shape=(64, 64))] * 2),
                                   plain.encode_decode(x, [dict(img_shape=(64, 64))] * 2),
                                   rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.teacher_forward(x)[0], plain.teacher_forward(x)[0],
                                   rtol=1e-4, atol=1e-4)
    plain.load_state_dict(model.state_dict(), strict=True)
