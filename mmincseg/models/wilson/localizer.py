"""WILSON's localizer: a small head on the segmentor's encoder features that learns the new
classes of a step from image-level labels and gives the segmentor online soft pseudo-labels."""
import logging
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor

from .pamr import pamr
from .targets import (balanced_mask_ce, confident_masks, image_weights, label_mask,
                      localizer_cls_loss, localizer_prior_loss, segmentation_targets,
                      soft_pseudo_labels, wilson_seg_loss)


@MODELS.register_module()
class WilsonLocalizer(BaseModule):
    """WILSON (Cermelli et al., CVPR 2022) localizer and its losses.

    Two 3x3 conv-BN-LeakyReLU(0.01) blocks of ``channels`` and a 1x1 classifier to every class
    seen so far (the ``pseudolabeler`` of fcdl94/WILSON ``train.py``), on the feature the decode
    head reads. It is trained by :meth:`loss` (multi-label nGWP loss on the new classes plus the
    old model's localisation prior, from the first epoch; its gradients also reach the encoder,
    as WILSON's) and, from ``warmup_epochs`` on, gives the segmentor's targets
    (:meth:`targets`): its eval-mode, label-masked softmax mixed with its arg-max (``alpha``)
    for the new classes, the old model's sigmoid for the old ones, the minimum of both
    backgrounds for background. From the same epoch the localizer also learns from its own
    masks (WILSON's ``--affinity`` run, its published VOC setting): its eval-mode softmax,
    refined by PAMR on the image (:func:`~mmincseg.models.wilson.pamr`), label-masked, cut to
    the confident pixels (:func:`confident_masks`) and learned with a class-balanced
    cross-entropy (:func:`balanced_mask_ce`), as ``loss_loc_self``.

    Args:
        in_channels (int): Channels of the encoder feature.
        num_classes (int): Every class of the step, background and old classes included.
        num_old (int): Old channels (background included).
        new_classes (Sequence[int], optional): Class id (as in ``metainfo['img_labels']``) of
            each new channel, in channel order; the resolver sets them from the split. None:
            ids ``num_old .. num_classes - 1``.
        channels (int): Width of the two conv blocks. Default: 256.
        alpha (float): Hard part of the soft pseudo-labels. Default: 0.5 (WILSON on VOC).
        warmup_epochs (int): Epochs during which only the localizer (and the encoder through it)
            learns; the segmentor's loss starts after them. Default: 5 (``--pseudo_ep``).
        loss_seg_weight (float): Weight of the segmentation loss. Default: 1.0.
        loss_cls_weight (float): Weight of the localizer's multi-label loss. Default: 1.0.
        loss_prior_weight (float): Weight of the localisation prior. Default: 1.0.
        focal_lambda (float): Lambda of the nGWP focal penalty. Default: 0.01.
        self_train_weight (float): Weight of the self-training loss after the warm-up; 0 turns
            it off. Default: 1.0 (WILSON).
        affinity (bool): Refine the self-training masks with PAMR; False: the localizer's
            softmax as it is (WILSON without ``--affinity``). Default: True.
        pamr_iters (int): PAMR's propagation steps. Default: 10.
        pamr_dilations (Sequence[int]): PAMR's neighbour distances. Default: (1, 2, 4, 8, 12).
        cutoffs (Sequence[float]): ``(cutoff_fg, cutoff_bg, cutoff_low)`` of
            :func:`confident_masks`. Default: (0.6, 0.7, 0.2) (WILSON).
        norm_cfg (dict): Norm layer of the conv blocks. Default: ``dict(type='BN')``.
        init_cfg (dict, optional): MMEngine init config.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 num_old: int,
                 new_classes: Optional[Sequence[int]] = None,
                 channels: int = 256,
                 alpha: float = 0.5,
                 warmup_epochs: int = 5,
                 loss_seg_weight: float = 1.0,
                 loss_cls_weight: float = 1.0,
                 loss_prior_weight: float = 1.0,
                 focal_lambda: float = 0.01,
                 self_train_weight: float = 1.0,
                 affinity: bool = True,
                 pamr_iters: int = 10,
                 pamr_dilations: Sequence[int] = (1, 2, 4, 8, 12),
                 cutoffs: Sequence[float] = (0.6, 0.7, 0.2),
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0 < num_old < num_classes:
            raise ValueError(f'WilsonLocalizer needs 0 < num_old < num_classes (old and new '
                             f'classes), got num_old={num_old}, num_classes={num_classes}')
        if not 0 <= alpha <= 1:
            raise ValueError(f'WilsonLocalizer alpha must be in [0, 1], got {alpha}')
        self.num_classes, self.num_old = int(num_classes), int(num_old)
        if new_classes is None:
            new_classes = range(self.num_old, self.num_classes)
        self.new_classes = [int(c) for c in new_classes]
        if len(self.new_classes) != self.num_new:
            raise ValueError(f'WilsonLocalizer new_classes {self.new_classes} must name the '
                             f'{self.num_new} new channels (num_classes - num_old)')
        if self.num_new == 1:
            print_log('WILSON on a one-class step: every training image holds the one new class, '
                      'so its localizer sees no negative image and can learn the class '
                      'everywhere (on toy 15-1 the model collapsed onto the new class: 0.63 mIoU '
                      'after 5 steps, docs/results.md); WILSON needs steps of several classes',
                      logger='current', level=logging.WARNING)
        self.alpha = alpha
        self.warmup_epochs = warmup_epochs
        self.loss_seg_weight = loss_seg_weight
        self.loss_cls_weight = loss_cls_weight
        self.loss_prior_weight = loss_prior_weight
        self.focal_lambda = focal_lambda
        if len(cutoffs) != 3:
            raise ValueError(f'WilsonLocalizer cutoffs must be (cutoff_fg, cutoff_bg, '
                             f'cutoff_low), got {cutoffs}')
        self.self_train_weight = self_train_weight
        self.affinity = affinity
        self.pamr_iters = pamr_iters
        self.pamr_dilations = tuple(pamr_dilations)
        self.cutoffs = tuple(float(c) for c in cutoffs)
        norm_cfg = norm_cfg or dict(type='BN')
        act_cfg = dict(type='LeakyReLU', negative_slope=0.01)
        self.convs = nn.Sequential(
            ConvModule(in_channels, channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
            ConvModule(channels, channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg))
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)

    @property
    def num_new(self) -> int:
        """Channels of the classes of the step."""
        return self.num_classes - self.num_old

    def forward(self, feat: Tensor) -> Tensor:
        """Localizer logits.

        Args:
            feat (Tensor): Encoder feature, has a shape (N, in_channels, h, w).

        Returns:
            Tensor: Has a shape (N, num_classes, h, w).
        """
        return self.classifier(self.convs(feat))

    def image_labels(self, data_samples: Sequence, device: Optional[torch.device] = None) -> Tensor:
        """Multi-hot labels of the new classes from ``metainfo['img_labels']``.

        Args:
            data_samples (Sequence[SegDataSample]): Each with ``metainfo['img_labels']`` (class
                ids present; ids that are not new classes of the step are ignored).
            device (torch.device, optional): Device of the result.

        Returns:
            Tensor: Has a shape (N, num_new), float.

        Raises:
            KeyError: a sample has no ``img_labels`` (the pipeline must pack them).
        """
        channel = {c: k for k, c in enumerate(self.new_classes)}
        labels = torch.zeros(len(data_samples), self.num_new, device=device)
        for i, sample in enumerate(data_samples):
            if 'img_labels' not in sample.metainfo:
                raise KeyError("WILSON needs image-level labels in data_samples[i].metainfo"
                               "['img_labels']; train with incremental.labels='image' (the "
                               "resolver packs them)")
            for class_id in sample.metainfo['img_labels']:
                if int(class_id) in channel:
                    labels[i, channel[int(class_id)]] = 1
        return labels

    def warming_up(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is a localizer-only epoch."""
        return epoch < self.warmup_epochs

    def loss(self, feat: Tensor, old_logits: Tensor, new_labels: Tensor,
             images: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The localizer's own losses.

        Args:
            feat (Tensor): Encoder feature, has a shape (N, in_channels, h, w).
            old_logits (Tensor): Old-model logits, has a shape (N, num_old, h', w').
            new_labels (Tensor): Multi-hot labels of the new classes, has a shape (N, num_new).
            images (Tensor, optional): The (normalised) input images, shape (N, 3, H, W):
                given after the warm-up, they turn on the self-training loss (when
                ``self_train_weight > 0``).

        Returns:
            dict[str, Tensor]: ``loss_loc_cls``, ``loss_loc_prior`` and, with ``images``,
            ``loss_loc_self`` (weighted).
        """
        refined = None
        if images is not None and self.self_train_weight > 0:
            refined = self.refined_masks(feat, images, new_labels)  # eval mode, before training
        logits = self(feat)
        if old_logits.shape[2:] != logits.shape[2:]:
            old_logits = resize(old_logits, logits.shape[2:], mode='bilinear',
                                align_corners=False)
        losses = dict(
            loss_loc_cls=self.loss_cls_weight * localizer_cls_loss(logits, new_labels,
                                                                   self.focal_lambda),
            loss_loc_prior=self.loss_prior_weight * localizer_prior_loss(logits, old_logits))
        if refined is not None:
            hard = confident_masks(refined, *self.cutoffs)
            losses['loss_loc_self'] = self.self_train_weight * balanced_mask_ce(
                logits, hard, new_labels)
        return losses

    def _eval_logits(self, feat: Tensor) -> Tensor:
        """Logits of the localizer in eval mode (BN running statistics), no gradient."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            logits = self(feat.detach())
        self.train(was_training)
        return logits

    @torch.no_grad()
    def refined_masks(self, feat: Tensor, images: Tensor, new_labels: Tensor) -> Tensor:
        """The soft masks the localizer trains itself on: its eval-mode softmax, refined by
        PAMR on the images resized to the feature (``affinity``), channels of classes the image
        is not labelled with (old classes included) zeroed.

        Args:
            feat (Tensor): Encoder feature, has a shape (N, in_channels, h, w).
            images (Tensor): Has a shape (N, 3, H, W).
            new_labels (Tensor): Multi-hot labels of the new classes, has a shape (N, num_new).

        Returns:
            Tensor: Has a shape (N, num_classes, h, w).
        """
        probs = self._eval_logits(feat).softmax(dim=1)
        if self.affinity:
            small = F.interpolate(images.to(probs.dtype), size=probs.shape[2:],
                                  mode='bilinear', align_corners=True)
            probs = pamr(small, probs, self.pamr_iters, self.pamr_dilations)
        return probs * label_mask(new_labels, self.num_old)[:, :, None, None]

    @torch.no_grad()
    def targets(self, feat: Tensor, old_logits: Tensor,
                new_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """Segmentation targets and image weights at the old logits' resolution.

        The localizer runs in eval mode without gradient (WILSON's ``int_masks``).

        Args:
            feat (Tensor): Encoder feature, has a shape (N, in_channels, h, w).
            old_logits (Tensor): Old-model logits, has a shape (N, num_old, h', w').
            new_labels (Tensor): Multi-hot labels of the new classes, has a shape (N, num_new).

        Returns:
            tuple[Tensor, Tensor]: Targets (N, num_classes, h', w') and weights (N,).
        """
        logits = self._eval_logits(feat)
        if logits.shape[2:] != old_logits.shape[2:]:
            logits = resize(logits, old_logits.shape[2:], mode='bilinear', align_corners=False)
        pseudo = soft_pseudo_labels(logits, label_mask(new_labels, self.num_old), self.alpha)
        return segmentation_targets(old_logits, pseudo), image_weights(pseudo, new_labels)

    def seg_loss(self, logits: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
        """Weighted segmentation loss of one head's logits (:func:`wilson_seg_loss`), the
        targets resized to the logits.

        Args:
            logits (Tensor): Has a shape (N, num_classes, h, w).
            targets (Tensor): From :meth:`targets`, has a shape (N, num_classes, h', w').
            weights (Tensor): From :meth:`targets`, has a shape (N,).

        Returns:
            Tensor: Scalar loss.
        """
        if targets.shape[2:] != logits.shape[2:]:
            targets = resize(targets, logits.shape[2:], mode='bilinear', align_corners=False)
        return self.loss_seg_weight * wilson_seg_loss(logits, targets, weights)
