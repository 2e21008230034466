"""SeedBiSeNetV1: the seed paper's BiSeNet shape, and its incremental model from the toy config."""
import copy
import os.path as osp

import mmengine
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmseg.registry import MODELS

from mmincseg import tasks
from tools.analysis_tools.bench_models import train_batch_data
from mmincseg.apis.config import resolve_incremental_config
from mmincseg.models.backbones import (ChannelAttentionRefinement, SeedBiSeNetV1,
                                       SeedFeatureFusionModule)
from mmincseg.models.classifiers import IncrementalClassifier

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
TOY_STEP0 = osp.join(REPO, 'configs/mib/bisenet_seed_r18_toyvoc_15-5_step0.py')
NORM = dict(type='BN', requires_grad=True)


def _resnet(depth: int = 18) -> dict:
    return dict(type='ResNet', depth=depth, out_indices=(2, 3), norm_cfg=NORM, init_cfg=None)


def _seed_r18(**kwargs) -> SeedBiSeNetV1:
    return MODELS.build(dict(type='SeedBiSeNetV1', backbone_cfg=_resnet(), **kwargs))


@pytest.mark.parametrize('size', [(64, 64), (72, 40)])
def test_outputs_channels_and_stride(size):
    """FFM 32 channels, ARMs 256 / 512 (R18, widths kept), all at the spatial path's 1/8."""
    model = _seed_r18().eval()
    h, w = size
    with torch.no_grad():
        outs = model(torch.randn(2, 3, h, w))
    cells = (-(-h // 8), -(-w // 8))  # three 3x3 stride-2 convs with padding 1: ceil(x / 8)
    assert [tuple(o.shape) for o in outs] == [(2, 32, *cells), (2, 256, *cells), (2, 512, *cells)]
    assert model.ffm.in_channels == 256 + 256 + 512
    convs = [m.conv for m in model.spatial_path]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 64, (3, 3), (2, 2)), (64, 128, (3, 3), (2, 2)), (128, 256, (3, 3), (2, 2))]
    assert model.out_indices == (0, 1, 2)
    single = _seed_r18(out_indices=0).eval()
    with torch.no_grad():
        assert len(single(torch.randn(1, 3, h, w))) == 1


def test_context_path_is_the_seeds():
    """layer3 ARM; layer4 ARM times layer4's global average ("tail"); bilinear to 1/8."""
    model = _seed_r18().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        _, arm16, arm32 = model(x)
        x16, x32 = model.backbone(x)

        def attention(arm, feat):
            conv = arm.attention[1].conv
            return torch.sigmoid(conv(feat.mean(dim=(2, 3), keepdim=True)))

        want16 = F.interpolate(x16 * attention(model.arm16, x16), size=(8, 8), mode='bilinear',
                               align_corners=False)
        want32 = F.interpolate(x32 * attention(model.arm32, x32) * x32.mean((2, 3), keepdim=True),
                               size=(8, 8), mode='bilinear', align_corners=False)
    torch.testing.assert_close(arm16, want16)
    torch.testing.assert_close(arm32, want32)


def test_modules_keep_or_set_widths():
    arm = ChannelAttentionRefinement(8)
    x = torch.randn(2, 8, 5, 3)
    assert arm(x).shape == x.shape
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in arm.modules())  # batch 1 safe
    ffm = SeedFeatureFusionModule(6 + 10, 4).eval()
    out = ffm(torch.randn(2, 6, 5, 3), torch.randn(2, 10, 5, 3))
    assert out.shape == (2, 4, 5, 3)
    assert ffm.fuse.conv.kernel_size == (3, 3)


def test_errors_name_the_key_and_the_fix():
    with pytest.raises(ValueError, match=r'context_channels=\(256, 512\)'):
        _seed_r18(context_channels=(1024, 2048))(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='context_channels must be'):
        _seed_r18(context_channels=(128, 256, 512))
    with pytest.raises(ValueError, match='out_indices'):
        _seed_r18(out_indices=(0, 3))
    bad = dict(type='SeedBiSeNetV1', backbone_cfg=dict(_resnet(), out_indices=(3, )))
    with pytest.raises(ValueError, match=r'out_indices=\(2, 3\)'):
        MODELS.build(bad)(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize('name, widths', [('bisenet_seed_r18', (256, 512)),
                                          ('bisenet_seed_r101', (1024, 2048))])
def test_model_configs(name, widths):
    """ImageNet weights of torchvision (plain-stem ResNet, torchvision's key layout)."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/models', f'{name}.py'))
    backbone = cfg.model.backbone
    assert backbone.type == 'SeedBiSeNetV1' and tuple(backbone.context_channels) == widths
    assert backbone.backbone_cfg.type == 'ResNet'  # conv1/bn1 stem, as torchvision's files
    depth = backbone.backbone_cfg.depth
    # the file of torchvision://resnet<depth> (mmengine's hub/torchvision_0.12.json), by its URL
    urls = mmengine.load(osp.join(mmengine.__path__[0], 'hub', 'torchvision_0.12.json'))
    assert backbone.backbone_cfg.init_cfg == dict(type='Pretrained',
                                                  checkpoint=urls[f'resnet{depth}'])
    assert cfg.model.decode_head.in_channels == cfg.model.decode_head.channels == 32
    assert [h.in_channels for h in cfg.model.auxiliary_head] == list(widths)
    assert [h.in_index for h in cfg.model.auxiliary_head] == [1, 2]


def _toy_model(classes_per_step=None):
    cfg = Config.fromfile(TOY_STEP0)
    cfg.merge_from_dict({'incremental.step': 1})
    cfg = resolve_incremental_config(cfg)
    model_cfg = copy.deepcopy(cfg.model)
    if classes_per_step is not None:
        model_cfg.update(classes_per_step=classes_per_step, distill_loss=None,
                         feature_distill_loss=None)
    return MODELS.build(model_cfg)


def test_incremental_toy_config_classifiers_and_mib_loss():
    """Per-step classifiers 32 -> [16, 5] (decode), 256 / 512 -> [16, 5] (aux); a MiB loss."""
    steps = tasks.classes_per_step('15-5', 1)
    assert steps == [16, 5]
    model = _toy_model()
    heads = [model.decode_head, *model.auxiliary_head]
    for head, width in zip(heads, (32, 256, 512)):
        assert isinstance(head.conv_seg, IncrementalClassifier)
        assert head.conv_seg.in_channels == width and head.conv_seg.classes_per_step == steps
        assert [(c.in_channels, c.out_channels) for c in head.conv_seg.classifiers] == [
            (width, 16), (width, 5)]
        assert isinstance(head.convs, torch.nn.Identity) and head.dropout is None
    # the toy config loads no ImageNet weights (none can be downloaded in the tests)
    assert not any('Pretrained' in str(getattr(m, 'init_cfg', None)) for m in model.modules())

    teacher = _toy_model(classes_per_step=steps[:-1])
    model.set_teacher(teacher)
    model.train()
    data = model.data_preprocessor(train_batch_data(2, 64), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    names = {k for k in losses if 'loss' in k}
    assert {'decode.loss_ce', 'aux_0.loss_ce', 'aux_1.loss_ce', 'loss_kd'} <= names, names
    total = sum(losses[k] for k in names)
    assert torch.isfinite(total)
    total.backward()
    for module in (model.backbone.spatial_path, model.backbone.arm16, model.backbone.ffm,
                   model.backbone.backbone.layer1):
        assert all(p.grad is not None for p in module.parameters())


def _torchvision_resnet18_state() -> dict:
    """Random tensors in the key layout and shapes of torchvision's ``resnet18`` file (conv1,
    bn1, layer<l>.<i>.conv1/bn1/conv2/bn2, downsample.0/1 in the first block of layers 2-4, fc)."""
    gen = torch.Generator().manual_seed(0)
    state = {}

    def conv(name, *shape):
        state[f'{name}.weight'] = torch.randn(*shape, generator=gen)

    def norm(name, channels):
        for key in ('weight', 'bias', 'running_mean', 'running_var'):
            state[f'{name}.{key}'] = torch.rand(channels, generator=gen) + 0.5

    conv('conv1', 64, 3, 7, 7)
    norm('bn1', 64)
    inplanes = 64
    for layer in range(1, 5):
        planes = 64 * 2**(layer - 1)
        for block in range(2):
            prefix = f'layer{layer}.{block}'
            conv(f'{prefix}.conv1', planes, inplanes, 3, 3)
            norm(f'{prefix}.bn1', planes)
            conv(f'{prefix}.conv2', planes, planes, 3, 3)
            norm(f'{prefix}.bn2', planes)
            if block == 0 and inplanes != planes:
                conv(f'{prefix}.downsample.0', planes, inplanes, 1, 1)
                norm(f'{prefix}.downsample.1', planes)
            inplanes = planes
    state['fc.weight'] = torch.randn(1000, 512, generator=gen)
    state['fc.bias'] = torch.zeros(1000)
    return state


def test_torchvision_layout_loads_completely(tmp_path):
    """A file of torchvision's resnet18 layout fills every tensor of the plain-stem context path
    (the segmentor's init_weights refuses a partial load)."""
    path = str(tmp_path / 'resnet18_torchvision_layout.pth')
    state = _torchvision_resnet18_state()
    torch.save(state, path)
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/models/bisenet_seed_r18.py'))
    cfg.model.backbone.backbone_cfg.init_cfg.checkpoint = path
    cfg.incremental = dict(task='15-5', step=0, setting='overlap', method='mib', labels='gt')
    model = MODELS.build(resolve_incremental_config(cfg).model)
    model.init_weights()
    resnet = model.backbone.backbone.state_dict()
    assert {k for k in resnet if not k.endswith('num_batches_tracked')} == set(state) - {
        'fc.weight', 'fc.bias'}
    for key, value in resnet.items():
        if key in state:
            torch.testing.assert_close(value, state[key], rtol=0, atol=0)
