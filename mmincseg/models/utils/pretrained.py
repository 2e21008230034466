"""Check that every ``Pretrained`` init_cfg of a model loaded all of its module's tensors.

mmengine's ``PretrainedInit`` loads non-strictly: a tensor of the module that the file lacks (or
holds with another shape) keeps its random init, with one log line. A checkpoint of another
layout than the architecture built (e.g. ``open-mmlab://resnet18_v1c``, a ``ResNetV1c`` with the
deep stem ``stem.0 ... stem.7``, loaded into a plain ``ResNet`` with ``conv1``/``bn1``) then
trains from partly random weights without anyone noticing. The segmentors' ``init_weights``
(:func:`init_weights_checked`) turn that into an error, unless ``allow_partial_pretrained``.
"""
from collections.abc import Mapping
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model.weight_init import PretrainedInit
from mmengine.runner import CheckpointLoader

from ...utils.checkpoint import unwrap_state_dict

#: Keys of a module's state dict that no pretrained file is expected to hold.
IGNORED_SUFFIXES = ('num_batches_tracked', )
#: How many missing / unused keys an error message lists.
SHOWN_KEYS = 5


class PretrainedSource(NamedTuple):
    """A submodule initialised from a checkpoint by a ``Pretrained`` init_cfg.

    Attributes:
        path (str): Its name in the model (``model.named_modules()``), e.g.
            ``backbone.context_path.backbone``; ``''`` for the model itself.
        module (nn.Module): The submodule.
        checkpoint (str): The init_cfg's ``checkpoint`` (file, URL, ``open-mmlab://...``).
        prefix (str, optional): The init_cfg's ``prefix``: only the file's keys under it are
            loaded, with the prefix removed.
    """
    path: str
    module: nn.Module
    checkpoint: str
    prefix: Optional[str]


def _pretrained_cfgs(init_cfg) -> List[Mapping]:
    """The ``Pretrained`` dicts of an init_cfg (a dict, a list of dicts or None)."""
    cfgs = [init_cfg] if isinstance(init_cfg, Mapping) else list(init_cfg or [])
    return [cfg for cfg in cfgs if isinstance(cfg, Mapping)
            and cfg.get('type') in ('Pretrained', PretrainedInit)]


def pretrained_sources(model: nn.Module, pending_only: bool = False) -> List[PretrainedSource]:
    """Every submodule of ``model`` (itself included) whose init_cfg is or holds a ``Pretrained``.

    Args:
        model (nn.Module): A model built from a config (mmseg's ``EncoderDecoder`` turns its
            ``pretrained=`` into the backbone's init_cfg).
        pending_only (bool): Leave out the modules whose init_weights already ran
            (mmengine's ``BaseModule.is_init``): mmengine does not load them again. Defaults to
            False.

    Returns:
        list[PretrainedSource]: In ``named_modules()`` order.
    """
    sources = []
    for path, module in model.named_modules():
        if pending_only and getattr(module, 'is_init', False):
            continue
        for cfg in _pretrained_cfgs(getattr(module, 'init_cfg', None)):
            sources.append(PretrainedSource(path, module, str(cfg['checkpoint']),
                                            cfg.get('prefix')))
    return sources


def read_pretrained_state(checkpoint: str,
                          prefix: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """The tensors mmengine's ``PretrainedInit`` loads from ``checkpoint``, on the CPU.

    As mmengine does: the ``state_dict`` entry if the file has one; with ``prefix``, only the keys
    under ``prefix.`` with it removed; without, a ``module.`` prefix (DDP) removed.

    Args:
        checkpoint (str): File, URL or ``open-mmlab://`` / ``torchvision://`` name (read from
            mmengine's download cache, where PretrainedInit put it).
        prefix (str, optional): The init_cfg's ``prefix``.

    Returns:
        dict[str, Tensor]: Key in the module's state dict -> tensor (non-tensors left out).
    """
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu', logger='current')
    state = unwrap_state_dict(ckpt, prefix)
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _not_loaded(module: nn.Module, state: Dict[str, torch.Tensor]) -> List[str]:
    """``key (reason)`` for each tensor of ``module`` that does not hold the file's value."""
    bad = []
    for key, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor) or key.endswith(IGNORED_SUFFIXES):
            continue
        source = state.get(key)
        if source is None:
            bad.append(f'{key} (not in the file)')
        elif source.shape != value.shape:
            bad.append(f'{key} (shape {tuple(value.shape)} in the model, '
                       f'{tuple(source.shape)} in the file)')
        elif not torch.equal(value.detach().cpu(), source.to(value.dtype)):
            bad.append(f'{key} (value differs from the file: not loaded, or overwritten after '
                       'loading)')
    return bad


def check_pretrained_loaded(model: nn.Module,
                            sources: Optional[Sequence[PretrainedSource]] = None) -> None:
    """Raise unless every ``Pretrained`` init left each tensor of its module equal to the file.

    Call it after ``init_weights()``. Every tensor of the module's state dict (BatchNorm
    statistics included, ``num_batches_tracked`` left out) must be in the file, under the key
    mmengine loads it from, with the same shape and value. Comparing values, not only keys, checks
    what the module holds after the whole init rather than predicting what mmengine did; the file
    is read again from mmengine's cache (once per checkpoint), on the CPU.

    Args:
        model (nn.Module): The initialised model (used to find ``sources`` when not given).
        sources (Sequence[PretrainedSource], optional): The modules to check, e.g.
            ``pretrained_sources(model, pending_only=True)`` taken before ``init_weights()``.
            Defaults to every ``Pretrained`` init_cfg of ``model``.

    Raises:
        ValueError: naming the module's path and class, the checkpoint, how many tensors were
            not loaded, the first of them, the file's keys the module does not use, and the fix.
    """
    if sources is None:
        sources = pretrained_sources(model)
    files: Dict[tuple, Dict[str, torch.Tensor]] = {}
    for source in sources:
        where = (source.checkpoint, source.prefix)
        if where not in files:
            files[where] = read_pretrained_state(*where)
        state = files[where]
        bad = _not_loaded(source.module, state)
        if not bad:
            continue
        own = source.module.state_dict()
        unused = [k for k in state if k not in own and not k.endswith(IGNORED_SUFFIXES)]
        total = sum(1 for k in own if not k.endswith(IGNORED_SUFFIXES))
        path = source.path or '(the model itself)'
        prefix = f" with prefix='{source.prefix}'" if source.prefix is not None else ''
        unused_msg = (f' The file has {len(unused)} tensors this module does not have, e.g. '
                      f'{", ".join(unused[:SHOWN_KEYS])}.' if unused else '')
        raise ValueError(
            f'{path} ({type(source.module).__name__}) has a Pretrained init_cfg from '
            f"'{source.checkpoint}'{prefix}, but {len(bad)} of its {total} tensors do not hold "
            "the file's values (a tensor not loaded trains from its random init): "
            f'{", ".join(bad[:SHOWN_KEYS])}'
            f'{" ..." if len(bad) > SHOWN_KEYS else ""}.{unused_msg} The checkpoint does not '
            'match the architecture built: build the architecture the weights were trained with '
            '(open-mmlab://resnet*_v1c files are mmseg ResNetV1c, deep stem stem.0-stem.7; '
            'torchvision://resnet* files are a plain ResNet, conv1/bn1), set the init_cfg '
            "'prefix' to the module's key prefix in the file, or point 'checkpoint' at weights "
            'of this architecture. To load only part of the file on purpose, set '
            'model.allow_partial_pretrained=True.')


def init_weights_checked(model: nn.Module, init_weights: Callable[[], None],
                         allow_partial_pretrained: bool = False) -> None:
    """Run ``init_weights`` (mmengine's of ``model``), then check the ``Pretrained`` inits it ran.

    Only the modules that mmengine has not initialised yet are checked (its ``is_init``): a
    second ``init_weights()`` call loads nothing and checks nothing, and a model built without
    ``init_weights()`` (the previous-step teacher) reads no file.

    Args:
        model (nn.Module): The segmentor (an mmengine ``BaseModule``).
        init_weights (Callable[[], None]): Its parent class's ``init_weights``, bound
            (``super().init_weights``).
        allow_partial_pretrained (bool): Skip the check (load part of a file on purpose).
            Defaults to False.

    Raises:
        ValueError: see :func:`check_pretrained_loaded`.
    """
    check = not (getattr(model, 'is_init', False) or allow_partial_pretrained)
    sources = pretrained_sources(model, pending_only=True) if check else []
    init_weights()
    if sources:
        check_pretrained_loaded(model, sources)
