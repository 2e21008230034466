"""Toy pretraining: a tiny recipe through the real code, cached, loaded by Pretrained completely."""
import copy
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import CheckpointLoader

import mmincseg  # noqa: F401
from mmincseg.apis import toy_pretrain
from mmincseg.apis.toy_pretrain import (SCHEME, ensure_toy_pretrained, make_recipe,
                                        parse_toy_checkpoint, toy_pretrained_path)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = dict(num_images=64, image_size=32, epochs=1, num_val=0, batch_size=16)
TINY_URL = SCHEME + 'resnet18_v1c?num_images=64&image_size=32&epochs=1&num_val=0&batch_size=16'


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    """MMINCSEG_CACHE in a temp folder for the module."""
    with pytest.MonkeyPatch.context() as mp:
        root = str(tmp_path_factory.mktemp('cache'))
        mp.setenv('MMINCSEG_CACHE', root)
        yield root


def test_scheme_registered_and_recipe_parsed():
    assert CheckpointLoader._get_checkpoint_loader(TINY_URL) is toy_pretrain.load_from_mmincseg_toy
    arch, recipe = parse_toy_checkpoint(TINY_URL)
    assert arch == 'resnet18_v1c' and recipe == make_recipe(**TINY)
    assert parse_toy_checkpoint(SCHEME + 'resnet18_v1c')[1] == toy_pretrain.DEFAULT_RECIPE
    with pytest.raises(ValueError, match='ARCH'):
        parse_toy_checkpoint(SCHEME + 'resnet50')
    with pytest.raises(KeyError, match='unknown toy pretraining recipe keys'):
        parse_toy_checkpoint(SCHEME + 'resnet18_v1c?epoch=1')


def test_cache_key_depends_on_recipe(cache):
    path = toy_pretrained_path(TINY)
    assert path.startswith(osp.join(cache, 'pretrained'))
    assert path.endswith('resnet18_v1c.pth')
    assert toy_pretrained_path(dict(TINY, epochs=2)) != path
    assert toy_pretrained_path(dict(TINY, seed=1)) != path
    assert toy_pretrained_path(TINY) == path


def test_scheme_builds_on_first_use_and_loads_completely_into_bisenet(cache):
    """BiSeNet from configs/_base_/models/toy_r18.py: init_weights trains the tiny
    recipe (first use), loads it, and the segmentor's full-load check passes."""
    from mmseg.registry import MODELS
    path = toy_pretrained_path(TINY)
    assert not osp.exists(path)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/toy_r18.py'))
    init_cfg = cfg.model.backbone.backbone_cfg.init_cfg
    assert init_cfg == dict(type='Pretrained', checkpoint=SCHEME + 'resnet18_v1c')
    init_cfg.checkpoint = TINY_URL
    model_cfg = ConfigDict(copy.deepcopy(cfg.model))
    model_cfg.update(type='IncrementalEncoderDecoder', classes_per_step=[21])
    model = MODELS.build(model_cfg)
    model.init_weights()  # raises unless every tensor of the context path is loaded
    assert osp.isfile(path)

    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    state = ckpt['state_dict']
    assert 'stem.0.weight' in state and 'layer4.1.bn2.running_var' in state
    assert not any(k.startswith(('backbone.', 'head.', 'fc.')) for k in state)
    assert ckpt['meta']['recipe'] == make_recipe(**TINY)
    backbone = model.backbone.context_path.backbone
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, state[key]), key

    # mmseg's ResNetV1c(depth=18) on its own, as the real open-mmlab://resnet18_v1c file loads
    resnet = MODELS.build(dict(type='ResNetV1c', depth=18))
    result = resnet.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_toy_mit_b0_loads_completely_into_the_toy_segformer(cache):
    """SegFormer-B0 from configs/_base_/models/toy_segformer_b0.py: the toy MiT-B0 (tiny recipe,
    made on first use) has the layout of mmseg's MiT-B0 file and fills the whole backbone."""
    from mmseg.registry import MODELS
    url = SCHEME + 'mit_b0?num_images=64&image_size=32&epochs=1&num_val=0&batch_size=16'
    path = toy_pretrained_path(TINY, 'mit_b0')
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/models/toy_segformer_b0.py'))
    init_cfg = cfg.model.backbone.init_cfg
    assert init_cfg == dict(type='Pretrained', checkpoint=SCHEME + 'mit_b0')
    init_cfg.checkpoint = url
    model_cfg = ConfigDict(copy.deepcopy(cfg.model))
    model_cfg.update(type='IncrementalEncoderDecoder', classes_per_step=[21])
    model = MODELS.build(model_cfg)
    model.init_weights()  # raises unless every tensor of the MiT is loaded
    state = torch.load(path, map_location='cpu', weights_only=False)['state_dict']
    assert 'layers.0.0.projection.weight' in state and 'layers.3.2.weight' in state
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key
    # (with out_indices=(3, ) in the pretraining: the same tensors as the four-output backbone)
    mit = MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    result = mit.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_cache_is_reused(cache):
    path = toy_pretrained_path(TINY)
    if not osp.isfile(path):
        ensure_toy_pretrained(TINY)
    mtime = os.stat(path).st_mtime_ns
    assert ensure_toy_pretrained(TINY) == path
    ckpt = CheckpointLoader.load_checkpoint(TINY_URL, map_location='cpu')
    assert os.stat(path).st_mtime_ns == mtime
    assert set(ckpt) == {'meta', 'state_dict'}


def test_concurrent_first_use_trains_once(tmp_path):
    """Two processes asking for the same missing checkpoint: one trains, the other waits."""
    env = dict(os.environ, MMINCSEG_CACHE=str(tmp_path), OMP_NUM_THREADS='1')
    code = ('import mmincseg.apis.toy_pretrain as t, json, sys; '
            'print(t.ensure_toy_pretrained(json.loads(sys.argv[1])))')
    recipe = dict(TINY, seed=7)
    procs = [subprocess.Popen([sys.executable, '-c', code, str(recipe).replace("'", '"')],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(paths) == 1
    assert sum(err.count('[mmincseg] toy pretraining') for _, err in outs) == 1
    path = paths.pop()
    assert path.startswith(str(tmp_path))
    torch.load(path, map_location='cpu', weights_only=False)  # whole, readable
    leftovers = [f for f in os.listdir(osp.dirname(path)) if f.endswith('.tmp')]
    assert not leftovers
