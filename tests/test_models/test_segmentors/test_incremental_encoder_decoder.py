import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from mmincseg.models.segmentors.incremental_encoder_decoder import fuse_teacher_bn

CONFIG = 'configs/mib/bisenet_r18_toyvoc_15-5_step1.py'


def _bisenet(classes_per_step):
    cfg = Config.fromfile(CONFIG).model
    cfg.update(type='IncrementalEncoderDecoder', classes_per_step=classes_per_step)
    cfg.backbone.backbone_cfg.pop('init_cfg', None)
    model = MODELS.build(cfg)
    model.init_weights()
    # non-trivial BN statistics, as after training
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model


def _bn_count(model):
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_set_teacher_folds_bn_without_changing_the_logits():
    student = _bisenet([16, 5])
    teacher = _bisenet([16]).eval()
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = teacher.decode_head.forward(teacher.extract_feat(x))
    student.set_teacher(teacher)
    fused = student.teacher
    assert fused is not teacher and _bn_count(fused) == 0 < _bn_count(teacher)
    # on CPU the teacher runs in NHWC by default
    convs = [m for m in fused.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not fused.training and not any(p.requires_grad for p in fused.parameters())
    logits, _ = student.teacher_forward(x)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert not any('teacher' in k for k in student.state_dict())


def test_set_teacher_without_fusing_or_nhwc_keeps_the_teacher():
    student = _bisenet([16, 5])
    student.fuse_teacher_bn = False
    student.teacher_channels_last = False
    teacher = _bisenet([16])
    student.set_teacher(teacher)
    assert student.teacher is teacher and _bn_count(teacher) > 0
    convs = [m for m in teacher.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert not any(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)


class _BNNotAfterItsConv(nn.Module):
    """A conv and a BN registered one after the other, the BN applied to the input instead."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.bn.running_mean.fill_(2.0)
        self.decode_head = nn.Identity()

    def extract_feat(self, x):
        return self.conv(self.bn(x))


def test_fusion_that_changes_the_output_is_refused():
    teacher = _BNNotAfterItsConv().eval()
    assert fuse_teacher_bn(teacher) is teacher and _bn_count(teacher) == 1
    teacher.conv = nn.Conv2d(3, 4, 3, padding=1)  # BN of other channels: fusion cannot even run
    assert fuse_teacher_bn(teacher) is teacher


def test_old_class_veto_relabels_new_pixels_the_teacher_calls_old(seg_samples):
    student = _bisenet([16, 1])
    # teacher logits at 1/2 resolution: old class 3 wins on the left half, background elsewhere
    old_logits = torch.zeros(1, 16, 2, 2)
    old_logits[0, 0] = 2.5
    old_logits[0, 3, :, 0] = 5.0  # bilinear x2: 5, 3.75, 1.25, 0 across the columns
    labels = torch.tensor([[16, 16, 16, 16], [16, 16, 0, 255], [16, 7, 16, 16], [16, 16, 255, 0]])
    samples = seg_samples(labels[None])
    student.veto_old_classes(samples, old_logits)
    expected = labels.clone()
    expected[:, :2][expected[:, :2] == 16] = 0  # new-class pixels under old class 3
    torch.testing.assert_close(samples[0].gt_sem_seg.data[0], expected)

    # in loss(): applied only with old_class_veto, before the head losses read the labels
    class _Teacher(nn.Module):
        def extract_feat(self, x):
            return x

    student.set_teacher(None)
    student._teacher.append(_Teacher())
    student.teacher_forward = lambda x: (old_logits.expand(x.size(0), -1, -1, -1), None)
    x = torch.randn(2, 3, 64, 64)  # the head losses resize the logits to the 4x4 labels
    samples = seg_samples(torch.stack([labels, labels]))
    student.loss(x, samples)
    for sample in samples:  # veto off: untouched
        torch.testing.assert_close(sample.gt_sem_seg.data[0], labels)
    student.old_class_veto = True
    student.loss(x, samples)
    for sample in samples:
        torch.testing.assert_close(sample.gt_sem_seg.data[0], expected)


def test_padding_free_mask_keeps_the_cells_whose_centre_is_in_the_image():
    from mmseg.structures import SegDataSample

    from mmincseg.models.segmentors.incremental_encoder_decoder import padding_free_mask
    full = SegDataSample(metainfo=dict(img_shape=(64, 64), padding_size=[0, 0, 0, 0]))
    # 44 x 52 image padded to 64 x 64 (left, right, top, bottom), as mmseg's stack_batch records
    small = SegDataSample(metainfo=dict(img_shape=(44, 52), padding_size=[0, 12, 0, 20]))
    assert padding_free_mask([full, full], (64, 64), (8, 8)) is None
    mask = padding_free_mask([full, small], (64, 64), (8, 8))
    assert mask.shape == (2, 1, 8, 8) and mask.dtype == torch.bool and mask[0].all()
    # cell i of 8 covers rows [8i, 8i + 8), centre 8i + 4: valid for 8i + 4 < 44 (i <= 4) and
    # for columns 8j + 4 < 52 (j <= 5); the half-image cells 5 (rows) and 6 (columns) are out
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:5, :6] = True
    torch.testing.assert_close(mask[1, 0], expected)
    # at the batch resolution: exactly the image pixels; img_shape alone gives the same
    for samples in ([full, small], [SegDataSample(metainfo=dict(img_shape=(64, 64))),
                                    SegDataSample(metainfo=dict(img_shape=(44, 52)))]):
        mask = padding_free_mask(samples, (64, 64), (64, 64))
        assert mask[0].all() and mask[1, 0, :44, :52].all() and mask[1].sum() == 44 * 52
    # other padding: top/left (a preprocessor that centres) and a size with rounding
    centred = SegDataSample(metainfo=dict(padding_size=[2, 3, 4, 5]))
    mask = padding_free_mask([centred], (20, 30), (20, 30))[0, 0]
    assert mask[4:15, 2:27].all() and mask.sum() == 11 * 25
    assert padding_free_mask([SegDataSample()], (64, 64), (8, 8)) is None  # no metainfo


def _kd_student(distill_at='logits'):
    student = _bisenet([16, 5])
    student.distill_at = distill_at
    student.distill_loss = MODELS.build(dict(type='UnbiasedKDLoss', loss_weight=10.0))
    student.feature_distill_loss = MODELS.build(dict(type='FeatureDistillationLoss',
                                                     loss_weight=100.0))
    student.set_teacher(_bisenet([16]))
    return student


def _padded_batch(student):
    """Two samples, 64 x 64 and 44 x 52, through the model's SegDataPreProcessor (pads to 64)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for h, w in ((64, 64), (44, 52)):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 21, (1, h, w), generator=gen, dtype=torch.long))
        samples.append(sample)
    data = student.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
    assert data['inputs'].shape[2:] == (64, 64)
    assert list(data['data_samples'][1].padding_size) == [0, 12, 0, 20]
    return data['inputs'], data['data_samples']


def _valid_mean_by_hand(loss_fn, student_out, teacher_out, crops):
    """``loss_fn`` on each sample's valid crop, averaged with the crops' cell counts."""
    total, cells = 0.0, 0
    for i, (h, w) in enumerate(crops):
        total = total + loss_fn(student_out[i:i + 1, :, :h, :w],
                                teacher_out[i:i + 1, :, :h, :w]) * (h * w)
        cells += h * w
    return total / cells


@pytest.mark.parametrize('distill_at', ['logits', 'label'])
def test_loss_distils_over_the_image_cells_only(distill_at):
    from mmincseg.models.losses import feature_distillation, unbiased_kd
    student = _kd_student(distill_at).eval()  # no dropout: the outputs can be recomputed
    inputs, samples = _padded_batch(student)
    losses = student.loss(inputs, samples)
    with torch.no_grad():
        feats = student.extract_feat(inputs)
        seg_logits = student.decode_head.forward(feats)
        new_feats = student.decode_head._transform_inputs(feats)
        old_logits, old_feats = student.teacher_forward(inputs)
    assert seg_logits.shape[2:] == (8, 8) and new_feats.shape[2:] == (8, 8)
    crops = [(8, 8), (5, 6)]  # 44 x 52 at 1/8: cells with their centre in the image
    if distill_at == 'label':
        seg_logits = resize(seg_logits, (64, 64), mode='bilinear', align_corners=False)
        old_logits = resize(old_logits, (64, 64), mode='bilinear', align_corners=False)
        crops = [(64, 64), (44, 52)]
    expected_kd = 10.0 * _valid_mean_by_hand(unbiased_kd, seg_logits, old_logits, crops)
    torch.testing.assert_close(losses['loss_kd'], expected_kd, rtol=1e-4, atol=1e-5)
    # padding counted: a different value
    assert abs(losses['loss_kd'].item() - 10.0 * unbiased_kd(seg_logits, old_logits).item()) \
        > 1e-4
    expected_feat = 100.0 * _valid_mean_by_hand(feature_distillation, new_feats, old_feats,
                                                [(8, 8), (5, 6)])
    torch.testing.assert_close(losses['loss_feat_kd'], expected_feat, rtol=1e-4, atol=1e-5)


def test_distill_at_label_without_padding_is_kd_on_upsampled_logits():
    from mmincseg.models.losses import unbiased_kd
    student = _kd_student('label')
    seg_logits = torch.randn(2, 21, 8, 8, requires_grad=True)
    old_logits = torch.randn(2, 16, 4, 4)
    samples = [s for s in _padded_batch(student)[1]]
    for s in samples:  # unpadded 64 x 64 batch
        s.set_metainfo(dict(img_shape=(64, 64), padding_size=[0, 0, 0, 0]))
    got = student.distillation_losses(seg_logits, old_logits, samples, (64, 64))['loss_kd']
    expected = 10.0 * unbiased_kd(
        resize(seg_logits, (64, 64), mode='bilinear', align_corners=False),
        resize(old_logits, (64, 64), mode='bilinear', align_corners=False))
    torch.testing.assert_close(got, expected)
    student.distill_at = 'logits'  # today's: the teacher resized to the student's 8 x 8
    got = student.distillation_losses(seg_logits, old_logits, samples, (64, 64))['loss_kd']
    torch.testing.assert_close(got, 10.0 * unbiased_kd(
        seg_logits, resize(old_logits, (8, 8), mode='bilinear', align_corners=False)))


def test_distill_at_is_checked():
    cfg = Config.fromfile(CONFIG).model
    cfg.update(type='IncrementalEncoderDecoder', classes_per_step=[16, 5], distill_at='pixels')
    cfg.backbone.backbone_cfg.pop('init_cfg', None)
    with pytest.raises(ValueError, match="model.distill_at='pixels'"):
        MODELS.build(cfg)


def test_set_regularizer_adds_loss_reg_and_stays_out_of_the_state_dict(seg_samples):
    from mmincseg.models.losses import ParameterPenaltyLoss
    model = _bisenet([16])
    name = 'decode_head.conv_seg.classifiers.0.bias'
    bias = dict(model.named_parameters())[name]
    penalty = ParameterPenaltyLoss({name: torch.ones_like(bias)}, {name: bias.detach() - 1},
                                   loss_weight=3.0)
    keys = set(model.state_dict())
    samples = seg_samples(torch.zeros(2, 32, 32, dtype=torch.long))
    logits = torch.randn(2, 16, 4, 4)
    aux = [torch.randn(2, 16, 4, 4) for _ in model.heads()[1:]]
    assert 'loss_reg' not in model.losses_from_outputs(logits, aux, samples, (32, 32))
    model.set_regularizer(penalty)
    assert model.regularizer is penalty and set(model.state_dict()) == keys
    losses = model.losses_from_outputs(logits, aux, samples, (32, 32))
    assert losses['loss_reg'].item() == pytest.approx(3.0 * bias.numel())  # (1)^2 per value
    model.set_regularizer(None)
    assert model.regularizer is None
