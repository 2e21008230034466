"""Pretrained weights load completely: every shipped model config, offline, and the check's errors.

For each model config in configs/_base_/models/ that names pretrained weights (found by reading
the config, so a model file added later is covered), a checkpoint with the key layout of those
weights is written by building the architecture they were trained with (mmseg ``ResNetV1c`` for
``open-mmlab://resnet*_v1c``, ``ResNet`` + ``fc`` for torchvision's ``resnet*``, mmseg's
``MixVisionTransformer`` for MiT-B0), the config is pointed at it, the model is built and
initialised, and every tensor of the initialised module must equal the file.
"""
import copy
import glob
import os
import os.path as osp
import re
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from mmincseg.models.utils.pretrained import (check_pretrained_loaded, pretrained_sources,
                                              read_pretrained_state)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
MODEL_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '_base_', 'models', '*.py')))
# mmseg's segformer_mit-b0 backbone: the architecture of mmseg's MiT-B0 ImageNet file
MIT_B0 = dict(in_channels=3, embed_dims=32, num_stages=4, num_layers=[2, 2, 2, 2],
              num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3], sr_ratios=[8, 4, 2, 1],
              mlp_ratio=4, qkv_bias=True)


def _is_pretrained(cfg) -> bool:
    return isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'


def find_pretrained(cfg) -> List[Tuple[dict, str]]:
    """``(owner, key)`` of every checkpoint name in a model config: ``owner[key]`` is the name.

    ``owner`` is a ``Pretrained`` init_cfg dict (key ``'checkpoint'``) or a dict with a
    ``pretrained=`` string (mmseg's EncoderDecoder / ResNet turn it into an init_cfg).
    """
    found = []
    if isinstance(cfg, dict):
        if isinstance(cfg.get('pretrained'), str):
            found.append((cfg, 'pretrained'))
        init = cfg.get('init_cfg')
        for item in ([init] if isinstance(init, dict) else list(init or [])):
            if _is_pretrained(item):
                found.append((item, 'checkpoint'))
        for key, value in cfg.items():
            if key != 'init_cfg':
                found += find_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            found += find_pretrained(value)
    return found


def load_model_cfg(config: str) -> dict:
    return Config.fromfile(config).model.to_dict()


def source_state(checkpoint: str) -> Dict[str, torch.Tensor]:
    """A state dict with the key layout (and shapes) of the weights ``checkpoint`` names, with
    random values (BN variances positive) that no fresh init reproduces."""
    from mmseg.models.backbones import MixVisionTransformer, ResNet, ResNetV1c
    extra = {}
    # the toy's pretraining writes the layout of the open-mmlab v1c files (apis/toy_pretrain.py)
    v1c = re.fullmatch(r'(?:open-mmlab|mmincseg-toy)://resnet(\d+)_v1c(?:\?.*)?', checkpoint)
    tv = re.fullmatch(r'torchvision://resnet(\d+)|'  # or torchvision's file by its URL
                      r'https://download\.pytorch\.org/models/resnet(\d+)-[0-9a-f]+\.pth',
                      checkpoint)
    if v1c:
        source = ResNetV1c(depth=int(v1c.group(1)))
    elif tv:
        source = ResNet(depth=int(tv.group(1) or tv.group(2)))
        width = 512 * source.block.expansion  # torchvision's file also holds its classifier
        extra = {'fc.weight': torch.zeros(1000, width), 'fc.bias': torch.zeros(1000)}
    elif re.search(r'/mit_b0_[^/]*\.pth$', checkpoint) or re.fullmatch(
            r'mmincseg-toy://mit_b0(?:\?.*)?', checkpoint):  # the toy's MiT-B0: the same layout
        source = MixVisionTransformer(**MIT_B0)
    else:
        pytest.fail(f'no source architecture for the pretrained weights {checkpoint!r}: add the '
                    'architecture they were trained with to source_state() in this test')
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, value in {**source.state_dict(), **extra}.items():
        if value.is_floating_point():
            value = torch.rand(value.shape, generator=gen) + 0.5 if key.endswith('running_var') \
                else torch.randn(value.shape, generator=gen) * 0.05
        state[key] = value
    return state


@pytest.fixture(scope='module')
def pretrained_file(tmp_path_factory):
    """``pretrained_file(name)``: path of a checkpoint in the layout of the weights ``name``
    (written once per name; open-mmlab files wrapped in ``state_dict``, torchvision's plain)."""
    files = {}

    def make(name: str) -> str:
        if name not in files:
            path = str(tmp_path_factory.mktemp('pretrained') / 'weights.pth')
            state = source_state(name)
            torch.save(state if 'torchvision' in name or 'pytorch.org' in name else
                       {'state_dict': state, 'meta': {}}, path)
            files[name] = path
        return files[name]

    return make


def build(model_cfg: dict) -> nn.Module:
    """The model as the resolver builds it: an EncoderDecoder becomes IncrementalEncoderDecoder."""
    cfg = ConfigDict(copy.deepcopy(model_cfg))  # mmseg's EncoderDecoder sets attributes
    if cfg.type == 'EncoderDecoder':
        cfg.update(type='IncrementalEncoderDecoder', classes_per_step=[21])
    return MODELS.build(cfg)


def initialised_from(model: nn.Module, path: str) -> List[Tuple[str, nn.Module]]:
    """The submodules whose Pretrained init_cfg names ``path``."""
    out = []
    for name, module in model.named_modules():
        init = getattr(module, 'init_cfg', None)
        for item in ([init] if isinstance(init, dict) else list(init or [])):
            if _is_pretrained(item) and item['checkpoint'] == path:
                out.append((name, module))
    return out


def assert_equals_file(module: nn.Module, path: str) -> None:
    ckpt = torch.load(path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    own = {k: v for k, v in module.state_dict().items() if not k.endswith('num_batches_tracked')}
    assert own
    missing = [k for k in own if k not in state]
    assert not missing, f'{len(missing)} of {len(own)} tensors not in the file: {missing[:5]}'
    differ = [k for k, v in own.items() if not torch.equal(v, state[k].to(v.dtype))]
    assert not differ, f'{len(differ)} of {len(own)} tensors not loaded: {differ[:5]}'


@pytest.mark.parametrize('config', MODEL_CONFIGS, ids=osp.basename)
def test_every_model_config_loads_its_pretrained_weights_completely(config, pretrained_file):
    model_cfg = load_model_cfg(config)
    names = find_pretrained(model_cfg)
    if not names:
        pytest.skip('names no pretrained weights (toy configs, models trained from scratch)')
    files = []
    for owner, key in names:
        owner[key] = pretrained_file(owner[key])
        files.append(owner[key])
    model = build(model_cfg)
    model.init_weights()
    for path in files:
        modules = initialised_from(model, path)
        assert modules, f'no module of the built model is initialised from {path}'
        for name, module in modules:
            assert_equals_file(module, path)


def test_resolved_step_config_loads_its_pretrained_weights(pretrained_file):
    """As a real run builds it: a VOC step config through the resolver."""
    from mmincseg.apis.config import resolve_incremental_config
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mib', 'bisenet_r18_voc_15-5_step0.py'))
    cfg.merge_from_dict({'incremental.step': 1})
    init_cfg = cfg.model.backbone.backbone_cfg.init_cfg
    init_cfg.checkpoint = pretrained_file(init_cfg.checkpoint)
    model = MODELS.build(resolve_incremental_config(cfg).model)
    assert type(model).__name__ == 'IncrementalEncoderDecoder'
    model.init_weights()
    assert_equals_file(model.backbone.context_path.backbone, init_cfg.checkpoint)


def _bisenet_r18_cfg(pretrained_file, checkpoint_layout: str, context_path: str) -> dict:
    """bisenet_r18.py with a ``context_path`` ResNet type and a file of ``checkpoint_layout``."""
    cfg = load_model_cfg(osp.join(REPO, 'configs', '_base_', 'models', 'bisenet_r18.py'))
    backbone = cfg['backbone']['backbone_cfg']
    backbone['type'] = context_path
    backbone['init_cfg']['checkpoint'] = pretrained_file(checkpoint_layout)
    return cfg


def test_old_bisenet_config_shape_raises(pretrained_file):
    """Before the fix: a plain ResNet context path with the v1c (deep stem) weights."""
    cfg = _bisenet_r18_cfg(pretrained_file, 'open-mmlab://resnet18_v1c', 'ResNet')
    path = cfg['backbone']['backbone_cfg']['init_cfg']['checkpoint']
    with pytest.raises(ValueError) as info:
        build(cfg).init_weights()
    msg = str(info.value)
    for part in ('backbone.context_path.backbone (ResNet)', path, '5 of its 100 tensors',
                 'conv1.weight (not in the file)', 'bn1.running_var', 'stem.0.weight',
                 'ResNetV1c', 'model.allow_partial_pretrained=True'):
        assert part in msg, (part, msg)


def test_plain_resnet_weights_in_a_v1c_context_path_raise(pretrained_file):
    cfg = _bisenet_r18_cfg(pretrained_file, 'torchvision://resnet18', 'ResNetV1c')
    with pytest.raises(ValueError, match=r'stem\.0\.weight \(not in the file\).*conv1\.weight'):
        build(cfg).init_weights()


def test_allow_partial_pretrained_loads_what_fits(pretrained_file):
    cfg = _bisenet_r18_cfg(pretrained_file, 'open-mmlab://resnet18_v1c', 'ResNet')
    cfg['allow_partial_pretrained'] = True
    path = cfg['backbone']['backbone_cfg']['init_cfg']['checkpoint']
    model = build(cfg)
    resnet = model.backbone.context_path.backbone
    stem = resnet.conv1.weight.clone()
    model.init_weights()
    state = torch.load(path, map_location='cpu')['state_dict']
    assert torch.equal(resnet.layer4[1].conv2.weight, state['layer4.1.conv2.weight'])
    assert torch.equal(resnet.conv1.weight, stem)  # left random: what the switch permits


def test_second_init_weights_reads_nothing(pretrained_file, tmp_path):
    """mmengine does not load twice (is_init), so neither does the check: the file may be gone."""
    cfg = _bisenet_r18_cfg(pretrained_file, 'open-mmlab://resnet18_v1c', 'ResNetV1c')
    path = str(tmp_path / 'once.pth')
    torch.save(torch.load(cfg['backbone']['backbone_cfg']['init_cfg']['checkpoint']), path)
    cfg['backbone']['backbone_cfg']['init_cfg']['checkpoint'] = path
    model = build(cfg)
    model.init_weights()
    os.remove(path)
    model.init_weights()  # mmengine warns "called more than once"; no file is read


def test_teacher_is_built_without_reading_pretrained_weights(pretrained_file, tmp_path):
    """The previous-step teacher is built and loaded from its checkpoint, never initialised, so
    a Pretrained file its config still names (BiSeNet's backbone_cfg) is not read."""
    from mmincseg.engine.hooks.incremental_step_hook import load_teacher
    cfg = _bisenet_r18_cfg(pretrained_file, 'open-mmlab://resnet18_v1c', 'ResNetV1c')
    cfg['backbone']['backbone_cfg']['init_cfg']['checkpoint'] = str(tmp_path / 'absent.pth')
    cfg.update(type='IncrementalEncoderDecoder', classes_per_step=[16, 5])
    previous = build({**cfg, 'classes_per_step': [16]})
    checkpoint = str(tmp_path / 'step0.pth')
    torch.save({'state_dict': previous.state_dict()}, checkpoint)
    teacher = load_teacher(ConfigDict(cfg), checkpoint, [16])
    assert torch.equal(teacher.backbone.context_path.backbone.stem[0].weight,
                       previous.backbone.context_path.backbone.stem[0].weight)


def test_seam_net_checks_its_backbone(pretrained_file):
    cfg = load_model_cfg(osp.join(REPO, 'configs', '_base_', 'models', 'seam_r50.py'))
    cfg['backbone'].update(depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=pretrained_file('torchvision://resnet18')))
    with pytest.raises(ValueError, match=r'^backbone \(ResNetV1c\).*stem\.0\.weight'):
        MODELS.build(copy.deepcopy(cfg)).init_weights()
    cfg['allow_partial_pretrained'] = True
    MODELS.build(cfg).init_weights()


class _Tiny(BaseModule):

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)


def test_prefix_and_module_prefix_as_mmengine(tmp_path):
    tiny = _Tiny()
    state = {k: torch.rand_like(v) + 0.5 if v.is_floating_point() else v
             for k, v in tiny.state_dict().items()}
    whole = str(tmp_path / 'whole.pth')  # a whole-model checkpoint, the module under 'backbone.'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}}, whole)
    ddp = str(tmp_path / 'ddp.pth')  # saved from a DDP-wrapped module
    torch.save({f'module.{k}': v for k, v in state.items()}, ddp)
    assert read_pretrained_state(whole, 'backbone').keys() == state.keys()
    assert read_pretrained_state(ddp).keys() == state.keys()
    for checkpoint, prefix in ((whole, 'backbone'), (ddp, None)):
        model = _Tiny(dict(type='Pretrained', checkpoint=checkpoint, prefix=prefix))
        model.init_weights()
        check_pretrained_loaded(model)
    model = _Tiny(dict(type='Pretrained', checkpoint=whole))  # no prefix: nothing fits
    model.init_weights()
    with pytest.raises(ValueError, match=r'^\(the model itself\) \(_Tiny\) .* 6 of its 6 tensors'
                                         r'.* does not have, e\.g\. backbone\.conv\.weight'):
        check_pretrained_loaded(model)


def test_overwritten_after_loading_and_shape_mismatch_raise(tmp_path):
    tiny = _Tiny()
    state = {k: torch.rand_like(v) + 0.5 if v.is_floating_point() else v
             for k, v in tiny.state_dict().items()}
    good = str(tmp_path / 'good.pth')
    torch.save(state, good)
    model = _Tiny([dict(type='Constant', val=0, layer='Conv2d'),
                   dict(type='Pretrained', checkpoint=good)])  # Pretrained runs last
    model.init_weights()
    sources = pretrained_sources(model)
    assert [(s.path, s.checkpoint) for s in sources] == [('', good)]
    check_pretrained_loaded(model)
    with torch.no_grad():
        model.conv.weight.add_(1)
    with pytest.raises(ValueError, match=r'conv\.weight \(value differs from the file'):
        check_pretrained_loaded(model)
    bad = str(tmp_path / 'bad.pth')
    torch.save({**state, 'conv.weight': torch.zeros(4, 3, 1, 1)}, bad)
    model = _Tiny(dict(type='Pretrained', checkpoint=bad))
    model.init_weights()
    with pytest.raises(ValueError, match=r'conv\.weight \(shape \(4, 3, 3, 3\) in the model, '
                                         r'\(4, 3, 1, 1\) in the file\)'):
        check_pretrained_loaded(model)
