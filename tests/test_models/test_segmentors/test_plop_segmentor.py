"""PLOP in the segmentor: POD on the backbone outputs and the logits, entropy pseudo-labels."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmincseg.models.losses import LocalPODLoss
from mmincseg.models.utils.pseudo_label import (classif_adaptive_factor, entropy_pseudo_labels,
                                                scaled_entropy)

POD = dict(type='LocalPODLoss', loss_weight=0.01, logits_weight=0.0005)
PSEUDO = dict(threshold=0.001)


def _model_cfg(name):
    if name == 'bisenetv1':
        cfg = Config.fromfile('configs/_base_/models/toy_r18.py').model
        cfg.backbone.backbone_cfg.pop('init_cfg', None)
    elif name == 'deeplabv3':  # the VOC DeepLabV3 with a ResNetV1c-18 (4 stages, output stride 16)
        cfg = Config.fromfile('configs/_base_/models/deeplabv3_r101.py').model
        cfg.pretrained = None
        cfg.backbone.depth = 18
        cfg.decode_head.update(in_channels=512, channels=32)
        cfg.auxiliary_head.update(in_channels=256, channels=16)
    else:
        cfg = Config.fromfile('configs/_base_/models/toy_segformer_b0.py').model
    return cfg


def _build(name, classes_per_step, **kwargs):
    cfg = _model_cfg(name)
    cfg.update(type='IncrementalEncoderDecoder', classes_per_step=classes_per_step, **kwargs)
    aux = cfg.get('auxiliary_head') or []
    for head in [cfg.decode_head, *(aux if isinstance(aux, list) else [aux])]:
        head.loss_decode.avg_non_ignore = True  # as the resolver sets every CE
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _plop_student(name, pod_features=None):
    student = _build(name, [16, 1], pod_loss=POD, pseudo_label=PSEUDO, pod_features=pod_features)
    student.set_teacher(_build(name, [16]))
    student.set_pseudo_label_thresholds(torch.full((17, ), 0.004))
    return student


def _batch(n=2, size=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, 3, size, size, generator=gen)
    samples = []
    for _ in range(n):
        label = torch.zeros(1, size, size, dtype=torch.long)
        label[:, :size // 2, :size // 2] = 16
        label[:, -4:] = 255
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return inputs, samples


@pytest.mark.parametrize('name,levels', [('bisenetv1', 3), ('deeplabv3', 4), ('segformer', 4)])
def test_loss_has_pod_on_every_backbone_output_and_the_logits(name, levels):
    student = _plop_student(name).eval()  # no dropout: the terms can be recomputed
    inputs, samples = _batch()
    losses = student.loss(inputs, samples)
    assert {'loss_pod', 'loss_pod_logits'} <= set(losses)
    assert all(torch.isfinite(losses[k]) and losses[k] > 0 for k in ('loss_pod', 'loss_pod_logits'))
    with torch.no_grad():
        feats = student.extract_feat(inputs)
        old_logits, _, old_feats = student.teacher_forward(inputs, backbone=True)
        seg_logits = student.decode_head.forward(feats)
    assert len(feats) == len(old_feats) == levels
    expected = LocalPODLoss(0.01, 0.0005)(list(feats), old_feats, seg_logits, old_logits,
                                          num_classes=17, num_new_classes=1)
    torch.testing.assert_close(losses['loss_pod'], expected['loss_pod'])
    torch.testing.assert_close(losses['loss_pod_logits'], expected['loss_pod_logits'])
    losses['loss_pod'].backward()  # reaches the student
    assert any(p.grad is not None for p in student.backbone.parameters())


def test_pod_features_picks_backbone_outputs():
    student = _plop_student('bisenetv1', pod_features=[0])
    inputs, samples = _batch()
    feats = student.extract_feat(inputs)
    assert student.pod_feature_maps(feats) == [feats[0]]
    student.pod_features = [5]
    with pytest.raises(ValueError, match=r'model.pod_features=\[5\].*returns 3 maps'):
        student.loss(inputs, samples)


def test_heads_learn_from_pseudo_labels_scaled_by_the_adaptive_factor():
    student = _plop_student('bisenetv1').eval()
    inputs, samples = _batch()
    with torch.no_grad():
        old_logits = student.teacher_forward(inputs)[0]
        seg_logits = student.decode_head.forward(student.extract_feat(inputs))
    old_up = resize(old_logits, (64, 64), mode='bilinear', align_corners=False)
    # thresholds at the median uncertainty of this batch: about half the pixels are trusted
    median = scaled_entropy(torch.softmax(old_up, 1), 17).median()
    student.set_pseudo_label_thresholds(torch.full((17, ), median.item()))
    losses = student.loss(inputs, samples)
    labels = torch.stack([s.gt_sem_seg.data for s in samples]).squeeze(1)
    assert (labels[:, 40:50, 40:50] == 0).all()  # the samples keep their labels
    pseudo, trusted, background = entropy_pseudo_labels(labels, old_up,
                                                        student.pseudo_label_thresholds, 17)
    assert 0 < trusted.sum() < background.sum()
    factor = classif_adaptive_factor(trusted, background)
    ce = F.cross_entropy(resize(seg_logits, (64, 64), mode='bilinear', align_corners=False),
                         pseudo, ignore_index=255, reduction='none')
    valid = pseudo != 255
    expected = (ce * factor[:, None, None]).sum() / valid.sum()
    torch.testing.assert_close(losses['decode.loss_ce'], expected, rtol=1e-4, atol=1e-6)


def test_missing_thresholds_and_bad_options_are_clear_errors():
    student = _plop_student('bisenetv1')
    student.set_pseudo_label_thresholds(None)
    with pytest.raises(ValueError, match='PseudoLabelThresholdHook'):
        student.loss(*_batch())
    with pytest.raises(ValueError, match=r"unknown keys \['thresh'\]"):
        _build('bisenetv1', [16, 1], pseudo_label=dict(thresh=0.1))
    with pytest.raises(ValueError, match="median='mean'"):
        _build('bisenetv1', [16, 1], pseudo_label=dict(median='mean'))


def test_padding_is_left_out_of_pod():
    student = _plop_student('bisenetv1').eval()
    inputs, samples = _batch(n=1, size=64)
    padded = torch.zeros(1, 3, 96, 64)
    padded[:, :, :64] = inputs
    samples[0].set_metainfo(dict(padding_size=[0, 0, 0, 32]))  # left, right, top, bottom
    with torch.no_grad():
        feats = student.extract_feat(padded)
        old_logits, _, old_feats = student.teacher_forward(padded, backbone=True)
        seg_logits = student.decode_head.forward(feats)
        terms = student.distillation_losses(seg_logits, old_logits, samples, (96, 64),
                                            pod_feats=list(feats), old_pod_feats=old_feats)
    # each level is cropped to the image's cells (its top 2/3) before pooling
    crop = [f[:, :, :f.shape[2] * 2 // 3] for f in feats]
    old_crop = [f[:, :, :f.shape[2] * 2 // 3] for f in old_feats]
    expected = LocalPODLoss(0.01, 0.0005)(crop, old_crop, seg_logits[:, :, :8],
                                          old_logits[:, :, :8], num_classes=17,
                                          num_new_classes=1)
    torch.testing.assert_close(terms['loss_pod'], expected['loss_pod'])
    torch.testing.assert_close(terms['loss_pod_logits'], expected['loss_pod_logits'])


def test_no_plop_arguments_no_plop_terms():
    student = _build('bisenetv1', [16, 1])
    assert student.pod_loss is None and student.pseudo_label is None
    student.set_teacher(_build('bisenetv1', [16]))
    losses = student.loss(*_batch())
    assert not any('pod' in k for k in losses)
