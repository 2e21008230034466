import torch
import torch.nn as nn
from mmengine.config import Config
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
