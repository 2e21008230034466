"""EncoderDecoder with incremental classifiers and a frozen previous-step teacher."""
import copy
import logging
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, SampleList
from torch import Tensor

from ...tasks import IGNORE_INDEX
from ..decode_heads.incremental_classifier import make_incremental
from ..utils.head_loss import head_loss_by_feat


@torch.no_grad()
def fuse_teacher_bn(teacher: nn.Module, probe_size: int = 64) -> nn.Module:
    """A copy of the frozen ``teacher`` with BatchNorm folded into the preceding convolutions.

    ``mmcv.cnn.fuse_conv_bn`` pairs a BN with the conv registered just before it, which holds for
    mmcv's ``ConvModule`` and mmseg's ResNet blocks but not for every module one could write; the
    teacher logits on a random probe image are therefore compared before and after, and the
    unfused teacher is kept (with a warning) if they differ.

    Args:
        teacher (nn.Module): A segmentor in eval mode.
        probe_size (int): Side of the probe image. Defaults to 64.

    Returns:
        nn.Module: The fused copy, or ``teacher`` itself when fusing changes its output.
    """
    from mmcv.cnn import fuse_conv_bn
    from mmengine.logging import print_log
    device = next(teacher.parameters()).device
    probe = torch.randn(1, 3, probe_size, probe_size,
                        generator=torch.Generator().manual_seed(0)).to(device)

    def logits(model: nn.Module) -> Tensor:
        return model.decode_head.forward(model.extract_feat(probe))

    expected = logits(teacher)
    try:
        fused = fuse_conv_bn(copy.deepcopy(teacher)).eval().requires_grad_(False)
        got = logits(fused)
        scale = float(expected.abs().max().clamp(min=1.0))
        diff = (got - expected).abs().max().item() if got.shape == expected.shape else None
    except RuntimeError as e:  # a BN of other channels than the conv before it
        fused, diff = None, f'{type(e).__name__}: {e}'
    if not isinstance(diff, float) or diff > 1e-3 * scale:
        print_log(f'fuse_teacher_bn: folding BatchNorm changed the teacher ({diff}); using the '
                  'unfused teacher', logger='current', level=logging.WARNING)
        return teacher
    return fused


@MODELS.register_module()
class IncrementalEncoderDecoder(EncoderDecoder):
    """mmseg ``EncoderDecoder`` whose decode and auxiliary heads learn classes step by step.

    Every head's ``conv_seg`` becomes an ``IncrementalClassifier`` (one 1x1 conv per step). The
    teacher (previous-step model, set by ``IncrementalStepHook``) is held outside the module tree:
    it is never in ``parameters()``, ``state_dict()`` or the optimizer, so a step-t checkpoint
    loads into a plain step-t model. Its logits (and decode-head input features, for ILT) reach
    the distillation losses, computed on the decode head's output before upsampling.

    Args:
        classes_per_step (Sequence[int]): Output channels of each step 0..t, e.g. ``[16, 5]``.
        distill_loss (dict, optional): Loss between student and teacher logits
            (``UnbiasedKDLoss`` for MiB, ``LwFKDLoss`` for LwF/ILT).
        feature_distill_loss (dict, optional): ILT's loss between the student's and teacher's
            decode-head input features.
        fuse_teacher_bn (bool): Fold the frozen teacher's BatchNorm layers into the convolutions
            before them (``mmcv.cnn.fuse_conv_bn``; exact in eval mode, checked on a probe input,
            skipped with a warning if the outputs differ). Saves ~6-10% of the teacher forward.
            Defaults to True.
        teacher_channels_last (bool, optional): Run the teacher in the channels-last memory
            format; None (default) does so on CPU, where oneDNN convolutions are ~20-25% faster
            in NHWC (a MiB step costs one teacher forward on top of fine-tuning).
        old_class_veto (bool): For steps trained on pseudo-labels: a pixel labelled with a new
            class where the teacher's arg-max is an old foreground class is relabelled background
            (which the unbiased losses read as "background or an old class"). A CAM that spills
            onto old objects would otherwise teach the student to overwrite them. Defaults to
            False (true masks need no veto).
        **kwargs: ``EncoderDecoder`` arguments (backbone, decode_head, auxiliary_head...).
    """

    def __init__(self,
                 classes_per_step: Sequence[int],
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 distill_loss: OptConfigType = None,
                 feature_distill_loss: OptConfigType = None,
                 fuse_teacher_bn: bool = True,
                 teacher_channels_last: Optional[bool] = None,
                 old_class_veto: bool = False,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, decode_head=decode_head, **kwargs)
        self.classes_per_step = [int(n) for n in classes_per_step]
        for head in self._heads():
            make_incremental(head, self.classes_per_step)
        self.num_classes = self.out_channels = sum(self.classes_per_step)
        self.distill_loss = MODELS.build(distill_loss) if distill_loss else None
        self.feature_distill_loss = MODELS.build(
            feature_distill_loss) if feature_distill_loss else None
        self.fuse_teacher_bn = fuse_teacher_bn
        self.teacher_channels_last = teacher_channels_last
        self.old_class_veto = old_class_veto
        self._teacher: List[nn.Module] = []  # a list keeps it out of the module tree

    def _heads(self) -> List[nn.Module]:
        heads = [self.decode_head]
        if self.with_auxiliary_head:
            aux = self.auxiliary_head
            heads += list(aux) if isinstance(aux, nn.ModuleList) else [aux]
        return heads

    @property
    def teacher(self) -> Optional[nn.Module]:
        """The frozen previous-step model, or ``None`` at step 0."""
        return self._teacher[0] if self._teacher else None

    def set_teacher(self, teacher: Optional[nn.Module]) -> None:
        """Freeze ``teacher`` (eval mode, no grad) and use it for distillation.

        With ``fuse_teacher_bn`` its BatchNorm layers are folded into the preceding convolutions,
        so ``teacher`` may be replaced by a fused copy: read ``self.teacher`` afterwards. With
        ``teacher_channels_last`` (default: on CPU) its weights are put in NHWC format.
        """
        self._teacher.clear()
        if teacher is None:
            return
        teacher.eval()
        teacher.requires_grad_(False)
        if self.fuse_teacher_bn:
            teacher = fuse_teacher_bn(teacher)
        channels_last = self.teacher_channels_last
        if channels_last is None:
            channels_last = next(teacher.parameters()).device.type == 'cpu'
        if channels_last:
            teacher.to(memory_format=torch.channels_last)
        self._teacher.append(teacher)

    def train(self, mode: bool = True) -> 'IncrementalEncoderDecoder':
        """Switch the student's mode; the teacher stays in eval mode (frozen BN statistics)."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    @torch.no_grad()
    def teacher_forward(self, inputs: Tensor) -> tuple:
        """Teacher logits (N, C_old, h, w) and decode-head input features, one forward."""
        teacher = self.teacher
        feats = teacher.extract_feat(inputs)
        logits = teacher.decode_head.forward(feats)
        head_feats = teacher.decode_head._transform_inputs(feats) \
            if self.feature_distill_loss is not None else None
        return logits, head_feats

    def _auxiliary_head_forward_train(self, inputs: List[Tensor],
                                      data_samples: SampleList) -> dict:
        """Auxiliary heads' losses (``aux_<i>.*``, or ``aux.*`` for a single head) as mmseg's,
        through :func:`head_loss_by_feat`."""
        aux = self.auxiliary_head
        heads = [(f'aux_{i}', head) for i, head in enumerate(aux)] \
            if isinstance(aux, nn.ModuleList) else [('aux', aux)]
        losses = {}
        for prefix, head in heads:
            for k, v in head_loss_by_feat(head, head.forward(inputs), data_samples).items():
                losses[f'{prefix}.{k}'] = v
        return losses

    def veto_old_classes(self, data_samples: SampleList, old_logits: Tensor) -> None:
        """Relabel as background the new-class pixels the teacher gives to an old class.

        Args:
            data_samples (list[SegDataSample]): With ``gt_sem_seg`` (changed in place).
            old_logits (Tensor): Teacher logits, shape (N, C_old, h, w).
        """
        n_old = sum(self.classes_per_step[:-1])
        for i, sample in enumerate(data_samples):
            gt = sample.gt_sem_seg.data
            new = (gt >= n_old) & (gt != IGNORE_INDEX)
            if not new.any():
                continue
            logits = old_logits[i:i + 1]
            if logits.shape[2:] != gt.shape[-2:]:
                logits = resize(logits, gt.shape[-2:], mode='bilinear',
                                align_corners=self.align_corners)
            old = logits.argmax(dim=1).view_as(gt) > 0
            sample.gt_sem_seg.data = torch.where(new & old, torch.zeros_like(gt), gt)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Segmentation losses of every head plus distillation from the teacher.

        Args:
            inputs (Tensor): Images, shape (N, 3, H, W).
            data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``decode.loss_*``, ``aux_<i>.loss_*``, ``loss_kd``, ``loss_feat_kd``.
        """
        use_teacher = self.teacher is not None and (
            self.distill_loss or self.feature_distill_loss or self.old_class_veto)
        if use_teacher:
            old_logits, old_feats = self.teacher_forward(inputs)
            if self.old_class_veto:
                self.veto_old_classes(data_samples, old_logits)
        feats = self.extract_feat(inputs)
        seg_logits = self.decode_head.forward(feats)
        losses = {
            f'decode.{k}': v
            for k, v in head_loss_by_feat(self.decode_head, seg_logits, data_samples).items()
        }
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(feats, data_samples))
        if use_teacher:
            if self.distill_loss is not None:
                if old_logits.shape[2:] != seg_logits.shape[2:]:
                    old_logits = resize(old_logits, seg_logits.shape[2:], mode='bilinear',
                                        align_corners=self.align_corners)
                losses[self.distill_loss.loss_name] = self.distill_loss(seg_logits, old_logits)
            if self.feature_distill_loss is not None:
                new_feats = self.decode_head._transform_inputs(feats)
                losses[self.feature_distill_loss.loss_name] = self.feature_distill_loss(
                    new_feats, old_feats)
        return losses
