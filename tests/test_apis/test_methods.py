"""Method recipes: the resolver applies them as data (losses, segmentor arguments, hooks)."""
import pytest

from mmincseg.apis import METHODS, Method, get_method, plan_step
from mmincseg.apis import methods as methods_module
from mmincseg.apis.methods import apply_model_arguments

FT = 'configs/ft/bisenet_r18_toyvoc_15-5_step0.py'
RUN = 'work_dirs/x'


def test_every_recipe_is_named_by_its_key():
    assert all(m.name == name for name, m in METHODS.items())
    assert {'ft', 'lwf', 'ilt', 'mib', 'joint'} <= set(METHODS)


def test_settings_take_the_blocks_overrides_and_leave_unset_fields_out():
    mib = METHODS['mib']
    assert mib.settings() == dict(unbiased=True, kd='UnbiasedKDLoss', kd_weight=10.0,
                                  kd_alpha=1.0, init_novel=True)
    got = mib.settings(dict(kd_weight=100.0, init_novel=False, kd_alpha=None))
    assert got['kd_weight'] == 100.0 and got['init_novel'] is False and got['kd_alpha'] == 1.0
    assert METHODS['ft'].settings() == dict(unbiased=False, init_novel=False)
    assert Method.distill_loss(METHODS['ft'].settings()) is None
    assert Method.distill_loss(got) == dict(type='UnbiasedKDLoss', loss_weight=100.0, alpha=1.0)
    assert Method.feature_distill_loss(METHODS['ilt'].settings()) == dict(
        type='FeatureDistillationLoss', loss_weight=100.0)


def test_unknown_method_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown incremental.method 'sgd'.*'mib'"):
        get_method('sgd', 'my.py')


def test_config_values_win_over_the_recipes_key_by_key():
    model = dict(pod=dict(loss_weight=0.5), flag=False)
    apply_model_arguments(model, dict(pod=dict(type='P', loss_weight=0.01, scales=[1, 2]),
                                      flag=True, other=dict(a=1)))
    assert model == dict(pod=dict(type='P', loss_weight=0.5, scales=[1, 2]), flag=False,
                         other=dict(a=1))


def test_a_new_recipe_reaches_the_resolved_config(monkeypatch):
    """A method is one entry: its segmentor arguments at steps > 0 and its hooks at every step
    (with the previous checkpoint) come out of the resolver without a branch for it."""
    recipe = Method('probe', kd='LwFKDLoss', kd_weight=3.0,
                    model=dict(fuse_teacher_bn=False),
                    hooks=(dict(type='ProbeHook', strength=2),))
    monkeypatch.setitem(METHODS, 'probe', recipe)
    assert methods_module.METHODS['probe'] is recipe
    opts = {'incremental.method': 'probe'}
    for step in (0, 1):
        plan, cfg = plan_step(FT, RUN, cfg_options=opts, step=step)
        probe = [h for h in cfg.custom_hooks if h['type'] == 'ProbeHook']
        assert probe == [dict(type='ProbeHook', strength=2,
                              prev_checkpoint=plan.prev_checkpoint)]
        # steps > 0 only; at step 0 the model keeps its default (the key is unset)
        assert cfg.model.get('fuse_teacher_bn', 'unset') == ('unset' if step == 0 else False)
        assert plan.method_settings['hooks'] == ['ProbeHook']
    assert plan.prev_checkpoint.endswith('step0')
    assert cfg.model.distill_loss == dict(type='LwFKDLoss', loss_weight=3.0)


@pytest.mark.parametrize('method,weight', [('ewc', 500.0), ('pi', 500.0), ('rw', 100.0)])
def test_importance_methods_run_their_hook_at_every_step(method, weight):
    config = f'configs/{method}/bisenet_r101_voc_15-5_step0.py'  # MiB's weights (its lr 0.001)
    for step in (0, 1):
        plan, cfg = plan_step(config, RUN, step=step)
        hooks = [h for h in cfg.custom_hooks if h['type'] == 'ParameterImportanceHook']
        assert hooks == [dict(type='ParameterImportanceHook', method=method, loss_weight=weight,
                              prev_checkpoint=plan.prev_checkpoint)]
        assert cfg.model.distill_loss is None
        assert cfg.model.decode_head.loss_decode.type == 'CrossEntropyLoss'
    assert plan.prev_checkpoint.endswith('step0')


def test_lwf_mc_uses_the_sigmoid_loss_at_every_step_and_distils_from_step_1():
    config = 'configs/lwf_mc/bisenet_r18_toyvoc_15-1_step0.py'
    for step in (0, 2):
        _, cfg = plan_step(config, RUN, step=step)
        heads = [cfg.model.decode_head, *cfg.model.auxiliary_head]
        assert all(h.loss_decode == dict(type='OneHotBCELoss', loss_weight=1.0) for h in heads)
        assert cfg.model.distill_loss == (
            dict(type='LwFMCKDLoss', loss_weight=10.0) if step else None)


def test_wilson_step0_is_trained_with_the_sigmoid_loss_as_lwf_mc_step0():
    """WILSON's old channels learn the old model's sigmoids, so its step 0 trains with MiB's
    sigmoid loss (WILSON's run.sh: ``FT_bce``): the resolved step 0 is LwF-MC's but for the
    block's names, so one trained step 0 serves both (``--step0``)."""
    def flat(value, prefix=''):
        if isinstance(value, dict):
            return {k: v for key, item in value.items()
                    for k, v in flat(item, f'{prefix}.{key}').items()}
        if isinstance(value, (list, tuple)):
            return {k: v for i, item in enumerate(value)
                    for k, v in flat(item, f'{prefix}[{i}]').items()}
        return {prefix: value}

    _, wilson = plan_step('configs/wilson/bisenet_r18_toyvoc_15-5_step0.py', RUN, step=0)
    _, lwf_mc = plan_step('configs/lwf_mc/bisenet_r18_toyvoc_15-5_step0.py', RUN, step=0)
    heads = [wilson.model.decode_head, *wilson.model.auxiliary_head]
    assert all(h.loss_decode == dict(type='OneHotBCELoss', loss_weight=1.0) for h in heads)
    a, b = flat(wilson.to_dict()), flat(lwf_mc.to_dict())
    differ = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
    assert differ == {'.incremental.method', '.incremental.labels',  # and the hook's copy of it
                      '.custom_hooks[0].info.method', '.custom_hooks[0].info.labels'}
    # steps > 0 learn from image labels with WILSON's own loss, not the heads'
    _, step1 = plan_step('configs/wilson/bisenet_r18_toyvoc_15-5_step0.py', RUN, step=1)
    assert step1.model.weak_localizer.type == 'WilsonLocalizer'


@pytest.mark.slow
def test_lwf_mc_trains_a_toy_15_1_step_with_sigmoid_losses(toy_voc, tmp_path):
    import glob
    import os.path as osp
    import re

    from mmincseg.apis import train_step
    from loader_options import NO_WORKERS
    config = 'configs/lwf_mc/bisenet_r18_toyvoc_15-1_step0.py'
    fast = {'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 8,
            'default_hooks.logger.interval': 1, **NO_WORKERS}
    for step in (0, 1):
        train_step(config, work_dir=str(tmp_path), data_root=toy_voc,
                   cfg_options={**fast, 'incremental.step': step})
        text = ''.join(open(p).read() for p in glob.glob(
            osp.join(str(tmp_path), f'step{step}', '*', '*.log')))
        assert re.search(r'decode\.loss_bce: [0-9.]+', text) and 'loss_ce' not in text
        assert ('loss_kd: ' in text) == (step == 1)


def test_reg_weight_of_the_block_reaches_the_importance_hook():
    """``incremental.reg_weight`` sets the penalty; the toy configs keep MiB's weight x lr."""
    def hook_weight(config, **options):
        _, cfg = plan_step(config, RUN, cfg_options=options, step=1)
        return [h for h in cfg.custom_hooks
                if h['type'] == 'ParameterImportanceHook'][0]['loss_weight']

    for method, toy in (('ewc', 100.0), ('pi', 100.0), ('rw', 20.0)):
        assert hook_weight(f'configs/{method}/bisenet_r101_voc_15-5_step0.py',
                           **{'incremental.reg_weight': 7.0}) == 7.0
        for split in ('15-5', '15-1'):
            assert hook_weight(f'configs/{method}/bisenet_r18_toyvoc_{split}_step0.py') == toy
    _, cfg = plan_step(FT, RUN, step=1)  # no penalty, no hook
    assert not [h for h in cfg.custom_hooks if h['type'] == 'ParameterImportanceHook']


def test_every_recipe_names_registered_components():
    """A recipe's hooks, losses and segmentor arguments name registered types (a typo or a lost
    registration would otherwise surface only when a step is built)."""
    from mmseg.registry import HOOKS, MODELS
    import mmincseg  # noqa: F401  (registers everything)
    for name, recipe in METHODS.items():
        for hook in recipe.hooks:
            assert HOOKS.get(hook['type']) is not None, (name, hook['type'])
        for loss in (recipe.kd, recipe.seg_loss):
            if loss:
                assert MODELS.get(loss) is not None, (name, loss)


# Small versions of the toy DeepLabV3 and SegFormer-B0 configs (same heads, a ResNetV1c-18 and a
# thin MiT, no pretrained file: only the method's wiring is checked here).
SMALL_MODELS = {
    'deeplabv3_r101': {'model.pretrained': None, 'model.backbone.depth': 18,
                       'model.decode_head.in_channels': 512, 'model.decode_head.channels': 16,
                       'model.auxiliary_head.in_channels': 256,
                       'model.auxiliary_head.channels': 16},
    'segformer_b0': {'model.backbone.embed_dims': 16, 'model.backbone.num_layers': [1, 1, 1, 1],
                     'model.backbone.init_cfg': None,  # a thin MiT: not the toy MiT-B0's layout
                     'model.decode_head.in_channels': [16, 32, 80, 128],
                     'model.decode_head.channels': 32},
}
# what each method adds to the step-1 losses
METHOD_LOSSES = {'lwf_mc': {'decode.loss_bce', 'loss_kd'}, 'ewc': {'loss_reg'},
                 'pi': {'loss_reg'}, 'rw': {'loss_reg'}, 'plop': {'loss_pod', 'loss_pod_logits'}}


def _labelled_batch(label: int, n: int = 2, size: int = 64):
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    inputs = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(label))
    samples = []
    for _ in range(n):
        mask = torch.zeros(1, size, size, dtype=torch.long)
        mask[:, :size // 2, :size // 2] = label
        mask[:, -4:] = 255
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=mask)
        samples.append(sample)
    return inputs, samples


@pytest.mark.parametrize('model', sorted(SMALL_MODELS))
@pytest.mark.parametrize('method', sorted(METHOD_LOSSES))
def test_the_new_methods_train_a_step_of_deeplabv3_and_segformer(model, method, tmp_path):
    """``incremental.method`` in (PLOP, LwF-MC, EWC, PI, RW) on a DeepLabV3 and a SegFormer-B0:
    step 0 trains (accumulating EWC/PI/RW importances, saved as a checkpoint does), step 1's
    segmentor gets the teacher and the method's losses, which train the student."""
    import torch
    from mmseg.registry import MODELS

    from mmincseg.engine.hooks.parameter_importance_hook import (
        IMPORTANCE_KEY, ParameterImportanceHook, previous_importance, trainable_parameters)
    config = f'configs/mib/{model}_toyvoc_15-5_step0.py'
    options = dict(SMALL_MODELS[model], **{'incremental.method': method})
    _, cfg0 = plan_step(config, RUN, cfg_options=options, step=0)
    _, cfg1 = plan_step(config, RUN, cfg_options=options, step=1)
    torch.manual_seed(0)
    teacher, student = MODELS.build(cfg0.model), MODELS.build(cfg1.model)
    hooks = {step: [h for h in cfg.custom_hooks if h['type'] == 'ParameterImportanceHook']
             for step, cfg in ((0, cfg0), (1, cfg1))}
    assert len(hooks[0]) == len(hooks[1]) == (method in ('ewc', 'pi', 'rw'))

    # step 0: two SGD steps on base-class masks, the importances kept as in a checkpoint
    optimizer = torch.optim.SGD(teacher.parameters(), lr=0.01)
    hook0 = None
    if hooks[0]:
        hook0 = ParameterImportanceHook(method, loss_weight=hooks[0][0]['loss_weight'])
        hook0.attach(teacher, optimizer)
    teacher.train()
    for _ in range(2):
        optimizer.zero_grad()
        sum(v for k, v in teacher.loss(*_labelled_batch(3)).items() if 'loss' in k).backward()
        optimizer.step()
    checkpoint = str(tmp_path / 'epoch_1.pth')
    state = {'state_dict': teacher.state_dict(), 'meta': {}}
    if hook0 is not None:
        state[IMPORTANCE_KEY] = hook0.state()
        hook0._handle.remove()
    torch.save(state, checkpoint)

    # step 1: the new class 16 with the method's losses
    loaded = student.load_state_dict(teacher.state_dict(), strict=False)
    assert not loaded.unexpected_keys and loaded.missing_keys  # only the new classifier rows
    assert all('classifiers.1.' in k for k in loaded.missing_keys), loaded.missing_keys
    student.set_teacher(teacher.eval())
    # (MiB's step lr, for which its EWC/PI/RW weights are stable)
    optimizer = torch.optim.SGD([p for p in student.parameters() if p.requires_grad], lr=0.001)
    if hooks[1]:
        hook1 = ParameterImportanceHook(method, loss_weight=hooks[1][0]['loss_weight'],
                                        prev_checkpoint=checkpoint)
        _, previous, reference = previous_importance(checkpoint, method,
                                                     trainable_parameters(student))
        hook1.attach(student, optimizer, previous, reference)
    if method == 'plop':  # what PseudoLabelThresholdHook sets before the step
        student.set_pseudo_label_thresholds(torch.full((17, ), 0.004))
    student.train()
    for _ in range(2):  # the second step starts away from the reference weights
        optimizer.zero_grad()
        losses = student.loss(*_labelled_batch(16))
        assert METHOD_LOSSES[method] <= set(losses), sorted(losses)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        total.backward()
        optimizer.step()
    assert all(torch.isfinite(losses[k]) and losses[k] > 0 for k in METHOD_LOSSES[method])
    assert student.decode_head.conv_seg.classifiers[1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize('model', sorted(SMALL_MODELS))
def test_wilson_trains_a_weak_step_of_deeplabv3_and_segformer(model):
    """``method='wilson', labels='image'`` on a DeepLabV3 (one input map: ASPP's) and a
    SegFormer-B0 (four: the localizer reads the deepest): every WILSON loss is there and
    finite after the warm-up, and trains the new classifier and the localizer."""
    import torch
    from mmengine.logging import MessageHub
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    config = f'configs/mib/{model}_toyvoc_15-5_step0.py'
    options = dict(SMALL_MODELS[model], **{'incremental.method': 'wilson',
                                           'incremental.labels': 'image'})
    _, cfg0 = plan_step(config, RUN, cfg_options=options, step=0)
    _, cfg1 = plan_step(config, RUN, cfg_options=options, step=1)
    torch.manual_seed(0)
    teacher, student = MODELS.build(cfg0.model), MODELS.build(cfg1.model)
    assert student.localizer is not None and teacher.localizer is None
    student.load_state_dict(teacher.state_dict(), strict=False)
    student.set_teacher(teacher.eval())
    student.train()
    inputs = torch.randn(2, 3, 64, 64)
    samples = [SegDataSample(metainfo=dict(img_labels=labels, img_shape=(64, 64)))
               for labels in ([16, 18], [20])]
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', student.localizer.warmup_epochs)
    try:
        losses = student.loss(inputs, samples)
    finally:
        hub.update_info('epoch', 0)
    assert {'loss_loc_cls', 'loss_loc_prior', 'loss_loc_self', 'decode.loss_wilson_seg',
            'loss_feat_kd'} <= set(losses), sorted(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert student.decode_head.conv_seg.classifiers[1].weight.grad.abs().sum() > 0
    assert student.localizer.classifier.weight.grad.abs().sum() > 0
