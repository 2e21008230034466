"""The one incremental classifier: any mmseg decode head learns new classes by growing it."""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmseg.models.decode_heads.cascade_decode_head import BaseCascadeDecodeHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor


class IncrementalClassifier(nn.Module):
    """Per-step 1x1 classifiers whose outputs are concatenated in step order.

    Step ``t`` owns ``classes_per_step[t]`` output channels, so old and new weights stay separate
    modules (``classifiers.<t>``). A plain mmseg checkpoint's ``conv_seg.weight``/``conv_seg.bias``
    loads into the step-0 classifier.

    Args:
        in_channels (int): Channels of the classified feature map.
        classes_per_step (Sequence[int]): Output channels of each step, e.g. ``[16, 5]``.
    """

    def __init__(self, in_channels: int, classes_per_step: Sequence[int]) -> None:
        super().__init__()
        if not classes_per_step or any(int(n) <= 0 for n in classes_per_step):
            raise ValueError(f'classes_per_step must be positive counts, got {classes_per_step}')
        self.in_channels = in_channels
        self.classes_per_step = [int(n) for n in classes_per_step]
        self.classifiers = nn.ModuleList(
            nn.Conv2d(in_channels, n, kernel_size=1) for n in self.classes_per_step)

    @property
    def num_classes(self) -> int:
        """Total output channels."""
        return sum(self.classes_per_step)

    @property
    def weight(self) -> Tensor:
        """All steps' weights concatenated, shape (C, in_channels, 1, 1) (read-only view)."""
        return torch.cat([c.weight for c in self.classifiers], dim=0)

    @property
    def bias(self) -> Tensor:
        """All steps' biases concatenated, shape (C,)."""
        return torch.cat([c.bias for c in self.classifiers], dim=0)

    def forward(self, x: Tensor) -> Tensor:
        """Classify features of shape (N, in_channels, H, W) into (N, C, H, W) logits."""
        if len(self.classifiers) == 1:
            return self.classifiers[0](x)
        return torch.cat([c(x) for c in self.classifiers], dim=1)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # A non-incremental mmseg checkpoint stores ``conv_seg.weight``: use it as step 0.
        for name in ('weight', 'bias'):
            key = prefix + name
            if key in state_dict:
                state_dict[f'{prefix}classifiers.0.{name}'] = state_dict.pop(key)
        for step, classifier in enumerate(self.classifiers):
            key = f'{prefix}classifiers.{step}.weight'
            if key in state_dict and state_dict[key].shape[0] != classifier.out_channels:
                raise ValueError(
                    f'checkpoint classifier {key} has {state_dict[key].shape[0]} classes, the '
                    f'model expects {classifier.out_channels} at step {step} (classes per step '
                    f'{self.classes_per_step}). The checkpoint belongs to another split or step: '
                    'use the config of the step it was trained for.')
        extra = [k for k in state_dict if k.startswith(f'{prefix}classifiers.')
                 and int(k[len(prefix) + 12:].split('.')[0]) >= len(self.classifiers)]
        if extra:
            raise ValueError(
                f'checkpoint has classifiers of more steps than the model ({extra[0]}; classes '
                f'per step {self.classes_per_step}): it was trained for a later step. Use the '
                'config of that step.')
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return f'in_channels={self.in_channels}, classes_per_step={self.classes_per_step}'


SUPPORTED_HEADS = ('a BaseDecodeHead subclass that predicts per-pixel class logits with a 1x1 '
                   '`conv_seg` (e.g. FCNHead, ASPPHead, DepthwiseSeparableASPPHead, PSPHead, '
                   'SegformerHead, UPerHead)')


def _not_a_head(name: str) -> str:
    return f'{name} is not an mmseg BaseDecodeHead; supported: {SUPPORTED_HEADS}'


def _cascade(name: str) -> str:
    return (f'{name} is a cascade head (it refines a previous head\'s output), which cannot be '
            f'made class-incremental; supported: {SUPPORTED_HEADS}')


def _binary(name: str) -> str:
    return (f'{name} is a binary (sigmoid, one foreground channel) head; class-incremental '
            f'learning needs per-class softmax logits. Supported: {SUPPORTED_HEADS}')


def check_head_config(head_cfg: dict) -> None:
    """Refuse, before anything is built, a head config :func:`make_incremental` cannot handle.

    Cascade heads (``BaseCascadeDecodeHead``: OCRHead, PointHead...) and binary heads
    (``out_channels=1``, or ``num_classes=2`` with a sigmoid loss, e.g. STDCHead's boundary head)
    are refused; a type the registry does not know is left to the registry's own error.

    Args:
        head_cfg (dict): A decode or auxiliary head config (``type`` and its arguments).

    Raises:
        TypeError: naming the head type, why it is refused and what is supported.
    """
    from mmseg.registry import MODELS
    head_type = head_cfg.get('type')
    cls = head_type if isinstance(head_type, type) else MODELS.get(head_type)
    if cls is None:
        return
    name = cls.__name__
    if not issubclass(cls, BaseDecodeHead):
        raise TypeError(_not_a_head(name))
    if issubclass(cls, BaseCascadeDecodeHead):
        raise TypeError(_cascade(name))
    losses = head_cfg.get('loss_decode')
    losses = losses if isinstance(losses, (list, tuple)) else [losses]
    sigmoid = any(isinstance(loss, dict) and loss.get('use_sigmoid') for loss in losses)
    if head_cfg.get('out_channels') == 1 or (head_cfg.get('num_classes') == 2 and sigmoid):
        raise TypeError(_binary(name))


def make_incremental(head: nn.Module, classes_per_step: Sequence[int]) -> nn.Module:
    """Replace the ``conv_seg`` of an mmseg decode head by an :class:`IncrementalClassifier`.

    Works for every ``BaseDecodeHead`` subclass that classifies pixels through ``cls_seg`` /
    ``conv_seg`` (FCN, ASPP, DepthwiseSeparableASPP, PSP, Segformer, UPer, BiSeNet's FCN heads...).

    Args:
        head (nn.Module): A built mmseg decode head.
        classes_per_step (Sequence[int]): Output channels of each step.

    Returns:
        nn.Module: ``head`` itself, modified in place.

    Raises:
        TypeError: the head cannot be made incremental; the message names it and what works.
    """
    name = type(head).__name__
    if not isinstance(head, BaseDecodeHead):
        raise TypeError(_not_a_head(name))
    if isinstance(head, BaseCascadeDecodeHead):
        raise TypeError(_cascade(name))
    conv = getattr(head, 'conv_seg', None)
    if isinstance(conv, IncrementalClassifier):
        if conv.classes_per_step != list(classes_per_step):
            raise ValueError(f'{name} is already incremental with {conv.classes_per_step}')
        return head
    if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (1, 1):
        raise TypeError(f'{name} has no 1x1 Conv2d `conv_seg` classifier '
                        f'(found {type(conv).__name__}); supported: {SUPPORTED_HEADS}')
    if getattr(head, 'out_channels', None) == 1 and getattr(head, 'num_classes', 2) == 2:
        raise TypeError(_binary(name))
    head.conv_seg = IncrementalClassifier(conv.in_channels, classes_per_step)
    head.num_classes = head.out_channels = sum(classes_per_step)
    return head


def incremental_classifiers(model: nn.Module) -> List[IncrementalClassifier]:
    """All incremental classifiers of a model (decode and auxiliary heads), in module order."""
    return [m for m in model.modules() if isinstance(m, IncrementalClassifier)]
