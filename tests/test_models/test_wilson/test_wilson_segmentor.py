"""WILSON through the segmentor: the step-1 model of the shipped toy config, a step-0 teacher."""
import pytest
import torch
from mmengine.logging import MessageHub
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmincseg.apis import load_step_config
from mmincseg.tasks import get_split

CONFIG = 'configs/wilson/bisenet_r18_toyvoc_15-5_step0.py'


def _build(model_cfg):
    cfg = model_cfg.to_dict() if hasattr(model_cfg, 'to_dict') else dict(model_cfg)
    cfg['backbone']['backbone_cfg']['init_cfg'] = None
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('wilson'))
    step1 = load_step_config(CONFIG, work_dir=work, cfg_options={'incremental.step': 1})
    hook = [h for h in step1.custom_hooks if h['type'] == 'IncrementalStepHook'][0]
    torch.manual_seed(0)
    teacher = _build(hook['teacher_model'])
    student = _build(step1.model)
    student.load_state_dict(teacher.state_dict(), strict=False)
    student.set_teacher(teacher)
    return student, teacher


def _samples(labels):
    return [SegDataSample(metainfo=dict(img_labels=lab, img_shape=(64, 64))) for lab in labels]


def _epoch(epoch):
    MessageHub.get_current_instance().update_info('epoch', epoch)


def test_warm_up_trains_the_localizer_only_then_every_head(models):
    student, _ = models
    student.train()
    inputs = torch.randn(2, 3, 64, 64)
    samples = _samples([[16, 3], [20]])  # 3 is no class of the step: ignored
    _epoch(0)
    losses = student.loss(inputs, samples)
    assert {'loss_loc_cls', 'loss_loc_prior', 'decode.loss_wilson_seg',
            'loss_feat_kd'} <= set(losses)
    assert any(k.startswith('aux') and k.endswith('loss_wilson_seg') for k in losses)
    assert all(losses[k].item() == 0 for k in losses if k.endswith('loss_wilson_seg'))
    assert 'loss_loc_self' not in losses  # the localizer's self-training starts after warm-up
    sum(losses.values()).backward()
    assert student.localizer.classifier.weight.grad.abs().sum() > 0
    assert student.decode_head.conv_seg.classifiers[1].weight.grad is None or \
        student.decode_head.conv_seg.classifiers[1].weight.grad.abs().sum() == 0
    student.zero_grad()
    _epoch(student.localizer.warmup_epochs)
    losses = student.loss(inputs, samples)
    assert losses['decode.loss_wilson_seg'].item() > 0
    assert torch.isfinite(losses['loss_loc_self'])  # on its PAMR-refined masks
    sum(losses.values()).backward()
    assert student.decode_head.conv_seg.classifiers[1].weight.grad.abs().sum() > 0
    _epoch(0)


def test_weak_targets_are_the_trained_targets_at_input_size(models):
    student, teacher = models
    student.eval()
    inputs = torch.randn(2, 3, 64, 48)
    samples = _samples([[16], [17, 20]])
    targets, weights = student.weak_targets(inputs, samples)
    assert targets.shape == (2, 21, 64, 48) and weights.shape == (2, )
    assert 0 <= targets.min() and targets.max() <= 1
    # what the heads learn from, at the teacher's resolution, resized
    feats = student.extract_feat(inputs)
    old_logits, _ = student.teacher_forward(inputs)
    small, small_weights = student.localizer.targets(
        student.decode_head._transform_inputs(feats), old_logits,
        student.localizer.image_labels(samples))
    assert torch.equal(weights, small_weights)
    assert torch.allclose(targets, torch.nn.functional.interpolate(
        small, size=(64, 48), mode='bilinear', align_corners=False))
    # new channels of classes an image is not labelled with get no mass
    assert targets[0, 17:].abs().sum() == 0 and targets[1, [16, 18, 19]].abs().sum() == 0
    with pytest.raises(ValueError, match='weak_localizer'):
        teacher.weak_targets(inputs, samples)
    student.train()
    with pytest.raises(ValueError, match='eval'):
        student.weak_targets(inputs, samples)
    student.eval()


def test_localizer_is_step_local_and_needs_image_labels(models):
    student, teacher = models
    assert not any(k.startswith('localizer.') for k in teacher.state_dict())
    assert any(k.startswith('localizer.') for k in student.state_dict())
    # a weak step's checkpoint loads strictly into a model without localizer
    state = dict(teacher.state_dict())
    state.update({k: v for k, v in student.state_dict().items() if k.startswith('localizer.')})
    teacher.load_state_dict(state, strict=True)
    with pytest.raises(KeyError, match="labels='image'"):
        student.loss(torch.randn(1, 3, 64, 64), [SegDataSample()])


def test_wilson_config_resolution(tmp_path):
    step1 = load_step_config(CONFIG, work_dir=str(tmp_path), cfg_options={'incremental.step': 1})
    assert step1.model.weak_localizer == dict(type='WilsonLocalizer', affinity=True,
                                              self_train_weight=1.0,
                                              new_classes=[16, 17, 18, 19, 20])
    types = [t['type'] for t in step1.train_dataloader.dataset.pipeline]
    assert 'LoadAnnotations' not in types and 'CheckSegSample' not in types
    assert 'img_labels' in step1.train_dataloader.dataset.pipeline[-1]['meta_keys']
    assert step1.optim_wrapper.paramwise_cfg.custom_keys['localizer'] == dict(lr_mult=10.0)
    # another class order: the new channels are the order's classes of the step, in its order
    ordered = load_step_config(CONFIG, work_dir=str(tmp_path), cfg_options={
        'incremental.step': 1, 'incremental.order': 'random:1'})
    expected = get_split('15-5', order='random:1').new_classes(1)
    assert ordered.model.weak_localizer.new_classes == expected != [16, 17, 18, 19, 20]
    step0 = load_step_config(CONFIG, work_dir=str(tmp_path))
    assert step0.model.get('weak_localizer') is None
    assert 'LoadAnnotations' in str(step0.train_dataloader.dataset.pipeline)
    assert not step0.optim_wrapper.get('paramwise_cfg')
    with pytest.raises(ValueError, match="labels='image'"):
        load_step_config(CONFIG, work_dir=str(tmp_path), cfg_options={'incremental.labels': 'gt'})
    with pytest.raises(ValueError, match='needs a method'):
        load_step_config('configs/mib/bisenet_r18_toyvoc_15-5_step0.py', work_dir=str(tmp_path),
                         cfg_options={'incremental.labels': 'image'})
