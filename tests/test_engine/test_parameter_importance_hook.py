"""EWC / PI / RW through real toy 15-1 steps: importance in the step-0 checkpoints (beside a
state dict that loads strictly into a plain model), step 1 penalising towards step 0 with its
importance, and ``--resume`` continuing the accumulation exactly."""
import glob
import os
import os.path as osp
import re
import shutil

import pytest
import torch
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS, RUNNERS

from mmincseg.apis import load_step_config, train_step
from mmincseg.engine.hooks import IMPORTANCE_KEY, find_last_checkpoint
from mmincseg.models.losses.parameter_regularizer import ACCUMULATORS
from loader_options import NO_WORKERS

pytestmark = pytest.mark.slow
CONFIG = 'configs/{}/bisenet_r18_toyvoc_15-1_step0.py'
# batch 4: ~12 optimizer steps, so RW's score (every 10) is updated once; iteration checkpoints
# every 3 for the resume test; deterministic for the exact comparison
FAST = {'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 4, **NO_WORKERS,
        'randomness.seed': 0, 'randomness.deterministic': True,
        'default_hooks.checkpoint.by_epoch': False, 'default_hooks.checkpoint.interval': 3,
        'default_hooks.checkpoint.max_keep_ckpts': -1}


def load(path):
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')


def trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.fixture(scope='module', params=['ewc', 'pi', 'rw'])
def run(request, tmp_path_factory, toy_voc):
    """A finished step 0 of the method: (method, run directory)."""
    work = str(tmp_path_factory.mktemp(f'{request.param}_run'))
    train_step(CONFIG.format(request.param), work_dir=work, data_root=toy_voc,
               cfg_options=dict(FAST))
    return request.param, work


def test_step0_checkpoint_keeps_importance_beside_a_plain_state_dict(run, toy_voc):
    method, work = run
    ckpt = load(find_last_checkpoint(osp.join(work, 'step0')))
    payload = ckpt[IMPORTANCE_KEY]
    assert payload['method'] == method
    assert not any(IMPORTANCE_KEY in k or 'fisher' in k for k in ckpt['state_dict'])
    cfg = load_step_config(CONFIG.format(method), work_dir=work, data_root=toy_voc)
    plain = MODELS.build(cfg.model)
    plain.load_state_dict(ckpt['state_dict'], strict=True)
    names = trainable(plain)
    assert payload['accumulator']['updates'] == ckpt['meta']['iter'] >= 11
    for key in ACCUMULATORS[method].carries:
        importance = payload['importance'][key]
        assert set(importance) == names
        values = torch.cat([v.flatten() for v in importance.values()])
        assert torch.isfinite(values).all() and (values >= 0).all() and (values > 0).any()
    # every checkpoint of the step has it (iteration ones too), for --resume
    for path in glob.glob(osp.join(work, 'step0', 'iter_*.pth')):
        assert load(path)[IMPORTANCE_KEY]['accumulator']['updates'] == load(path)['meta']['iter']


def test_step1_penalises_the_old_parameters_towards_step0(run, toy_voc, prepare_runner):
    method, work = run
    step0 = load(find_last_checkpoint(osp.join(work, 'step0')))
    # step 1 of 15-1 (one class) is one iteration an epoch: 3 epochs, each logged
    options = dict(FAST, **{'incremental.step': 1, 'train_cfg.max_epochs': 3,
                            'default_hooks.logger.interval': 1})
    cfg = load_step_config(CONFIG.format(method), work_dir=work, data_root=toy_voc,
                           cfg_options=options)
    model = prepare_runner(RUNNERS.build(cfg)).model
    penalty = model.regularizer
    assert penalty is not None and penalty.loss_name == 'loss_reg'
    assert penalty.loss_weight == {'ewc': 100.0, 'pi': 100.0, 'rw': 20.0}[method]  # toy: MiB's x lr
    old = {n for n in trainable(model) if n in step0['state_dict']}
    new = trainable(model) - old
    assert new and all('classifiers.1.' in n for n in new)  # the grown step: not penalised
    assert set(penalty.weights) == old
    expected = ACCUMULATORS[method].penalty_weights(step0[IMPORTANCE_KEY]['importance'])
    for name in old:
        torch.testing.assert_close(penalty.weights[name], expected[name])
        torch.testing.assert_close(penalty.reference[name], step0['state_dict'][name])
    assert all(0 <= float(w.min()) and float(w.max()) <= 2 for w in penalty.weights.values())
    # the student starts at step 0's weights: no penalty; moving one value by d costs w d^2
    params = dict(model.named_parameters())
    assert penalty(params).item() == 0
    name = max(old, key=lambda n: float(penalty.weights[n].max()))
    index = int(penalty.weights[name].argmax())
    moved = dict(params, **{name: params[name].detach().clone()})
    moved[name].view(-1)[index] += 0.1
    assert penalty(moved).item() == pytest.approx(
        penalty.loss_weight * float(penalty.weights[name].view(-1)[index]) * 0.01, rel=1e-4)

    # the step trains with the penalty and stores the importance of every step-1 parameter
    train_step(CONFIG.format(method), work_dir=work, data_root=toy_voc, cfg_options=options)
    step1 = load(find_last_checkpoint(osp.join(work, 'step1')))
    importance = step1[IMPORTANCE_KEY]['importance']
    assert set(importance[ACCUMULATORS[method].carries[0]]) == old | new
    logged = []
    for log in sorted(glob.glob(osp.join(work, 'step1', '*', '*.log'))):
        with open(log) as f:
            logged += [float(v) for v in re.findall(r'loss_reg: ([0-9.e+-]+)', f.read())]
    assert len(logged) == 3 and logged[0] == 0 < logged[-1]  # starts at step 0's weights
    if method == 'pi':  # the steps' importances add up
        for name in old:
            assert (importance['score'][name] >= step0[IMPORTANCE_KEY]['importance']['score'][
                name] - 1e-6).all()


def test_resume_continues_the_accumulation_exactly(run, toy_voc, tmp_path):
    method, work = run
    straight = osp.join(work, 'step0')
    resumed = osp.join(str(tmp_path), 'step0')
    os.makedirs(resumed)
    shutil.copy(osp.join(straight, 'iter_6.pth'), resumed)
    with open(osp.join(resumed, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(resumed, 'iter_6.pth'))
    train_step(CONFIG.format(method), work_dir=str(tmp_path), data_root=toy_voc,
               cfg_options=dict(FAST), resume=True)
    expected = load(find_last_checkpoint(straight))
    got = load(find_last_checkpoint(resumed))
    assert got['meta']['iter'] == expected['meta']['iter']
    want, have = expected[IMPORTANCE_KEY], got[IMPORTANCE_KEY]
    assert have['accumulator']['updates'] == want['accumulator']['updates']
    for part in ('importance', 'accumulator'):
        for key, tensors in want[part].items():
            if not isinstance(tensors, dict):
                continue
            assert set(have[part][key]) == set(tensors), (part, key)
            for name, value in tensors.items():
                torch.testing.assert_close(have[part][key][name], value, rtol=1e-5, atol=1e-6,
                                           msg=f'{part}.{key}.{name}')


def test_step1_refuses_a_step0_without_importance(toy_voc, tmp_path, prepare_runner):
    """A step 0 of another method (here FT) has no importance: a clear error, not a silent
    unregularised step (MiB's code silently skips the penalty)."""
    work = str(tmp_path)
    train_step('configs/ft/bisenet_r18_toyvoc_15-1_step0.py', work_dir=work, data_root=toy_voc,
               cfg_options={'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 8,
                            **NO_WORKERS})
    cfg = load_step_config(CONFIG.format('ewc'), work_dir=work, data_root=toy_voc,
                           cfg_options={**NO_WORKERS, 'incremental.step': 1})
    with pytest.raises(ValueError, match=r"has no 'parameter_importance'.*same method"):
        prepare_runner(RUNNERS.build(cfg))


def test_a_penalty_sgd_cannot_follow_is_refused():
    """Heavy-ball SGD on the penalty's curvature 2 * weight * w: stable iff lr * k < 2(1 + mu)."""
    from mmincseg.engine.hooks.parameter_importance_hook import check_penalty_stable
    param = torch.nn.Parameter(torch.zeros(2))

    def sgd(lr, momentum=0.9):
        return torch.optim.SGD([param], lr=lr, momentum=momentum)

    # MiB: lr 0.001, EWC 500, w <= 1 -> 0.001 * 1000 / 3.8
    assert check_penalty_stable(sgd(0.001), 500.0, 1.0) == pytest.approx(1.0 / 3.8)
    assert check_penalty_stable(sgd(0.005), 100.0, 1.0) == pytest.approx(1.0 / 3.8)
    with pytest.raises(ValueError, match=r'pi: the penalty is too stiff.*lr 0.005.*weight 500.*'
                                         r'reg_weight below 380'):
        check_penalty_stable(sgd(0.005), 500.0, 1.0, 'pi')
    with pytest.raises(ValueError, match='too stiff'):
        check_penalty_stable(sgd(0.5, momentum=0.0), 1.0, 2.0)  # 0.5 * 4 = 2 = 2 * (1 + 0)
    assert check_penalty_stable(torch.optim.Adam([param], lr=1.0), 500.0, 1.0) == 0.0
