"""SEAM network: backbone + bias-free 1x1 CAM classifier + Pixel Correlation Module."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor

from ...tasks import IGNORE_INDEX
from ..utils.pretrained import init_weights_checked
from .equivariance import EquivariantTransform
from .inference import cams_to_pseudo_label, infer_cams
from .losses import (CAM_NORMS, adaptive_min_pool_loss, background_from_foreground, cam_cls_loss,
                     equivariant_cross_reg_loss, equivariant_reg_loss, mask_cams, max_onehot,
                     negative_region_loss)
from .pcm import PixelCorrelationModule

DEFAULT_DATA_PREPROCESSOR = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=8)
DEFAULT_TEST_CFG = dict(scales=(0.5, 1.0, 1.5, 2.0), flip=True, bg_alpha=0.26, ignore_below=None,
                        max_foreground=None, adaptive_alpha=False, use_pcm=True, norm='min_max')


@MODELS.register_module()
class SEAMNet(BaseModel):
    """SEAM (Wang et al., CVPR 2020) CAM network for image-level supervision.

    ``forward(inputs, data_samples, mode)`` follows MMEngine: ``'loss'`` returns the SEAM losses of
    the siamese pair (image, transformed image), ``'predict'`` returns data samples whose
    ``pred_sem_seg`` is the pseudo-label (class ids, e.g. VOC ids) made from multi-scale refined
    CAMs, ``'tensor'`` returns ``(cam, refined_cam)`` at feature resolution.

    Image-level labels are read from ``data_samples[i].metainfo['img_labels']`` (class ids present,
    background excluded). Channel k of the classifier is class ``class_ids[k]``; channel 0 must be
    background (id 0); labels not in ``class_ids`` are ignored.

    The defaults are SEAM's training as its authors' code does it (``network/resnet38_SEAM.py``,
    ``train_SEAM.py``, ``infer_SEAM.py``); each switch below restores the simpler variant this
    class had before (in brackets): dropout 0.5 before the classifier [0], min-max CAM
    normalisation in the regularisers and at inference [max], the PCM fed the CAM with the
    non-maximal foreground channels zeroed [all kept], the PCM embedding initialised with gain 4
    [1], an ECR target that is detached and max-onehot so ECR trains the PCM only [the CAM as is,
    ECR also pulling the CAM and the backbone], and the adaptive min-pooling term on the PCM
    output [absent]. SEAM's frozen first blocks and frozen BatchNorm are backbone settings
    (``frozen_stages``, ``norm_eval``, ``norm_cfg.requires_grad`` in
    configs/_base_/models/seam_r50.py).

    Learning-rate multipliers for the new layers (SEAM: 10x) are set in the optimizer config, e.g.
    ``paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=10), 'pcm': dict(lr_mult=10)})``.

    Args:
        backbone (dict): Backbone config built by mmseg's ``MODELS`` (SEAM's ResNetV1c-50 at
            output stride 8 returning layer2, layer3, layer4 is in configs/_base_/models/
            seam_r50.py, the one home of SEAM's settings).
        class_ids (Sequence[int]): Class id of every classifier channel, starting with background
            0. Default: 0..20 (all VOC classes).
        in_channels (int, optional): Channels of the CAM feature. None infers them from a ResNet
            backbone (``base_channels``, ``block.expansion``, ``out_indices``).
        cam_index (int): Index in the backbone outputs of the CAM feature. Default: -1.
        pcm_indices (Sequence[int]): Indices in the backbone outputs of the PCM features.
            Default: (0, 1).
        pcm_in_channels (Sequence[int], optional): Their channels; None infers them as above.
        pcm_channels (Sequence[int]): PCM projection channels. Default: (64, 128).
        pcm_embed_channels (int): PCM embedding channels. Default: 192.
        transform (dict): Siamese transform, ``dict(scale_factor=0.3, flip=False)``.
        loss_cls_weight (float): Weight of the classification loss. Default: 1.0.
        loss_er_weight (float): Weight of ER. Default: 1.0.
        loss_ecr_weight (float): Weight of ECR. Default: 1.0.
        ecr_top_ratio (float): Fraction of largest differences averaged by ECR. Default: 0.2.
        dropout_ratio (float): ``Dropout2d`` probability on the CAM feature before the
            classifier. Default: 0.5 (SEAM's ``dropout7``); 0 disables it.
        cam_norm (str): Per-channel normalisation of the CAMs fed to ER and ECR, ``'min_max'``
            (SEAM, :func:`~.losses.min_max_norm`) or ``'max'`` (:func:`~.losses.max_norm`).
            Default: 'min_max'.
        pcm_suppress_non_max (bool): Zero the non-maximal foreground channels of the CAM fed
            to the PCM (:func:`~.pcm.pcm_cam_input`). Default: True (SEAM).
        pcm_embed_init_gain (float): Xavier gain of the PCM embedding conv. Default: 4.0 (SEAM).
        ecr_detach_target (bool): ECR compares each PCM output with the other branch's CAM
            without gradient, so ECR trains the PCM only. Default: True (SEAM).
        ecr_max_onehot (bool): That CAM keeps only its best foreground class per pixel
            (:func:`~.losses.max_onehot`). Default: True (SEAM).
        loss_min_pool_weight (float): Weight of the adaptive min-pooling term on the
            label-masked PCM output of both branches (:func:`~.losses.adaptive_min_pool_loss`,
            logged as ``loss_min_pool``). Default: 1.0 (SEAM adds it to its cls loss); 0 drops
            it.
        min_pool_ratio (float): Fraction of pixels it pools. Default: 0.25 (SEAM).
        loss_negative_weight (float): Weight of :func:`~.losses.negative_region_loss` on the
            pixels of ``gt_sem_seg`` that hold an id other than background 0 and ignore 255
            (the previous step's confident old classes, loaded by the resolver when
            ``incremental.seam.negatives`` is set; logged as ``loss_negative``). Default: 0.0
            (off; SEAM has no such term), and then no mask is read.
        test_cfg (dict, optional): Pseudo-label inference: ``scales``, ``flip``, ``bg_alpha``,
            ``ignore_below``, ``max_foreground``, ``adaptive_alpha``, ``use_pcm``, ``norm``
            (``'min_max'`` as SEAM or ``'max'``; defaults in ``DEFAULT_TEST_CFG``; see
            :func:`infer_cams`, :func:`cams_to_pseudo_label`).
        data_preprocessor (dict | nn.Module, optional): Default: mmseg ``SegDataPreProcessor`` with
            ImageNet mean/std, BGR->RGB, size_divisor 8.
        init_cfg (dict | list, optional): MMEngine init config.
        allow_partial_pretrained (bool): Accept a ``Pretrained`` init_cfg (the backbone's
            ImageNet weights) that leaves tensors of its module unloaded; by default
            :meth:`init_weights` raises (see ``IncrementalEncoderDecoder``). Defaults to False.
    """

    def __init__(self,
                 backbone: dict,
                 class_ids: Sequence[int] = tuple(range(21)),
                 in_channels: Optional[int] = None,
                 cam_index: int = -1,
                 pcm_indices: Sequence[int] = (0, 1),
                 pcm_in_channels: Optional[Sequence[int]] = None,
                 pcm_channels: Sequence[int] = (64, 128),
                 pcm_embed_channels: int = 192,
                 transform: Optional[dict] = None,
                 loss_cls_weight: float = 1.0,
                 loss_er_weight: float = 1.0,
                 loss_ecr_weight: float = 1.0,
                 ecr_top_ratio: float = 0.2,
                 dropout_ratio: float = 0.5,
                 cam_norm: str = 'min_max',
                 pcm_suppress_non_max: bool = True,
                 pcm_embed_init_gain: float = 4.0,
                 ecr_detach_target: bool = True,
                 ecr_max_onehot: bool = True,
                 loss_min_pool_weight: float = 1.0,
                 min_pool_ratio: float = 0.25,
                 loss_negative_weight: float = 0.0,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 allow_partial_pretrained: bool = False) -> None:
        if data_preprocessor is None:
            data_preprocessor = copy.deepcopy(DEFAULT_DATA_PREPROCESSOR)
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)

        self.class_ids = self._check_class_ids(class_ids)
        self.num_classes = len(self.class_ids)
        self._channel_of = {c: k for k, c in enumerate(self.class_ids)}

        self.backbone = MODELS.build(copy.deepcopy(backbone))
        out_channels = self._backbone_out_channels()
        self.cam_index = cam_index
        self.pcm_indices = tuple(pcm_indices)
        if in_channels is None:
            in_channels = self._channels_at(out_channels, cam_index, 'in_channels')
        if pcm_in_channels is None:
            pcm_in_channels = [
                self._channels_at(out_channels, i, 'pcm_in_channels') for i in self.pcm_indices]
        self.in_channels = int(in_channels)

        if not 0 <= dropout_ratio < 1:
            raise ValueError(f'SEAMNet dropout_ratio must be in [0, 1), got {dropout_ratio}')
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.classifier = nn.Conv2d(self.in_channels, self.num_classes, kernel_size=1, bias=False)
        nn.init.xavier_uniform_(self.classifier.weight)
        self.pcm = PixelCorrelationModule(
            in_channels=pcm_in_channels,
            proj_channels=pcm_channels,
            embed_channels=pcm_embed_channels,
            suppress_non_max=pcm_suppress_non_max,
            embed_init_gain=pcm_embed_init_gain)

        self.transform = EquivariantTransform(**(transform or {}))
        self.loss_cls_weight = loss_cls_weight
        self.loss_er_weight = loss_er_weight
        self.loss_ecr_weight = loss_ecr_weight
        self.ecr_top_ratio = ecr_top_ratio
        self.cam_norm = self._check_norm(cam_norm, 'cam_norm')
        self.ecr_detach_target = ecr_detach_target
        self.ecr_max_onehot = ecr_max_onehot
        self.loss_min_pool_weight = loss_min_pool_weight
        self.min_pool_ratio = min_pool_ratio
        if loss_negative_weight < 0:
            raise ValueError(f'SEAMNet loss_negative_weight must be >= 0, got '
                             f'{loss_negative_weight}')
        self.loss_negative_weight = loss_negative_weight
        unknown = set(test_cfg or {}) - set(DEFAULT_TEST_CFG)
        if unknown:
            raise ValueError(f'SEAMNet test_cfg has unknown keys {sorted(unknown)}; valid keys: '
                             f'{sorted(DEFAULT_TEST_CFG)}')
        self.test_cfg = {**DEFAULT_TEST_CFG, **(test_cfg or {})}
        self._check_norm(self.test_cfg['norm'], 'test_cfg.norm')
        self.allow_partial_pretrained = allow_partial_pretrained

    def init_weights(self) -> None:
        """mmengine's weight init, then a check that each ``Pretrained`` init it ran loaded every
        tensor of its module (unless ``allow_partial_pretrained``).

        Raises:
            ValueError: a pretrained file left tensors of its module unloaded.
        """
        init_weights_checked(self, super().init_weights, self.allow_partial_pretrained)

    # ----------------------------------------------------------------------------------- setup
    def get_extra_state(self) -> dict:
        """Saved in every state dict / checkpoint: the class id of every classifier channel."""
        return dict(class_ids=list(self.class_ids))

    def set_extra_state(self, state: dict) -> None:
        """Refuse weights trained for other classes (same channel count, other class ids)."""
        saved = state.get('class_ids') if isinstance(state, dict) else None
        if saved is not None and [int(c) for c in saved] != self.class_ids:
            raise ValueError(f'SEAMNet weights were trained for class_ids {list(saved)}, this '
                             f'model has class_ids {self.class_ids}; use the SEAM checkpoint of '
                             'the same split and step')

    @staticmethod
    def _check_norm(norm: str, key: str) -> str:
        if norm not in CAM_NORMS:
            raise ValueError(f'SEAMNet {key}={norm!r} is not a CAM normalisation; use one of '
                             f'{sorted(CAM_NORMS)}')
        return norm

    @staticmethod
    def _check_class_ids(class_ids: Sequence[int]) -> List[int]:
        ids = [int(c) for c in class_ids]
        if len(ids) < 2 or ids[0] != 0:
            raise ValueError(f'SEAMNet class_ids must start with background 0 and contain at least '
                             f'one foreground class, got {ids}')
        if len(set(ids)) != len(ids) or min(ids) < 0:
            raise ValueError(f'SEAMNet class_ids must be distinct non-negative ids, got {ids}')
        return ids

    def _backbone_out_channels(self) -> Optional[List[int]]:
        """Channels of each backbone output for mmseg-style ResNets; None if unknown."""
        backbone = self.backbone
        try:
            expansion = backbone.block.expansion
            return [backbone.base_channels * 2**i * expansion for i in backbone.out_indices]
        except AttributeError:
            return None

    def _channels_at(self, out_channels: Optional[List[int]], index: int, key: str) -> int:
        if out_channels is None:
            name = type(self.backbone).__name__
            raise ValueError(f'cannot infer the channels of backbone {name}; set SEAMNet {key} '
                             f'explicitly')
        try:
            return out_channels[index]
        except IndexError:
            raise ValueError(f'backbone output index {index} is out of range: the backbone returns '
                             f'{len(out_channels)} maps (channels {out_channels}); fix cam_index / '
                             f'pcm_indices or the backbone out_indices') from None

    # -------------------------------------------------------------------------------- forward
    def extract_cams(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """CAM and PCM-refined CAM of a batch.

        Args:
            inputs (Tensor): Normalised images, has a shape (N, 3, H, W).

        Returns:
            tuple[Tensor, Tensor]: ``cam`` and ``refined_cam``, each has a shape (N, C, h, w),
            C = ``num_classes``, (h, w) the size of the CAM feature (H/8, W/8 by default).
        """
        feats = self.backbone(inputs)
        cam = self.classifier(self.dropout(feats[self.cam_index]))
        refined = self.pcm(cam, [feats[i] for i in self.pcm_indices], inputs)
        return cam, refined

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], List[SegDataSample],
                                               Tuple[Tensor, Tensor]]:
        """MMEngine entry point.

        Args:
            inputs (Tensor): Normalised images, has a shape (N, 3, H, W).
            data_samples (list[SegDataSample], optional): With ``metainfo['img_labels']``.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.

        Returns:
            dict | list[SegDataSample] | tuple[Tensor, Tensor]: See the class docstring.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_cams(inputs)
        raise ValueError(f"SEAMNet forward mode must be 'loss', 'predict' or 'tensor', got "
                         f"{mode!r}")

    # ---------------------------------------------------------------------------------- train
    def image_labels(self, data_samples: Sequence[SegDataSample],
                     device: Optional[torch.device] = None) -> Tensor:
        """Multi-hot labels over the classifier channels, background (channel 0) always 1.

        Args:
            data_samples (Sequence[SegDataSample]): Each with ``metainfo['img_labels']``.
            device (torch.device, optional): Device of the result.

        Returns:
            Tensor: Has a shape (N, C), float.
        """
        labels = torch.zeros(len(data_samples), self.num_classes, device=device)
        labels[:, 0] = 1
        for i, sample in enumerate(data_samples):
            for class_id in self._labels_of(sample):
                channel = self._channel_of.get(int(class_id))
                if channel:  # None (not a class of this model) or 0 (background) are skipped
                    labels[i, channel] = 1
        return labels

    @staticmethod
    def _labels_of(sample: SegDataSample) -> Sequence[int]:
        if 'img_labels' not in sample.metainfo:
            raise KeyError("SEAMNet needs image-level labels in data_samples[i].metainfo"
                           "['img_labels'] (the class ids present in the image); the dataset's "
                           'pipeline must put them there (PackSegInputs meta_keys)')
        return sample.metainfo['img_labels']

    def loss(self, inputs: Tensor, data_samples: List[SegDataSample]) -> Dict[str, Tensor]:
        """SEAM losses of the siamese pair (image, transformed image).

        Args:
            inputs (Tensor): Normalised images, has a shape (N, 3, H, W).
            data_samples (list[SegDataSample]): With ``metainfo['img_labels']``.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``loss_er``, ``loss_ecr`` and, with a non-zero
            ``loss_min_pool_weight``, ``loss_min_pool`` (weighted scalars).
        """
        if data_samples is None:
            raise ValueError("SEAMNet mode='loss' needs data_samples with image-level labels")
        labels = self.image_labels(data_samples, inputs.device)
        cam, refined = self.extract_cams(inputs)
        cam_t, refined_t = self.extract_cams(self.transform.apply_to_image(inputs))

        fg_labels = labels[:, 1:]
        loss_cls = (cam_cls_loss(cam[:, 1:], fg_labels) + cam_cls_loss(cam_t[:, 1:], fg_labels)) / 2

        losses = {}
        if self.loss_negative_weight:
            negative = self.negative_pixels(data_samples, inputs.shape[-2:]).to(inputs.device)
            # the same region in the transformed image (a fraction per pixel: the loss pools it)
            negative_t = self.transform.apply_to_image(negative[:, None].float())[:, 0]
            loss_negative = (negative_region_loss(cam[:, 1:], negative) +
                             negative_region_loss(cam_t[:, 1:], negative_t)) / 2
            losses['loss_negative'] = self.loss_negative_weight * loss_negative
        if self.loss_min_pool_weight:
            loss_min_pool = (adaptive_min_pool_loss(mask_cams(refined, labels)[:, 1:],
                                                    self.min_pool_ratio) +
                             adaptive_min_pool_loss(mask_cams(refined_t, labels)[:, 1:],
                                                    self.min_pool_ratio)) / 2
            losses['loss_min_pool'] = self.loss_min_pool_weight * loss_min_pool

        # Bring the first branch into the frame of the second: A(F(I)) vs F(A(I)).
        norm = CAM_NORMS[self.cam_norm]
        size = cam_t.shape[-2:]
        moved_cam = mask_cams(self.transform.apply_to_map(norm(cam), size), labels)
        moved_refined = mask_cams(self.transform.apply_to_map(norm(refined), size), labels)
        cam_t = mask_cams(norm(cam_t), labels)
        refined_t = mask_cams(norm(refined_t), labels)

        loss_er = equivariant_reg_loss(moved_cam[:, 1:], cam_t[:, 1:])
        loss_ecr = equivariant_cross_reg_loss(
            moved_refined, self.ecr_target(cam_t), refined_t, self.ecr_target(moved_cam),
            self.ecr_top_ratio)
        losses.update(
            loss_cls=self.loss_cls_weight * loss_cls,
            loss_er=self.loss_er_weight * loss_er,
            loss_ecr=self.loss_ecr_weight * loss_ecr)
        return losses

    @staticmethod
    def negative_pixels(data_samples: Sequence[SegDataSample],
                        size: Tuple[int, int]) -> Tensor:
        """The negative pixels of each sample: ``gt_sem_seg`` ids other than 0 and 255.

        Args:
            data_samples (Sequence[SegDataSample]): Each with ``gt_sem_seg`` (the previous
                step's confident old-class map, padded with 255 like the image).
            size (tuple[int, int]): The padded input size.

        Returns:
            Tensor: bool, has a shape (N, H, W).

        Raises:
            KeyError: a sample has no ``gt_sem_seg`` (the SEAM config loads no negatives).
        """
        maps = []
        for sample in data_samples:
            if 'gt_sem_seg' not in sample:
                raise KeyError('SEAMNet loss_negative_weight > 0 needs the negatives map in '
                               'data_samples[i].gt_sem_seg; set incremental.seam.negatives in the '
                               'weak config so the resolver loads it (or set the weight to 0)')
            seg = sample.gt_sem_seg.data[0]
            if tuple(seg.shape) != tuple(size):
                raise ValueError(f'negatives map of shape {tuple(seg.shape)} does not match the '
                                 f'input size {tuple(size)}')
            maps.append((seg != 0) & (seg != IGNORE_INDEX))
        return torch.stack(maps)

    def ecr_target(self, cam: Tensor) -> Tensor:
        """The CAM one branch's PCM output is pulled towards by ECR.

        Background becomes ``1 - max`` foreground; then, as configured, the map is detached
        (``ecr_detach_target``) and reduced to its best foreground class per pixel
        (``ecr_max_onehot``).

        Args:
            cam (Tensor): Normalised, label-masked CAM, has a shape (N, C, h, w).

        Returns:
            Tensor: Has a shape (N, C, h, w).
        """
        target = background_from_foreground(cam)
        if self.ecr_detach_target:
            target = target.detach()
        return max_onehot(target) if self.ecr_max_onehot else target

    # -------------------------------------------------------------------------------- predict
    def image_cams(self, img: Tensor, img_labels: Optional[Sequence[int]] = None) -> Tensor:
        """Normalised multi-scale CAMs of one image with ``test_cfg``'s scales, flip and PCM use.

        Args:
            img (Tensor): One normalised image, has a shape (3, H, W).
            img_labels (Sequence[int], optional): Class ids present; None keeps every class.

        Returns:
            Tensor: Has a shape (C, H, W), see :func:`infer_cams`.
        """
        cfg = self.test_cfg
        return infer_cams(self, img, scales=cfg['scales'], flip=cfg['flip'],
                          img_labels=img_labels, use_pcm=cfg['use_pcm'], norm=cfg['norm'])

    def cams_to_label(self, cams: Union[np.ndarray, Tensor],
                      img_labels: Optional[Sequence[int]],
                      bg_alpha: Optional[float] = None) -> np.ndarray:
        """Pseudo-label of normalised CAMs with ``test_cfg``'s background score and checks.

        Args:
            cams (np.ndarray | Tensor): Has a shape (C, H, W), channels as ``class_ids``.
            img_labels (Sequence[int], optional): Class ids present; None allows every class.
            bg_alpha (float, optional): Background score instead of ``test_cfg``'s (a sweep
                over it, :func:`~mmincseg.apis.seam.sweep_bg_alpha`). Default: None.

        Returns:
            np.ndarray: uint8 label map of class ids, see :func:`cams_to_pseudo_label`.
        """
        cfg = self.test_cfg
        bg_alpha = cfg['bg_alpha'] if bg_alpha is None else bg_alpha
        return cams_to_pseudo_label(cams, self.class_ids, img_labels, bg_alpha=bg_alpha,
                                    ignore_below=cfg['ignore_below'],
                                    max_foreground=cfg['max_foreground'],
                                    adaptive_alpha=cfg['adaptive_alpha'])

    def predict(self, inputs: Tensor,
                data_samples: Optional[List[SegDataSample]] = None) -> List[SegDataSample]:
        """Pseudo-labels from multi-scale, flipped, PCM-refined CAMs (:meth:`sample_cams`).

        Args:
            inputs (Tensor): Normalised images, has a shape (N, 3, H, W).
            data_samples (list[SegDataSample], optional): With ``metainfo['img_labels']``; without
                data samples every foreground class is allowed.

        Returns:
            list[SegDataSample]: ``pred_sem_seg`` of shape (1, H', W'), class ids (long), where
            (H', W') is ``ori_shape`` or the unpadded input size.
        """
        with_labels = data_samples is not None
        if not with_labels:
            data_samples = [SegDataSample() for _ in range(inputs.size(0))]
        for img, sample in zip(inputs, data_samples):
            cams, img_labels = self.sample_cams(img, sample, with_labels)
            label = self.cams_to_label(cams, img_labels)
            sample.set_data(dict(pred_sem_seg=PixelData(
                data=torch.from_numpy(label).long()[None].to(inputs.device))))
        return data_samples

    def sample_cams(self, img: Tensor, sample: SegDataSample,
                    with_labels: bool = True) -> Tuple[Tensor, Optional[Sequence[int]]]:
        """Normalised CAMs of one preprocessed image at its original size, and its labels.

        Padding added by the data preprocessor is removed, a test-time flip recorded in the
        metainfo is undone, and the CAMs are resized to ``ori_shape`` when it is known.

        Args:
            img (Tensor): One image of the preprocessed batch, has a shape (3, H, W).
            sample (SegDataSample): Its data sample.
            with_labels (bool): Keep only the classes of ``metainfo['img_labels']``; False:
                every foreground class. Default: True.

        Returns:
            tuple: CAMs of shape (C, H', W') (:meth:`image_cams`) and the image's class ids
            (None without labels).
        """
        meta = sample.metainfo
        height, width = img.shape[-2:]
        left, right, top, bottom = meta.get('img_padding_size',
                                            meta.get('padding_size', [0, 0, 0, 0]))
        img = img[:, top:height - bottom, left:width - right]
        img_labels = self._labels_of(sample) if with_labels else None
        cams = self.image_cams(img, img_labels)
        if meta.get('flip', False):
            cams = cams.flip(-1 if meta.get('flip_direction') == 'horizontal' else -2)
        ori_shape = meta.get('ori_shape')
        if ori_shape is not None and tuple(ori_shape[:2]) != tuple(cams.shape[-2:]):
            cams = F.interpolate(cams[None], size=tuple(ori_shape[:2]), mode='bilinear',
                                 align_corners=False)[0]
        return cams, img_labels
