import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmincseg.apis import load_step_config, resolve_incremental_config
from mmincseg.apis.config import work_root

TOY = 'configs/{}/bisenet_r18_toyvoc_15-5_step{}.py'


def resolved(method='mib', step=1, **options):
    return load_step_config(TOY.format(method, 0), work_dir='work_dirs/x',
                            cfg_options=dict({'incremental.step': step}, **options))


def test_mib_step1_derives_everything():
    cfg = resolved()
    m = cfg.model
    assert m.type == 'IncrementalEncoderDecoder' and m.classes_per_step == [16, 5]
    for head in [m.decode_head, *m.auxiliary_head]:
        assert head.num_classes == 21
        assert head.loss_decode == dict(type='UnbiasedCrossEntropyLoss', old_classes=16,
                                        loss_weight=1.0)
    assert m.distill_loss == dict(type='UnbiasedKDLoss', loss_weight=10.0, alpha=1.0)
    assert cfg.train_dataloader.dataset.step == 1
    assert cfg.val_evaluator.type == 'IncrementalIoUMetric' and cfg.val_evaluator.step == 1
    hook = [h for h in cfg.custom_hooks if h.type == 'IncrementalStepHook'][0]
    assert hook.prev_checkpoint == osp.join('work_dirs/x', 'step0') and hook.init_novel
    assert cfg.work_dir == osp.join('work_dirs/x', 'step1')
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.005)  # step-0 lr x 0.1


@pytest.mark.parametrize('method,kd,feat', [('ft', None, None), ('lwf', 'LwFKDLoss', None),
                                            ('ilt', 'LwFKDLoss', 'FeatureDistillationLoss')])
def test_baselines(method, kd, feat):
    m = resolved(method).model
    assert m.decode_head.loss_decode.type == 'CrossEntropyLoss'
    assert (m.distill_loss or {}).get('type') == kd
    assert (m.feature_distill_loss or {}).get('type') == feat


def test_step0_has_no_teacher_and_full_lr():
    cfg = resolved(step=0)
    assert cfg.model.classes_per_step == [16] and cfg.model.distill_loss is None
    assert not [h for h in cfg.custom_hooks if h.type == 'IncrementalStepHook']
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.05)


def test_joint_trains_all_classes_and_reports_split_columns():
    cfg = load_step_config('configs/joint/bisenet_r18_toyvoc_15-5.py', work_dir='work_dirs/j')
    assert cfg.model.classes_per_step == [21]
    assert cfg.train_dataloader.dataset.task == '20-0'
    assert (cfg.val_evaluator.task, cfg.val_evaluator.step) == ('15-5', 1)


def test_overrides_and_idempotence():
    cfg = resolved(**{'incremental.kd_weight': 100, 'incremental.lr_factor': 1.0})
    assert cfg.model.distill_loss.loss_weight == 100
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.05)
    assert resolve_incremental_config(cfg).work_dir == cfg.work_dir  # no step1/step1


def test_default_work_dir_groups_steps():
    assert work_root(Config(dict(work_dir='./work_dirs/bisenet_r18_toyvoc_15-5_step1'))) == \
        './work_dirs/bisenet_r18_toyvoc_15-5'
    cfg = load_step_config(TOY.format('mib', 1))
    assert cfg.work_dir == osp.join('./work_dirs/bisenet_r18_toyvoc_15-5', 'step1')


@pytest.mark.parametrize('options,match', [
    ({'incremental.task': '15-4'}, "split '15-4' .*does not cover the 20 classes"),
    ({'incremental.step': 2}, 'step 2 .* out of range'),
    ({'incremental.method': 'sgd'}, "unknown incremental.method 'sgd'"),
    ({'incremental.setting': 'overlapped'}, "unknown setting 'overlapped'"),
    ({'incremental.labels': 'cam'}, "unknown incremental.labels 'cam'"),
    ({'incremental.kd': 3}, r"unknown incremental keys \['kd'\]"),
])
def test_bad_blocks_are_clear_errors(options, match):
    with pytest.raises(ValueError, match=match):
        load_step_config(TOY.format('mib', 0), work_dir='w', cfg_options=options)


def test_config_without_incremental_block(tmp_path):
    path = tmp_path / 'plain.py'
    path.write_text("model = dict(type='EncoderDecoder')\n")
    with pytest.raises(ValueError, match=r'plain\.py has no `incremental` block'):
        load_step_config(str(path), work_dir='w')


def test_every_shipped_step_config_resolves(repo_root):
    import glob
    configs = sorted(p for p in glob.glob(osp.join(repo_root, 'configs', '*', '*.py'))
                     if '_base_' not in p)
    assert len(configs) > 50  # one per method x model x dataset x split (configs/README.md)
    for path in configs:
        cfg = load_step_config(path, work_dir='w')
        assert cfg.incremental['task'] and cfg.work_dir.startswith('w')


@pytest.mark.parametrize('method,step', [('ft', 0), ('ft', 1), ('lwf', 1), ('ilt', 1),
                                         ('mib', 0), ('mib', 1), ('joint', 0)])
def test_every_head_averages_ce_over_non_ignored_pixels(method, step):
    """255 pixels (void, batch padding) do not dilute any method's CE: the loss on a map whose
    right half is 255 equals the loss on its left half alone."""
    import torch
    from mmseg.registry import MODELS

    config = ('configs/joint/bisenet_r18_toyvoc_15-5.py' if method == 'joint' else
              TOY.format(method, 0))
    cfg = load_step_config(config, work_dir='work_dirs/x',
                           cfg_options=None if method == 'joint' else {'incremental.step': step})
    model = MODELS.build(cfg.model)
    heads = [model.decode_head, *model.auxiliary_head]
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 21, 6, 8, generator=gen)
    labels = torch.randint(0, 21, (2, 6, 8), generator=gen)
    labels[..., 4:] = 255
    for head in heads:
        loss = head.loss_decode
        full = loss(logits, labels, ignore_index=255)
        valid = loss(logits[..., :4].contiguous(), labels[..., :4].contiguous(),
                     ignore_index=255)
        torch.testing.assert_close(full, valid, msg=f'{method} step {step}: {loss}')


def test_ce_without_loss_decode_gets_the_mean_over_valid_pixels():
    cfg = resolved('ft', **{'model.decode_head.loss_decode': None})
    assert cfg.model.decode_head.loss_decode == dict(type='CrossEntropyLoss', use_sigmoid=False,
                                                     loss_weight=1.0, avg_non_ignore=True)


def test_no_workers_turns_persistent_workers_off():
    cfg = resolved(**{'train_dataloader.num_workers': 0})
    assert cfg.train_dataloader.persistent_workers is False
    assert cfg.val_dataloader.persistent_workers is True  # it still has workers


def test_training_samples_are_seeded_by_the_sampler():
    assert resolved().train_dataloader.sampler.type == 'SeededSampler'
    assert resolved().val_dataloader.sampler.type == 'DefaultSampler'


def test_training_batches_have_no_singleton_last_batch(toy_voc):
    """The runner's train loader (a step of k * batch + 1 images would end on a batch of one
    sample, which BatchNorm cannot train on); a config's own batch sampler or drop_last stays."""
    from mmengine.runner import Runner
    cfg = resolved(**{'train_dataloader.num_workers': 0})
    assert cfg.train_dataloader.batch_sampler == dict(type='NoSingletonBatchSampler')
    assert 'batch_sampler' not in cfg.val_dataloader
    cfg.train_dataloader.dataset.data_root = toy_voc

    def batch_sizes(batch):
        loader_cfg = cfg.train_dataloader.to_dict()
        loader_cfg['batch_size'] = batch
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        sizes = [len(b) for b in loader.batch_sampler]
        assert len(loader) == len(sizes) and sum(sizes) == len(loader.dataset)
        return sizes, len(loader.dataset)

    size = batch_sizes(2)[1]
    assert size >= 4
    # size - 1 per batch leaves exactly one image over: it joins the batch before
    assert batch_sizes(size - 1)[0] == [size]
    assert batch_sizes(size // 2)[0][-1] >= 2
    own = resolved(**{'train_dataloader.drop_last': True})
    assert 'batch_sampler' not in own.train_dataloader


@pytest.mark.parametrize('config', sorted(glob.glob('configs/mib/*_15-1_step0.py')))
def test_mib_15_1_distils_with_weight_100(config):
    """MiB's authors' 15-1 setting (kd 100); 15-5 keeps the paper's 10."""
    cfg = load_step_config(config, work_dir='work_dirs/x', cfg_options={'incremental.step': 1})
    assert cfg.model.distill_loss.loss_weight == 100.0
    other = config.replace('_15-1_', '_15-5_')
    if osp.isfile(other):
        cfg = load_step_config(other, work_dir='work_dirs/x', cfg_options={'incremental.step': 1})
        assert cfg.model.distill_loss.loss_weight == 10.0
