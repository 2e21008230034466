"""Each difference between SEAM's own training code and the simpler variant, one switch each,
checked on hand-made tensors (defaults: SEAM's behaviour)."""
import pytest
import torch
from mmseg.registry import MODELS
from torch import nn

from mmincseg.models.seam import (SEAMNet, adaptive_min_pool_loss, infer_cams,  # noqa: F401
                                  max_onehot, min_max_norm, pcm_cam_input)
from mmincseg.models.seam.pcm import PixelCorrelationModule

R18 = dict(type='ResNetV1c', depth=18, base_channels=8, stem_channels=8, out_indices=(1, 2, 3),
           strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True)


def _model(**kwargs):
    return MODELS.build(dict(dict(type='SEAMNet', backbone=R18, class_ids=[0, 16, 17, 18]),
                             **kwargs))


# (a) PCM input suppression ----------------------------------------------------------------
def test_pcm_input_suppression_zeroes_exactly_the_non_max_foreground_channels():
    # one image, background + 3 classes, 1 x 3 pixels; each channel peaks at 2 (max-norm / 2)
    cam = torch.tensor([[[[9., 9., 9.]], [[2., 1., 0.]], [[1., 2., 0.]], [[0., 2., 2.]]]])
    kept = pcm_cam_input(cam, suppress_non_max=False)
    out = pcm_cam_input(cam)
    fg = torch.tensor([[1., .5, 0.], [.5, 1., 0.], [0., 1., 1.]])
    assert torch.allclose(kept[0, 1:, 0], fg, atol=1e-4)
    # pixel 0: class 16 best; pixel 1: 17 and 18 tie (both kept); pixel 2: 18 best
    expected = torch.tensor([[1., 0., 0.], [0., 1., 0.], [0., 1., 1.]])
    assert torch.allclose(out[0, 1:, 0], expected, atol=1e-4)
    # background = 1 - best foreground, the same either way
    assert torch.allclose(out[:, 0], kept[:, 0]) and torch.allclose(out[0, 0, 0],
                                                                    torch.zeros(3), atol=1e-4)
    pcm = PixelCorrelationModule(in_channels=(2, 2), proj_channels=(2, 2), embed_channels=4)
    assert pcm.suppress_non_max and _model(pcm_suppress_non_max=False).pcm.suppress_non_max is False


# (b) ECR target ---------------------------------------------------------------------------
def test_max_onehot_keeps_the_best_foreground_and_background():
    cams = torch.tensor([[[[.3, .9]], [[.2, .5]], [[.7, .5]]]])
    expected = torch.tensor([[[[.3, .9]], [[0., .5]], [[.7, .5]]]])  # pixel 1: a tie, both kept
    assert torch.equal(max_onehot(cams), expected)


@pytest.mark.parametrize('detach', [True, False])
def test_ecr_gradient_reaches_the_cam_only_when_not_detached(detach):
    model = _model(ecr_detach_target=detach, loss_cls_weight=0., loss_er_weight=0.,
                   loss_min_pool_weight=0., dropout_ratio=0.)
    cam = torch.rand(2, 4, 3, 3, requires_grad=True)
    target = model.ecr_target(cam)
    assert target.requires_grad is not detach
    refined = torch.rand(2, 4, 3, 3, requires_grad=True)
    (refined - target).abs().mean().backward()
    assert refined.grad is not None and refined.grad.abs().sum() > 0
    assert (cam.grad is None) is detach
    # the whole loss: with the detached target ECR does not reach the CAM classifier
    from mmseg.structures import SegDataSample
    model.zero_grad()
    samples = [SegDataSample(metainfo=dict(img_labels=[16, 17]))]
    losses = model(torch.randn(1, 3, 48, 48), samples, mode='loss')
    losses['loss_ecr'].backward()
    grad = model.classifier.weight.grad
    assert (grad is None or bool(grad.abs().sum() == 0)) is detach
    assert model.pcm.embed.weight.grad.abs().sum() > 0


# (c) adaptive min-pooling ------------------------------------------------------------------
def test_adaptive_min_pool_loss_by_hand():
    # 2 classes x 2 x 2 pixels; per-pixel max = [3, -1, 2, 0.5]; k = 4 // 4 = 1 -> relu(-1) = 0
    cams = torch.tensor([[[[3., -2.], [1., 0.5]], [[1., -1.], [2., 0.]]]])
    assert adaptive_min_pool_loss(cams).item() == 0
    # ratio 0.5: the two smallest maxima -1, 0.5 -> (0 + 0.5) / 2
    assert adaptive_min_pool_loss(cams, ratio=0.5).item() == pytest.approx(0.25)
    # two images: the mean over images
    two = torch.cat([cams, cams + 1])  # second maxima [4, 0, 3, 1.5]: smallest 0 and 1.5
    assert adaptive_min_pool_loss(two, ratio=0.5).item() == pytest.approx((0.25 + 0.75) / 2)
    with pytest.raises(ValueError, match='ratio'):
        adaptive_min_pool_loss(cams, ratio=0)


def test_min_pool_term_is_a_loss_of_its_own_and_can_be_off():
    from mmseg.structures import SegDataSample
    samples = [SegDataSample(metainfo=dict(img_labels=[18]))]
    torch.manual_seed(0)
    on = _model()(torch.randn(1, 3, 48, 48), samples, mode='loss')
    assert on['loss_min_pool'] >= 0
    torch.manual_seed(0)
    off = _model(loss_min_pool_weight=0.)(torch.randn(1, 3, 48, 48), samples, mode='loss')
    assert 'loss_min_pool' not in off


# (d) min-max normalisation ------------------------------------------------------------------
def test_min_max_norm_maps_into_unit_interval():
    cams = torch.tensor([[[[2., 4.], [6., 10.]], [[-3., -1.], [-2., -5.]]]])
    out = min_max_norm(cams)
    assert out.min() >= 0 and out.max() < 1
    # channel 0: (x - 2) / 8; channel 1 all zero after ReLU -> stays 0
    assert torch.allclose(out[0, 0], torch.tensor([[0., .25], [.5, 1.]]), atol=1e-4)
    assert (out[0, 1] == 0).all()


class _ConstantNet(nn.Module):
    class_ids = [0, 16]

    def forward(self, x, mode='tensor'):
        ramp = torch.linspace(1., 3., x.shape[-1]).expand(x.size(0), 1, x.shape[-2], -1)
        cam = torch.cat([torch.zeros_like(ramp), ramp], dim=1)
        return cam, cam


def test_infer_cams_min_max_vs_max():
    img = torch.zeros(3, 4, 5)
    min_max = infer_cams(_ConstantNet(), img, scales=(1.0, ), flip=False)
    by_max = infer_cams(_ConstantNet(), img, scales=(1.0, ), flip=False, norm='max')
    assert min_max.min() >= 0 and min_max.max() <= 1
    assert min_max[1, 0, 0] == pytest.approx(0, abs=1e-4)  # the minimum maps to 0
    assert min_max[1, 0, -1] == pytest.approx(1, abs=1e-4)
    assert by_max[1, 0, 0] == pytest.approx(1 / 3, abs=1e-4)  # x / max keeps the floor
    assert (min_max[0] == 0).all()
    with pytest.raises(ValueError, match='norm'):
        _model(test_cfg=dict(norm='minmax'))
    with pytest.raises(ValueError, match='cam_norm'):
        _model(cam_norm='l2')


# (e) dropout, (f) embedding init gain --------------------------------------------------------
def test_dropout_before_the_classifier_and_embedding_gain():
    model = _model()
    assert isinstance(model.dropout, nn.Dropout2d) and model.dropout.p == 0.5
    assert isinstance(_model(dropout_ratio=0.).dropout, nn.Identity)
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(model(x)[0], model(x)[0])  # no dropout in eval mode
    with pytest.raises(ValueError, match='dropout_ratio'):
        _model(dropout_ratio=1.)
    # Xavier-uniform bound = gain * sqrt(6 / (fan_in + fan_out))
    torch.manual_seed(0)
    wide = PixelCorrelationModule(in_channels=(8, 8), proj_channels=(64, 125), embed_channels=192)
    torch.manual_seed(0)
    plain = PixelCorrelationModule(in_channels=(8, 8), proj_channels=(64, 125),
                                   embed_channels=192, embed_init_gain=1.0)
    assert torch.allclose(wide.embed.weight, 4 * plain.embed.weight)


# (g) frozen first blocks and BatchNorm --------------------------------------------------------
def test_seam_base_config_freezes_stem_layer1_and_batchnorm():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/_base_/models/seam_r50.py')
    backbone = dict(cfg.model.backbone, depth=18, base_channels=8, stem_channels=8,
                    init_cfg=None)
    model = _model(backbone=backbone)
    model.train()
    assert not any(p.requires_grad for p in model.backbone.stem.parameters())
    assert not any(p.requires_grad for p in model.backbone.layer1.parameters())
    assert any(p.requires_grad for p in model.backbone.layer2.parameters())
    bns = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training and not m.weight.requires_grad for m in bns)
