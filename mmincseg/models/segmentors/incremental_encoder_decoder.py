"""EncoderDecoder with incremental classifiers and a frozen previous-step teacher."""
import copy
import logging
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.structures import PixelData
from mmengine.logging import MessageHub
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, SampleList
from torch import Tensor

from ...tasks import IGNORE_INDEX
from ..classifiers import make_incremental
from ..utils.head_loss import head_loss_by_feat
from ..utils.pretrained import init_weights_checked
from ..utils.pseudo_label import MEDIANS, classif_adaptive_factor, entropy_pseudo_labels


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


def image_extent(metainfo: dict, batch_shape: Sequence[int]) -> Tuple[int, int, int, int]:
    """Where a sample's image lies in its padded batch: ``(top, bottom, left, right)`` pixels.

    The image covers rows ``top <= y < bottom`` and columns ``left <= x < right`` of the batch
    tensor. Read from the metainfo that mmseg's ``stack_batch`` (``SegDataPreProcessor``) sets:
    ``padding_size`` = (left, right, top, bottom) padding, else ``img_shape`` (the image size
    before batch padding, at the top left); neither means no padding.

    Args:
        metainfo (dict): A data sample's metainfo.
        batch_shape (Sequence[int]): Height and width (H, W) of the padded batch.

    Returns:
        tuple[int, int, int, int]: top, bottom, left, right.
    """
    height, width = int(batch_shape[0]), int(batch_shape[1])
    padding = metainfo.get('padding_size')
    if padding is not None:
        left, right, top, bottom = (int(p) for p in padding)
        return top, height - bottom, left, width - right
    img_shape = metainfo.get('img_shape')
    if img_shape is not None:
        return 0, min(height, int(img_shape[0])), 0, min(width, int(img_shape[1]))
    return 0, height, 0, width


def padding_free_mask(data_samples: SampleList, batch_shape: Sequence[int],
                      size: Sequence[int], device: Union[str, torch.device] = 'cpu'
                      ) -> Optional[Tensor]:
    """Cells of an (h, w) map over a padded batch that lie inside their sample's image.

    Cell ``(i, j)`` of an (h, w) map covers ``[i * H / h, (i + 1) * H / h)`` rows of the (H, W)
    batch (and the same for columns); it is valid when its centre
    ``((i + 1/2) * H / h, (j + 1/2) * W / w)`` lies inside the image (:func:`image_extent`),
    i.e. when at least half of it, in each direction, is image. At the batch resolution
    (h, w = H, W) this is exactly the set of image pixels; at 1/8 it is what nearest-neighbour
    downsampling of the pixel mask gives. Computed in integers (no rounding ties).

    Args:
        data_samples (list[SegDataSample]): The batch's samples (their metainfo).
        batch_shape (Sequence[int]): Height and width (H, W) of the padded batch tensor.
        size (Sequence[int]): Height and width (h, w) of the distilled map.
        device (str | torch.device): Device of the mask. Defaults to 'cpu'.

    Returns:
        Tensor, optional: Bool mask, has a shape (N, 1, h, w); None when every cell is valid (no
        sample is padded at this resolution).
    """
    height, width = int(batch_shape[0]), int(batch_shape[1])
    h, w = int(size[0]), int(size[1])
    extents = torch.tensor([image_extent(s.metainfo, (height, width)) for s in data_samples],
                           dtype=torch.long).view(-1, 4)
    if bool((extents == torch.tensor([0, height, 0, width])).all()):
        return None
    top, bottom, left, right = (extents[:, k:k + 1] for k in range(4))  # (N, 1) each
    row_centre = (2 * torch.arange(h) + 1) * height  # 2h x the centre, in batch pixels
    col_centre = (2 * torch.arange(w) + 1) * width
    rows = (row_centre >= 2 * h * top) & (row_centre < 2 * h * bottom)  # (N, h)
    cols = (col_centre >= 2 * w * left) & (col_centre < 2 * w * right)  # (N, w)
    mask = rows[:, None, :, None] & cols[:, None, None, :]
    if bool(mask.all()):
        return None
    return mask.to(device)


@MODELS.register_module()
class IncrementalEncoderDecoder(EncoderDecoder):
    """mmseg ``EncoderDecoder`` whose decode and auxiliary heads learn classes step by step.

    Every head's ``conv_seg`` becomes an ``IncrementalClassifier`` (one 1x1 conv per step). The
    teacher (previous-step model, set by ``IncrementalStepHook``) is held outside the module tree:
    it is never in ``parameters()``, ``state_dict()`` or the optimizer, so a step-t checkpoint
    loads into a plain step-t model. A parameter regularizer (EWC/PI/RW's penalty, set by
    ``ParameterImportanceHook`` through :meth:`set_regularizer`) is held the same way; None by
    default. Its logits (and decode-head input features, for ILT; backbone
    outputs, for PLOP's POD) reach the distillation losses, the logit terms computed on the decode
    head's output before upsampling (``distill_at='logits'``) or at the label size
    (``distill_at='label'``, as MiB). Cells that batch padding made (outside a sample's image,
    :func:`padding_free_mask`) are left out of every distillation term; the segmentation losses
    ignore them through the 255 label padding. With ``pseudo_label`` (PLOP) the heads learn from
    the teacher's confident labels of the background.

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
        distill_at (str): Resolution of the logit distillation: ``'logits'`` (default), the
            decode head's output (1/8 of the input for BiSeNet; the teacher is resized to it if
            needed), or ``'label'``, student and teacher logits upsampled bilinearly to the label
            (= input) size first, as MiB computes it. ILT's features are always distilled at
            their own resolution.
        pod_loss (dict, optional): PLOP's Local POD (``LocalPODLoss``) between the student's and
            the teacher's ``extract_feat`` outputs (backbone, then neck if any; see
            ``pod_features``) and, with ``pod_logits``, their decode-head logits. Padding cells
            are cropped away per sample (:func:`padding_free_mask`). Defaults to None.
        pod_features (Sequence[int], optional): Indices of the ``extract_feat`` outputs POD
            distils; None (default) takes all of them. What they are depends on the backbone:
            mmseg's ``BiSeNetV1`` returns the FFM output and the two context-path outputs (1/8,
            1/8, 1/16; not the ResNet stages), ``ResNetV1c`` (DeepLabV3, PSPNet) its four stages,
            ``MixVisionTransformer`` (SegFormer) its four stages. PLOP distils the four ResNet
            stages (before their last ReLU; mmseg's outputs are after it), the ASPP output and
            the logits.
        pod_logits (bool): Also distil the logits with POD (PLOP's ``--pod_logits``; its factor is
            the loss's ``logits_weight``). Defaults to True.
        pseudo_label (dict, optional): PLOP's entropy pseudo-labelling of the background at steps
            > 0 (:mod:`mmincseg.models.utils.pseudo_label`): ``threshold`` (floor of the per-class
            thresholds, 0.001), ``num_bins`` (100) and ``median`` (``'plop'`` or ``'exact'``) of
            the threshold pass that ``PseudoLabelThresholdHook`` runs before training,
            ``adaptive_factor`` (True: every head's CE of an image times its trusted share of
            background pixels) and ``min_factor`` (None). Defaults to None.
        allow_partial_pretrained (bool): Accept a ``Pretrained`` init_cfg (or ``pretrained=``)
            that leaves tensors of its module without the file's values (absent from the file,
            of another shape). By default :meth:`init_weights` raises, naming the module, the
            checkpoint and the keys
            (:func:`~mmincseg.models.utils.pretrained.check_pretrained_loaded`): such a file has
            another layout than the architecture built. Defaults to False.
        weak_localizer (dict, optional): A step learned from image-level labels (WILSON): the
            config of a :class:`~mmincseg.models.wilson.WilsonLocalizer` on the feature the
            decode head reads, the deepest one for a head that reads several (``in_channels``,
            ``num_classes``, ``num_old`` filled in here).
            With a teacher, :meth:`loss` is then :meth:`weak_loss`. Its weights are step-local:
            a model without a localizer ignores ``localizer.*`` entries of a state dict.
            Defaults to None.
        **kwargs: ``EncoderDecoder`` arguments (backbone, decode_head, auxiliary_head...).
    """

    DISTILL_AT = ('logits', 'label')
    PSEUDO_LABEL_DEFAULTS = dict(threshold=0.001, num_bins=100, median='plop',
                                 adaptive_factor=True, min_factor=None)

    def __init__(self,
                 classes_per_step: Sequence[int],
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 distill_loss: OptConfigType = None,
                 feature_distill_loss: OptConfigType = None,
                 fuse_teacher_bn: bool = True,
                 teacher_channels_last: Optional[bool] = None,
                 old_class_veto: bool = False,
                 distill_at: str = 'logits',
                 pod_loss: OptConfigType = None,
                 pod_features: Optional[Sequence[int]] = None,
                 pod_logits: bool = True,
                 pseudo_label: OptConfigType = None,
                 allow_partial_pretrained: bool = False,
                 weak_localizer: OptConfigType = None,
                 **kwargs) -> None:
        if distill_at not in self.DISTILL_AT:
            raise ValueError(f'model.distill_at={distill_at!r} is not supported; use one of '
                             f'{self.DISTILL_AT}')
        self.pseudo_label = self._check_pseudo_label(pseudo_label)
        super().__init__(backbone=backbone, decode_head=decode_head, **kwargs)
        self.classes_per_step = [int(n) for n in classes_per_step]
        for head in self.heads():
            make_incremental(head, self.classes_per_step)
        self.num_classes = self.out_channels = sum(self.classes_per_step)
        self.distill_loss = MODELS.build(distill_loss) if distill_loss else None
        self.feature_distill_loss = MODELS.build(
            feature_distill_loss) if feature_distill_loss else None
        self.fuse_teacher_bn = fuse_teacher_bn
        self.teacher_channels_last = teacher_channels_last
        self.old_class_veto = old_class_veto
        self.distill_at = distill_at
        self.allow_partial_pretrained = allow_partial_pretrained
        self.pod_loss = MODELS.build(pod_loss) if pod_loss else None
        self.pod_features = None if pod_features is None else [int(i) for i in pod_features]
        self.pod_logits = pod_logits
        #: per-class thresholds of the pseudo-labelling, set by PseudoLabelThresholdHook
        self.pseudo_label_thresholds: Optional[Tensor] = None
        self._teacher: List[nn.Module] = []  # a list keeps it out of the module tree
        self._regularizer: List[nn.Module] = []  # as the teacher: never in state_dict()
        self.localizer = None
        if weak_localizer is not None:
            cfg = dict(weak_localizer)
            in_channels = self.decode_head.in_channels  # a list: the deepest map's
            if isinstance(in_channels, (list, tuple)):
                in_channels = in_channels[-1]
            cfg.setdefault('in_channels', in_channels)
            cfg.setdefault('num_classes', self.num_classes)
            cfg.setdefault('num_old', sum(self.classes_per_step[:-1]))
            self.localizer = MODELS.build(cfg)
        self._register_load_state_dict_pre_hook(self._drop_step_local_localizer)

    def _drop_step_local_localizer(self, state_dict, prefix, *args) -> None:
        """A model without a localizer loads a weak step's checkpoint without its localizer."""
        if self.localizer is None:
            for key in [k for k in state_dict if k.startswith(prefix + 'localizer.')]:
                del state_dict[key]

    @classmethod
    def _check_pseudo_label(cls, pseudo_label: Optional[dict]) -> Optional[dict]:
        """``model.pseudo_label`` with its defaults filled in.

        Raises:
            ValueError: unknown keys or median rule, naming the valid ones.
        """
        if pseudo_label is None:
            return None
        unknown = set(pseudo_label) - set(cls.PSEUDO_LABEL_DEFAULTS)
        if unknown:
            raise ValueError(f'model.pseudo_label: unknown keys {sorted(unknown)}; valid: '
                             f'{sorted(cls.PSEUDO_LABEL_DEFAULTS)}')
        out = dict(cls.PSEUDO_LABEL_DEFAULTS, **pseudo_label)
        if out['median'] not in MEDIANS:
            raise ValueError(f"model.pseudo_label.median={out['median']!r} is not supported; use "
                             f'one of {MEDIANS}')
        return out

    def init_weights(self) -> None:
        """mmengine's weight init, then a check that each ``Pretrained`` init it ran loaded every
        tensor of its module (unless ``allow_partial_pretrained``).

        Raises:
            ValueError: a pretrained file left tensors of its module unloaded.
        """
        init_weights_checked(self, super().init_weights, self.allow_partial_pretrained)

    def named_heads(self) -> List[Tuple[str, nn.Module]]:
        """Every head with the prefix of its losses: ``decode``, then ``aux_<i>`` for a list of
        auxiliary heads or ``aux`` for a single one (mmseg's naming)."""
        heads = [('decode', self.decode_head)]
        if self.with_auxiliary_head:
            aux = self.auxiliary_head
            heads += [(f'aux_{i}', head) for i, head in enumerate(aux)] \
                if isinstance(aux, nn.ModuleList) else [('aux', aux)]
        return heads

    def heads(self) -> List[nn.Module]:
        """The decode head, then the auxiliary heads in order."""
        return [head for _, head in self.named_heads()]

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

    @property
    def regularizer(self) -> Optional[nn.Module]:
        """The parameter penalty added to the losses (``ParameterPenaltyLoss``), or ``None``."""
        return self._regularizer[0] if self._regularizer else None

    def set_regularizer(self, regularizer: Optional[nn.Module]) -> None:
        """Add ``regularizer(dict(self.named_parameters()))`` to the training losses as
        ``regularizer.loss_name`` (``loss_reg``); None removes it. It stays out of the module
        tree: not in ``parameters()``, ``state_dict()`` or the optimizer."""
        self._regularizer.clear()
        if regularizer is not None:
            self._regularizer.append(regularizer)

    def train(self, mode: bool = True) -> 'IncrementalEncoderDecoder':
        """Switch the student's mode; the teacher stays in eval mode (frozen BN statistics)."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    @torch.no_grad()
    def teacher_forward(self, inputs: Tensor, backbone: bool = False) -> tuple:
        """Teacher outputs of one forward.

        Args:
            inputs (Tensor): Images, has a shape (N, 3, H, W).
            backbone (bool): Also return the ``extract_feat`` outputs POD distils
                (:meth:`pod_feature_maps`). Defaults to False.

        Returns:
            tuple: Logits (N, C_old, h, w) and the decode-head input features (None without
            ``feature_distill_loss``, ILT's), then with ``backbone`` the list of POD maps.
        """
        teacher = self.teacher
        feats = teacher.extract_feat(inputs)
        logits = teacher.decode_head.forward(feats)
        head_feats = teacher.decode_head._transform_inputs(feats) \
            if self.feature_distill_loss is not None else None
        if backbone:
            return logits, head_feats, self.pod_feature_maps(feats)
        return logits, head_feats

    def pod_feature_maps(self, feats: Union[Tensor, Sequence[Tensor]]) -> List[Tensor]:
        """The ``extract_feat`` outputs POD distils: those of ``pod_features`` (all if None).

        Raises:
            ValueError: an index of ``model.pod_features`` is out of range.
        """
        feats = [feats] if isinstance(feats, Tensor) else list(feats)
        if self.pod_features is None:
            return feats
        bad = [i for i in self.pod_features if not -len(feats) <= i < len(feats)]
        if bad:
            raise ValueError(f'model.pod_features={self.pod_features}: indices {bad} out of range; '
                             f'the backbone (extract_feat) returns {len(feats)} maps')
        return [feats[i] for i in self.pod_features]

    def set_pseudo_label_thresholds(self, thresholds: Optional[Tensor]) -> None:
        """Per-class thresholds of the pseudo-labelling, has a shape (C_t, ) (or None)."""
        self.pseudo_label_thresholds = None if thresholds is None else \
            torch.as_tensor(thresholds, dtype=torch.float32).flatten()

    def pseudo_labelled(self, data_samples: SampleList,
                        old_logits: Tensor) -> Tuple[SampleList, Optional[Tensor]]:
        """PLOP's pseudo-labels and adaptive factor for this batch (the samples left as they are).

        Args:
            data_samples (list[SegDataSample]): With ``gt_sem_seg``.
            old_logits (Tensor): Teacher logits, has a shape (N, C_old, h, w); upsampled
                bilinearly to the label size.

        Returns:
            tuple: Copies of the samples whose ``gt_sem_seg`` is pseudo-labelled
            (:func:`~mmincseg.models.utils.pseudo_label.entropy_pseudo_labels`) and the per-pixel
            CE factor (N, H, W) (None without ``adaptive_factor``).

        Raises:
            ValueError: the thresholds were not computed.
        """
        if self.pseudo_label_thresholds is None:
            raise ValueError('model.pseudo_label is set but its thresholds are not computed: add '
                             "dict(type='PseudoLabelThresholdHook') to custom_hooks (the resolver "
                             "does for method='plop') or call model.set_pseudo_label_thresholds")
        labels = torch.stack([s.gt_sem_seg.data for s in data_samples]).squeeze(1)  # (N, H, W)
        if old_logits.shape[2:] != labels.shape[-2:]:
            old_logits = resize(old_logits, labels.shape[-2:], mode='bilinear',
                                align_corners=self.align_corners)
        new_labels, trusted, background = entropy_pseudo_labels(
            labels, old_logits, self.pseudo_label_thresholds, self.num_classes)
        samples = []
        for sample, label in zip(data_samples, new_labels):
            sample = sample.clone()
            sample.gt_sem_seg = PixelData(data=label[None])
            samples.append(sample)
        weight = None
        if self.pseudo_label['adaptive_factor']:
            factor = classif_adaptive_factor(trusted, background, self.pseudo_label['min_factor'])
            weight = factor[:, None, None].expand_as(new_labels)
        return samples, weight

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

    def distillation_losses(self, seg_logits: Tensor, old_logits: Optional[Tensor],
                            data_samples: SampleList, batch_shape: Sequence[int],
                            new_feats: Optional[Union[Tensor, List[Tensor]]] = None,
                            old_feats: Optional[Union[Tensor, List[Tensor]]] = None,
                            pod_feats: Optional[List[Tensor]] = None,
                            old_pod_feats: Optional[List[Tensor]] = None) -> dict:
        """The distillation terms of :meth:`loss`, from given student and teacher outputs.

        Every term is averaged over the cells inside the samples' images only
        (:func:`padding_free_mask` at the resolution of each distilled tensor).

        Args:
            seg_logits (Tensor): Student decode-head logits, has a shape (N, C, h, w).
            old_logits (Tensor, optional): Teacher logits, has a shape (N, C_old, h', w').
            data_samples (list[SegDataSample]): The batch's samples (metainfo, ``gt_sem_seg``).
            batch_shape (Sequence[int]): Height and width (H, W) of the padded input batch.
            new_feats (Tensor | list[Tensor], optional): Student decode-head input features.
            old_feats (Tensor | list[Tensor], optional): Teacher features of the same shapes.
            pod_feats (list[Tensor], optional): Student maps POD distils
                (:meth:`pod_feature_maps`); None skips POD.
            old_pod_feats (list[Tensor], optional): Teacher maps of the same shapes.

        Returns:
            dict[str, Tensor]: ``loss_kd``, ``loss_feat_kd``, ``loss_pod`` and
            ``loss_pod_logits`` (the losses' ``loss_name``), as configured.
        """
        losses = {}
        if self.distill_loss is not None and old_logits is not None:
            size = seg_logits.shape[2:]
            if self.distill_at == 'label':
                gt = data_samples[0].get('gt_sem_seg') if data_samples else None
                size = gt.shape[-2:] if gt is not None else tuple(batch_shape)
                if seg_logits.shape[2:] != size:
                    seg_logits = resize(seg_logits, size, mode='bilinear',
                                        align_corners=self.align_corners)
            if old_logits.shape[2:] != size:
                old_logits = resize(old_logits, size, mode='bilinear',
                                    align_corners=self.align_corners)
            valid = padding_free_mask(data_samples, batch_shape, size, seg_logits.device)
            losses[self.distill_loss.loss_name] = self.distill_loss(seg_logits, old_logits,
                                                                    valid_mask=valid)
        if self.feature_distill_loss is not None and new_feats is not None:
            levels = [new_feats] if isinstance(new_feats, Tensor) else list(new_feats)
            masks = [
                padding_free_mask(data_samples, batch_shape, f.shape[-2:], f.device)
                if f.dim() == 4 else None for f in levels
            ]
            losses[self.feature_distill_loss.loss_name] = self.feature_distill_loss(
                new_feats, old_feats,
                valid_mask=None if all(m is None for m in masks) else masks)
        if self.pod_loss is not None and pod_feats is not None:
            losses.update(self._pod_losses(seg_logits, old_logits, data_samples, batch_shape,
                                           pod_feats, old_pod_feats))
        return losses

    def _pod_losses(self, seg_logits: Tensor, old_logits: Optional[Tensor],
                    data_samples: SampleList, batch_shape: Sequence[int],
                    pod_feats: List[Tensor], old_pod_feats: List[Tensor]) -> dict:
        """``pod_loss`` on the POD maps and (``pod_logits``) the decode-head logits, each level
        cropped to every sample's image cells."""
        masks = [padding_free_mask(data_samples, batch_shape, f.shape[-2:], f.device)
                 for f in pod_feats]
        logits = logits_mask = None
        if self.pod_logits and old_logits is not None:
            logits = seg_logits
            if old_logits.shape[2:] != logits.shape[2:]:
                old_logits = resize(old_logits, logits.shape[2:], mode='bilinear',
                                    align_corners=self.align_corners)
            logits_mask = padding_free_mask(data_samples, batch_shape, logits.shape[2:],
                                            logits.device)
        return self.pod_loss(pod_feats, old_pod_feats, logits, old_logits, valid_mask=masks,
                             logits_valid_mask=logits_mask, num_classes=self.num_classes,
                             num_new_classes=self.classes_per_step[-1])

    def losses_from_outputs(self, seg_logits: Tensor, aux_logits: Optional[Sequence[Tensor]],
                            data_samples: SampleList, batch_shape: Sequence[int],
                            old_logits: Optional[Tensor] = None,
                            new_feats: Optional[Union[Tensor, List[Tensor]]] = None,
                            old_feats: Optional[Union[Tensor, List[Tensor]]] = None,
                            pod_feats: Optional[List[Tensor]] = None,
                            old_pod_feats: Optional[List[Tensor]] = None) -> dict:
        """Every loss of :meth:`loss`, from given student and teacher outputs.

        :meth:`loss` is the forwards (teacher, backbone, heads) followed by this method, which
        is the only place the training losses are put together: with ``old_class_veto`` the
        pseudo-labels are first vetoed by ``old_logits`` (:meth:`veto_old_classes`, in place);
        with ``pseudo_label`` the heads learn from PLOP's pseudo-labels, their CE scaled by the
        adaptive factor (:meth:`pseudo_labelled`, on copies of the samples); then each head's
        losses (:func:`head_loss_by_feat`), the distillation terms
        (:meth:`distillation_losses`) and the parameter penalty (:attr:`regularizer`, when set)
        are computed. Speed measurements time it on recorded
        outputs (``tools/analysis_tools``).

        Args:
            seg_logits (Tensor): Decode-head logits, has a shape (N, C, h, w).
            aux_logits (Sequence[Tensor], optional): One output per auxiliary head, in the order
                of ``auxiliary_head``; None or empty for a model without auxiliary heads.
            data_samples (list[SegDataSample]): With ``gt_sem_seg``.
            batch_shape (Sequence[int]): Height and width (H, W) of the padded input batch.
            old_logits (Tensor, optional): Teacher logits, has a shape (N, C_old, h', w'); None
                without a teacher (no veto, no distillation).
            new_feats (Tensor | list[Tensor], optional): Student decode-head input features
                (ILT); None skips the feature distillation.
            old_feats (Tensor | list[Tensor], optional): Teacher features of the same shapes.
            pod_feats (list[Tensor], optional): Student maps POD distils; None skips POD.
            old_pod_feats (list[Tensor], optional): Teacher maps of the same shapes.

        Returns:
            dict[str, Tensor]: ``decode.loss_*``, ``aux_<i>.loss_*`` (``aux.*`` for a single
            head), ``loss_kd``, ``loss_feat_kd``, ``loss_pod``, ``loss_pod_logits``,
            ``loss_reg``, as configured, and the ``acc_seg`` of each head.
        """
        aux_heads = self.named_heads()[1:]
        aux_logits = list(aux_logits or [])
        if len(aux_logits) != len(aux_heads):
            raise ValueError(f'losses_from_outputs: got {len(aux_logits)} auxiliary logits for '
                             f'{len(aux_heads)} auxiliary heads; pass one output per head of '
                             '`auxiliary_head`, in order')
        if self.old_class_veto and old_logits is not None:
            self.veto_old_classes(data_samples, old_logits)
        head_samples, pixel_weight = data_samples, None
        if self.pseudo_label is not None and old_logits is not None:
            head_samples, pixel_weight = self.pseudo_labelled(data_samples, old_logits)
        losses = {
            f'decode.{k}': v
            for k, v in head_loss_by_feat(self.decode_head, seg_logits, head_samples,
                                          pixel_weight).items()
        }
        for (prefix, head), logits in zip(aux_heads, aux_logits):
            for k, v in head_loss_by_feat(head, logits, head_samples, pixel_weight).items():
                losses[f'{prefix}.{k}'] = v
        if old_logits is not None:
            losses.update(self.distillation_losses(seg_logits, old_logits, data_samples,
                                                   batch_shape, new_feats, old_feats,
                                                   pod_feats, old_pod_feats))
        if self.regularizer is not None:
            losses[self.regularizer.loss_name] = self.regularizer(dict(self.named_parameters()))
        return losses

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Segmentation losses of every head plus distillation from the teacher.

        The forwards of the teacher (when a distillation loss or the veto needs it), the
        backbone and every head, then :meth:`losses_from_outputs` on their outputs.

        Args:
            inputs (Tensor): Images, shape (N, 3, H, W).
            data_samples (list[SegDataSample]): With ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``decode.loss_*``, ``aux_<i>.loss_*``, ``loss_kd``, ``loss_feat_kd``,
            ``loss_pod``, ``loss_pod_logits``, as configured.
        """
        if self.localizer is not None and self.teacher is not None:
            return self.weak_loss(inputs, data_samples)
        use_teacher = self.teacher is not None and bool(
            self.distill_loss or self.feature_distill_loss or self.old_class_veto
            or self.pod_loss or self.pseudo_label)
        use_pod = use_teacher and self.pod_loss is not None
        old_logits = old_feats = new_feats = pod_feats = old_pod_feats = None
        if use_pod:
            old_logits, old_feats, old_pod_feats = self.teacher_forward(inputs, backbone=True)
        elif use_teacher:
            old_logits, old_feats = self.teacher_forward(inputs)
        feats = self.extract_feat(inputs)
        seg_logits = self.decode_head.forward(feats)
        aux_logits = [head.forward(feats) for head in self.heads()[1:]]
        if use_teacher and self.feature_distill_loss is not None:
            new_feats = self.decode_head._transform_inputs(feats)
        if use_pod:
            pod_feats = self.pod_feature_maps(feats)
        return self.losses_from_outputs(seg_logits, aux_logits, data_samples, inputs.shape[2:],
                                        old_logits, new_feats, old_feats, pod_feats,
                                        old_pod_feats)

    def _localizer_input(self, feats) -> Tensor:
        """The encoder feature WILSON's localizer reads: the decode head's input, or the
        deepest of its inputs for a head that reads several maps (SegFormer's, UPerNet's), as
        WILSON's localizer reads the backbone's last stage."""
        encoder_feat = self.decode_head._transform_inputs(feats)
        if isinstance(encoder_feat, (list, tuple)):
            encoder_feat = encoder_feat[-1]
        return encoder_feat

    @torch.no_grad()
    def weak_targets(self, inputs: Tensor, data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """The soft targets a WILSON step trains every head on, and the image weights.

        What :meth:`weak_loss` gives the heads after the warm-up (the localizer's label-masked
        pseudo-labels for the new channels, the teacher's for background and old channels),
        resized to ``inputs``; for measuring the online pseudo-labels against true masks.

        Args:
            inputs (Tensor): Images, shape (N, 3, H, W).
            data_samples (list[SegDataSample]): With ``metainfo['img_labels']``.

        Returns:
            tuple[Tensor, Tensor]: Targets (N, C, H, W) in [0, 1] and weights (N,) (0: the
            image teaches nothing, its pseudo-labels miss a labelled class or add one).

        Raises:
            ValueError: the model has no localizer or no teacher, or is in training mode (its
                BatchNorm statistics would move).
        """
        if self.localizer is None or self.teacher is None:
            raise ValueError('weak_targets needs a WILSON step model: a weak_localizer and the '
                             'previous step as teacher (set_teacher)')
        if self.training:
            raise ValueError('weak_targets measures a trained step: call model.eval() first')
        labels = self.localizer.image_labels(data_samples, inputs.device)
        old_logits, _ = self.teacher_forward(inputs)
        encoder_feat = self._localizer_input(self.extract_feat(inputs))
        targets, weights = self.localizer.targets(encoder_feat, old_logits, labels)
        return resize(targets, inputs.shape[2:], mode='bilinear', align_corners=False), weights

    def weak_loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """WILSON's losses of a step learned from image-level labels (``weak_localizer``).

        The localizer learns from the labels and the teacher's prior at every epoch, and after
        its warm-up (the epoch read from mmengine's ``MessageHub``) from its own PAMR-refined
        masks too (``loss_loc_self``); after the warm-up every head learns the
        localizer's and the teacher's soft targets; ILT-style feature distillation applies if
        configured. No pixel labels are read.

        Args:
            inputs (Tensor): Images, shape (N, 3, H, W).
            data_samples (list[SegDataSample]): With ``metainfo['img_labels']``.

        Returns:
            dict[str, Tensor]: ``loss_loc_cls``, ``loss_loc_prior``, ``loss_loc_self`` (after
            the warm-up), ``decode.loss_wilson_seg``,
            ``aux_<i>.loss_wilson_seg`` (``aux.*`` for a single head), ``loss_feat_kd``.
        """
        localizer = self.localizer
        labels = localizer.image_labels(data_samples, inputs.device)
        old_logits, old_feats = self.teacher_forward(inputs)
        feats = self.extract_feat(inputs)
        outputs = [(name, head.forward(feats)) for name, head in self.named_heads()]
        encoder_feat = self._localizer_input(feats)
        epoch = MessageHub.get_current_instance().get_info('epoch') or 0
        warming_up = localizer.warming_up(epoch)
        losses = localizer.loss(encoder_feat, old_logits, labels,
                                images=None if warming_up else inputs)
        if warming_up:
            targets = None
        else:
            targets, weights = localizer.targets(encoder_feat, old_logits, labels)
        for name, logits in outputs:
            losses[f'{name}.loss_wilson_seg'] = 0 * logits.sum() if targets is None else \
                localizer.seg_loss(logits, targets, weights)
        if self.feature_distill_loss is not None:
            losses.update(self.distillation_losses(
                outputs[0][1], None, data_samples, inputs.shape[2:],
                self.decode_head._transform_inputs(feats), old_feats))
        return losses
