"""PLOP through a real Runner on the toy VOC: 15-1 step 1 with the threshold pass and POD."""
import pytest
import torch
from mmseg.registry import RUNNERS

from mmincseg.apis import load_step_config, train_step
from mmincseg.engine.hooks import PseudoLabelThresholdHook
from loader_options import NO_WORKERS

pytestmark = pytest.mark.slow
CONFIG = 'configs/plop/bisenet_r18_toyvoc_15-1_step0.py'
FAST = {'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 8, **NO_WORKERS}


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory, toy_voc):
    work = str(tmp_path_factory.mktemp('plop'))
    train_step(CONFIG, work_dir=work, data_root=toy_voc, cfg_options=dict(FAST))
    return work


def test_step1_computes_thresholds_then_trains_with_pod(run_dir, toy_voc, prepare_runner):
    options = dict(FAST, **{'incremental.step': 1})
    cfg = load_step_config(CONFIG, work_dir=run_dir, data_root=toy_voc, cfg_options=options)
    assert [h['type'] for h in cfg.custom_hooks if 'Threshold' in h['type']] == [
        'PseudoLabelThresholdHook']
    runner = prepare_runner(RUNNERS.build(cfg))
    model = runner.model
    thresholds = model.pseudo_label_thresholds
    assert model.teacher is not None and thresholds.shape == (17, )
    assert (thresholds >= 0.001).all() and torch.isfinite(thresholds).all()
    # the pass left the training's random stream alone and gives the same thresholds again
    state = torch.random.get_rng_state()
    hook = next(h for h in runner.hooks if isinstance(h, PseudoLabelThresholdHook))
    hook.before_train(runner)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.testing.assert_close(model.pseudo_label_thresholds, thresholds)
    # one training iteration has every PLOP term
    batch = next(iter(runner.train_dataloader))
    data = model.data_preprocessor(batch, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_pod', 'loss_pod_logits', 'decode.loss_ce'} <= set(losses)
    assert 'loss_kd' not in losses
    assert all(torch.isfinite(v).all() for k, v in losses.items() if k.startswith('loss'))

    result = train_step(CONFIG, work_dir=run_dir, data_root=toy_voc, cfg_options=options)
    assert result['metrics']['mIoU'] is not None


def test_step0_hook_is_a_no_op(run_dir):
    hook = PseudoLabelThresholdHook(prev_checkpoint=None)
    hook.before_train(runner=None)  # never looks at the runner at step 0
