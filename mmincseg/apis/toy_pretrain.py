"""Toy "ImageNet" pretraining: the weights toy configs load as VOC configs load ImageNet's.

Real runs fine-tune ``open-mmlab://resnet18_v1c`` (mmseg ``ResNetV1c``: deep stem
``stem.0 ... stem.7``, keys without ``backbone.``) or mmseg's MiT-B0 file (``MixVisionTransformer``
keys ``layers.*``). The toy runs fine-tune the same layouts (:data:`ARCHITECTURES`), trained
here on the toy classification set (:mod:`mmincseg.datasets.toy_classification`) by MMEngine's
Runner, and name it the same way in a config::

    init_cfg=dict(type='Pretrained', checkpoint='mmincseg-toy://resnet18_v1c')

``mmincseg-toy://`` is a scheme of mmengine's ``CheckpointLoader`` (registered when this module is
imported): its loader returns the cached checkpoint, training it first when the cache lacks it.
A recipe other than :data:`DEFAULT_RECIPE` is named by a query,
``mmincseg-toy://resnet18_v1c?epochs=1&num_images=64``. The cache is
``$MMINCSEG_CACHE/pretrained/<key>/resnet18_v1c.pth`` (``MMINCSEG_CACHE`` defaults to
``~/.cache/mmincseg``), ``<key>`` naming the generator version and a hash of the recipe; it is
written by temp file + rename under a lock file, so concurrent first uses (DDP ranks, parallel
runs) train once and never read a partial file. Training runs in a child process, so a
segmentation run that triggers it keeps its own random state, default scope and loggers.
"""
import contextlib
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, Iterator, Optional, Sequence
from urllib.parse import parse_qsl, urlsplit

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader
from mmseg.registry import MODELS

from mmincseg.utils.io import atomic_write

try:  # POSIX; elsewhere concurrent first uses may both train (the rename still keeps it whole)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

SCHEME = 'mmincseg-toy://'
#: Architectures the scheme makes: name -> mmseg backbone config (the layouts of
#: ``open-mmlab://resnet{18,50,101}_v1c`` and of mmseg's MiT-B0 ImageNet file, which
#: ``configs/_base_/models/segformer_b0.py`` loads).
ARCHITECTURES: Dict[str, dict] = {
    **{f'resnet{depth}_v1c': dict(type='ResNetV1c', depth=depth, in_channels=3, num_stages=4,
                                  out_indices=(3, ), norm_cfg=dict(type='BN', requires_grad=True),
                                  norm_eval=False, style='pytorch', contract_dilation=True)
       for depth in (18, 50, 101)},
    'mit_b0': dict(type='MixVisionTransformer', in_channels=3, embed_dims=32, num_stages=4,
                   num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3],
                   sr_ratios=[8, 4, 2, 1], out_indices=(3, ), mlp_ratio=4, qkv_bias=True,
                   drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
}
#: Channels of each architecture's last output (what the classifier reads).
FEATURE_CHANNELS = {'resnet18_v1c': 512, 'resnet50_v1c': 2048, 'resnet101_v1c': 2048,
                    'mit_b0': 256}
#: What the default toy checkpoint is trained with (measured: see README, toy pretraining).
DEFAULT_RECIPE = dict(image_size=64, num_images=4000, num_val=500, epochs=6, lr=0.1,
                      weight_decay=5e-4, batch_size=64, seed=0)
#: mmseg's (ImageNet) normalisation, as the segmentation configs use, so the toy backbone sees
#: inputs of the same statistics there and here. Images are RGB already (no channel swap).
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


@MODELS.register_module()
class ToyImageClassifier(BaseModel):
    """Backbone + global average pooling + linear classifier, trained by MMEngine's Runner.

    The shape of mmpretrain's ``ImageClassifier`` (``GlobalAveragePooling`` neck,
    ``LinearClsHead``), built from mmseg's registry so that its backbone is mmseg's
    (``ResNetV1c``, ``MixVisionTransformer``): the state dict of ``self.backbone`` is the layout
    of ``open-mmlab://resnet*_v1c`` and of mmseg's MiT-B0 file (mmpretrain's ``ResNetV1c`` names
    its stem ``stem.0.conv``, and mmpretrain needs torchvision, which this install does not
    have).

    Args:
        backbone (dict): mmseg backbone config; its last output is classified.
        num_classes (int): Number of classes. Defaults to 20.
        in_channels (int): Channels of the backbone's last output. Defaults to 512 (R18).
        data_preprocessor (dict, optional): e.g. mmengine's ``ImgDataPreprocessor``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self, backbone: dict, num_classes: int = 20, in_channels: int = 512,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = nn.Linear(in_channels, num_classes)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[Sequence[int]] = None,
                mode: str = 'tensor'):
        """``inputs`` has a shape (N, 3, H, W); ``data_samples`` are the N labels.

        Returns logits (N, num_classes) for ``mode='tensor'``, ``dict(loss, acc)`` for
        ``'loss'`` and the predicted labels (N,) for ``'predict'``.
        """
        logits = self.head(self.backbone(inputs)[-1].mean((2, 3)))
        if mode == 'tensor':
            return logits
        if mode == 'predict':
            return logits.argmax(1)
        if mode == 'loss':
            labels = torch.as_tensor(list(data_samples), device=logits.device)
            return dict(loss=F.cross_entropy(logits, labels),
                        acc=(logits.detach().argmax(1) == labels).float().mean())
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")



# --------------------------------------------------------------------------------------------------
# Recipe, cache
# --------------------------------------------------------------------------------------------------
def make_recipe(**overrides) -> dict:
    """:data:`DEFAULT_RECIPE` with ``overrides`` (unknown keys are an error)."""
    unknown = sorted(set(overrides) - set(DEFAULT_RECIPE))
    if unknown:
        raise KeyError(f'unknown toy pretraining recipe keys {unknown}; known keys: '
                       f'{sorted(DEFAULT_RECIPE)}')
    recipe = dict(DEFAULT_RECIPE)
    for key, value in overrides.items():
        recipe[key] = type(DEFAULT_RECIPE[key])(value)
    return recipe


def recipe_key(recipe: dict, arch: str = 'resnet18_v1c') -> str:
    """Cache key: generator version, architecture and a hash of the recipe."""
    from mmincseg.datasets.toy_classification import toy_generator_version
    blob = json.dumps(dict(arch=arch, recipe=recipe), sort_keys=True)
    return f'{toy_generator_version()}-{arch}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}'


def cache_root() -> str:
    """``$MMINCSEG_CACHE/pretrained`` (``MMINCSEG_CACHE`` defaults to ``~/.cache/mmincseg``)."""
    root = os.environ.get('MMINCSEG_CACHE', osp.join(osp.expanduser('~'), '.cache', 'mmincseg'))
    return osp.join(root, 'pretrained')


def toy_pretrained_path(recipe: Optional[dict] = None, arch: str = 'resnet18_v1c') -> str:
    """Where the checkpoint of ``recipe`` (default: :data:`DEFAULT_RECIPE`) is cached."""
    recipe = make_recipe(**(recipe or {}))
    return osp.join(cache_root(), recipe_key(recipe, arch), f'{arch}.pth')


def parse_toy_checkpoint(name: str):
    """``mmincseg-toy://ARCH[?key=value&...]`` -> (arch, recipe)."""
    parts = urlsplit(name)
    arch = (parts.netloc + parts.path).strip('/')
    if not name.startswith(SCHEME) or arch not in ARCHITECTURES:
        raise ValueError(f'{name!r}: expected {SCHEME}ARCH[?key=value&...] with ARCH in '
                         f'{sorted(ARCHITECTURES)} and keys of {sorted(DEFAULT_RECIPE)}')
    return arch, make_recipe(**dict(parse_qsl(parts.query)))


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    os.makedirs(directory, exist_ok=True)
    with open(osp.join(directory, '.lock'), 'a') as lock:
        if fcntl is not None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def ensure_toy_pretrained(recipe: Optional[dict] = None, arch: str = 'resnet18_v1c',
                          in_subprocess: bool = True) -> str:
    """The cached checkpoint of ``recipe``, trained first when missing.

    Args:
        recipe (dict, optional): Overrides of :data:`DEFAULT_RECIPE`.
        arch (str): A key of :data:`ARCHITECTURES`. Defaults to ``'resnet18_v1c'``.
        in_subprocess (bool): Train in a child Python process (keeps this process's random
            state, default scope and loggers untouched). Defaults to True.

    Returns:
        str: Path of the checkpoint file.
    """
    recipe = make_recipe(**(recipe or {}))
    path = toy_pretrained_path(recipe, arch)
    if osp.isfile(path):
        return path
    with _locked(osp.dirname(path)):
        if osp.isfile(path):  # another process made it while we waited
            return path
        print(f'[mmincseg] toy pretraining {arch} ({json.dumps(recipe, sort_keys=True)}) -> '
              f'{path}', file=sys.stderr, flush=True)
        if in_subprocess:
            code = ('import sys; from mmincseg.apis.toy_pretrain import main; '
                    'main(sys.argv[1:])')
            subprocess.run([sys.executable, '-c', code, '--out', path, '--arch', arch,
                            '--recipe', json.dumps(recipe)], check=True)
        else:
            train_toy_pretrained(path, recipe, arch)
    if not osp.isfile(path):
        raise RuntimeError(f'toy pretraining finished without writing {path}')
    return path


@CheckpointLoader.register_scheme(prefixes=SCHEME, force=True)
def load_from_mmincseg_toy(filename: str, map_location=None) -> dict:
    """mmengine checkpoint loader of ``mmincseg-toy://ARCH[?recipe]`` (trains on first use)."""
    arch, recipe = parse_toy_checkpoint(filename)
    path = ensure_toy_pretrained(recipe, arch)
    return torch.load(path, map_location=map_location, weights_only=False)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def runner_config(recipe: dict, work_dir: str, arch: str = 'resnet18_v1c') -> dict:
    """The MMEngine Runner config that trains ``recipe`` (a plain, printable dict)."""
    data = dict(num_images=recipe['num_images'], image_size=recipe['image_size'],
                seed=recipe['seed'])
    iters_per_epoch = -(-recipe['num_images'] // recipe['batch_size'])
    return dict(
        default_scope='mmseg',
        work_dir=work_dir,
        model=dict(type='ToyImageClassifier', backbone=ARCHITECTURES[arch], num_classes=20,
                   in_channels=FEATURE_CHANNELS[arch],
                   data_preprocessor=dict(type='ImgDataPreprocessor', mean=MEAN, std=STD)),
        train_dataloader=dict(
            batch_size=recipe['batch_size'], num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='ToyClassificationDataset', flip_prob=0.5, **data)),
        train_cfg=dict(by_epoch=True, max_epochs=recipe['epochs']),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=recipe['lr'], momentum=0.9,
                                          nesterov=True, weight_decay=recipe['weight_decay'])),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                 end=max(1, min(iters_per_epoch, 50))),
            dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=recipe['epochs'],
                 eta_min=0.0, convert_to_iter_based=True)],
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=max(1, min(iters_per_epoch, 20))),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=None,
            sampler_seed=dict(type='DistSamplerSeedHook')),
        randomness=dict(seed=recipe['seed']),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        log_level='INFO',
    )


@torch.no_grad()
def top1_accuracy(model: ToyImageClassifier, dataset, batch_size: int = 128) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on a ``ToyClassificationDataset``."""
    model.eval()
    correct = 0
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        data = model.data_preprocessor(dict(inputs=[it['inputs'] for it in items],
                                            data_samples=[it['data_samples'] for it in items]))
        pred = model(data['inputs'], mode='predict').cpu()
        correct += int((pred == torch.as_tensor(data['data_samples'])).sum())
    return correct / max(len(dataset), 1)


def train_toy_pretrained(out_path: str, recipe: Optional[dict] = None,
                         arch: str = 'resnet18_v1c', work_dir: Optional[str] = None) -> dict:
    """Train ``recipe`` in this process and write the backbone checkpoint to ``out_path``.

    The file is ``dict(meta=..., state_dict=...)``, ``state_dict`` being the backbone's alone,
    keys without ``backbone.`` (the layout of ``open-mmlab://resnet18_v1c``); beside it,
    ``<arch>.json`` holds the recipe, key, wall time and accuracies. Both are written atomically.

    Args:
        out_path (str): Checkpoint file to write.
        recipe (dict, optional): Overrides of :data:`DEFAULT_RECIPE`.
        arch (str): A key of :data:`ARCHITECTURES`.
        work_dir (str, optional): Runner work dir (logs). Defaults to ``work`` beside
            ``out_path``.

    Returns:
        dict: The meta: ``recipe``, ``key``, ``train_s``, ``train_acc`` (top-1 on the training
        images, without flips), ``heldout_acc`` (on ``num_val`` images after them).
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmincseg.datasets.toy_classification import (ToyClassificationDataset,
                                                     toy_generator_version)
    recipe = make_recipe(**(recipe or {}))
    work_dir = work_dir or osp.join(osp.dirname(osp.abspath(out_path)), 'work')
    start = time.time()
    runner = Runner.from_cfg(Config(runner_config(recipe, work_dir, arch)))
    runner.train()
    train_s = time.time() - start
    model = runner.model
    data = dict(image_size=recipe['image_size'], seed=recipe['seed'])
    train_set = ToyClassificationDataset(num_images=recipe['num_images'], **data)
    meta = dict(arch=arch, recipe=recipe, key=recipe_key(recipe, arch),
                generator=toy_generator_version(), train_s=round(train_s, 1),
                torch_threads=torch.get_num_threads(),
                train_acc=round(top1_accuracy(model, train_set), 4))
    if recipe['num_val'] > 0:
        heldout = ToyClassificationDataset(num_images=recipe['num_val'],
                                           start_index=recipe['num_images'], **data)
        meta['heldout_acc'] = round(top1_accuracy(model, heldout), 4)
    state = {k: v.detach().cpu().clone() for k, v in model.backbone.state_dict().items()}
    with atomic_write(out_path, 'wb') as f:
        torch.save(dict(meta=meta, state_dict=state), f)
    with atomic_write(osp.splitext(out_path)[0] + '.json') as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write('\n')
    runner.logger.info(f'toy pretraining done: {json.dumps(meta, sort_keys=True)}')
    return meta


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command line of the child process (and of ``tools/toy_pretrain.py``)."""
    import argparse
    parser = argparse.ArgumentParser(description='Toy classification pretraining (cached).')
    parser.add_argument('--out', help='write the checkpoint here (default: the cache)')
    parser.add_argument('--arch', default='resnet18_v1c', choices=sorted(ARCHITECTURES))
    parser.add_argument('--recipe', default='{}', help='JSON overrides of the default recipe')
    args = parser.parse_args(argv)
    import mmincseg  # noqa: F401  (registers mmincseg's modules, as a config's custom_imports)
    import mmincseg.datasets.toy_classification  # noqa: F401  (registers the dataset)
    recipe = json.loads(args.recipe)
    if args.out:
        meta = train_toy_pretrained(args.out, recipe, args.arch)
        print(json.dumps(meta, indent=2, sort_keys=True))
    else:
        print(ensure_toy_pretrained(recipe, args.arch))
