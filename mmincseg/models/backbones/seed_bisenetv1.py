"""BiSeNet V1 in the shape of the seed paper's code (MiB-BiSeNet, REFERENCES.md "Seed code").

mmseg's ``BiSeNetV1`` cannot take this shape, whatever its channel arguments:

- its spatial path is four convs (7x7 / 3x3 / 3x3 stride 2, then a 1x1); the seed's is three
  3x3 stride-2 conv-BN-ReLU (64 -> 128 -> 256);
- its attention refinement modules put a 3x3 conv in front of the attention and project both
  context maps to ``context_channels[0]``, and their sum (a U-shaped path with two more 3x3
  convs) goes to the FFM; the seed's ARMs are channel attentions on the ResNet maps themselves
  (no conv on the map, widths kept: 256/512 for R18, 1024/2048 for R101), the stride-32 one
  multiplied by the global average of layer4 ("tail"), and both are concatenated, not summed;
- its FFM input width is ``context_channels[1]``, which is also the ResNet layer3 width; the
  seed's FFM takes spatial + both ARM outputs (256 + 256 + 512 = 1024 for R18/34,
  256 + 1024 + 2048 = 3328 for R50/101) and fuses them with a 3x3 conv to 32 channels.

What is reused: mmcv's ``ConvModule`` for every conv (+ norm + activation), any mmseg backbone
(``backbone_cfg``, mmseg's plain ``ResNet``, whose keys are torchvision's) as context path, mmseg's
``resize``. The output tuple is mmseg's ``BiSeNetV1`` one (index 0 for the decode head, 1 and 2 for
the auxiliary heads), so every head config and ``make_incremental`` work as for mmseg's model.
"""
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor


class ChannelAttentionRefinement(BaseModule):
    """The seed's attention refinement module: a channel attention that keeps the width.

    ``out = x * sigmoid(conv1x1(avg_pool(x)))`` (the 1x1 conv has a bias, no norm), so the map
    itself goes through no convolution (mmseg's ``AttentionRefinementModule`` adds a 3x3 conv
    in front of the attention, a 2048 -> 2048 3x3 conv = 37.7M parameters on ResNet-101 layer4).

    Args:
        channels (int): Channels of the input and output maps.
        conv_cfg (dict, optional): Config of the 1x1 conv layer. Defaults to None.
    """

    def __init__(self, channels: int, conv_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            ConvModule(channels, channels, 1, conv_cfg=conv_cfg, norm_cfg=None,
                       act_cfg=dict(type='Sigmoid')))

    def forward(self, x: Tensor) -> Tensor:
        """Reweight the channels of ``x`` of shape (N, C, H, W); the output has its shape."""
        return x * self.attention(x)


class SeedFeatureFusionModule(BaseModule):
    """The seed's feature fusion module (the BiSeNet paper's FFM).

    ``fuse = ConvBNReLU3x3(cat(x_sp, x_cp))``, ``att = sigmoid(conv1x1(relu(conv1x1(
    avg_pool(fuse)))))``, ``out = fuse * att + fuse``. mmseg's ``FeatureFusionModule`` takes the
    same two inputs but fuses with a 1x1 conv and computes its attention with one conv + BN +
    ReLU before the sigmoid (so its attention never drops below 0.5).

    Args:
        in_channels (int): Channels of ``x_sp`` and ``x_cp`` together.
        out_channels (int): Channels of the output (32 in the seed).
        conv_cfg (dict, optional): Config of the conv layers. Defaults to None.
        norm_cfg (dict): Config of the norm layer of the fusing conv. Defaults to BN.
        act_cfg (dict): Config of the activation of the fusing conv and of the first
            attention conv. Defaults to ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int, conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN'), act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.fuse = ConvModule(in_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            ConvModule(out_channels, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=None,
                       act_cfg=act_cfg),
            ConvModule(out_channels, out_channels, 1, conv_cfg=conv_cfg, norm_cfg=None,
                       act_cfg=dict(type='Sigmoid')))

    def forward(self, x_sp: Tensor, x_cp: Tensor) -> Tensor:
        """Fuse the spatial map (N, C_sp, H, W) and the context map (N, C_cp, H, W).

        Returns:
            Tensor: The fused map, shape (N, out_channels, H, W).
        """
        fuse = self.fuse(torch.cat([x_sp, x_cp], dim=1))
        return fuse * self.attention(fuse) + fuse


@MODELS.register_module()
class SeedBiSeNetV1(BaseModule):
    """BiSeNet V1 as the seed paper's code builds it: ResNet context path at output stride 32,
    width-keeping ARMs, three-conv spatial path, a 32-channel FFM.

    - context path: ``backbone_cfg`` (e.g. mmseg's plain ``ResNet`` with ``out_indices=(2, 3)``);
      its last two maps, layer3 (1/16) and layer4 (1/32), go through one
      :class:`ChannelAttentionRefinement` each; the layer4 one is multiplied by the global
      average of layer4 (the "tail"); both are upsampled (bilinear) to the spatial path's size;
    - spatial path: one 3x3 stride-2 ConvModule per entry of ``spatial_channels`` (1/8 for 3);
    - FFM: :class:`SeedFeatureFusionModule` on spatial + both context maps, to ``out_channels``.

    The seed classifies the FFM output after upsampling it x8; a 1x1 classifier commutes with
    bilinear upsampling, so mmseg's head (1x1 ``conv_seg`` at 1/8, logits resized to the input)
    computes the same logits for less work.

    Args:
        backbone_cfg (dict): Config of the context path backbone; it must return at least two
            maps, the last two of strides 16 and 32.
        in_channels (int): Channels of the input image. Defaults to 3.
        spatial_channels (Sequence[int]): Output channels of the spatial path's stride-2 convs.
            Defaults to (64, 128, 256).
        context_channels (Sequence[int]): Channels of the backbone's last two maps (layer3,
            layer4): (256, 512) for ResNet-18/34, (1024, 2048) for ResNet-50/101. Defaults to
            (256, 512).
        out_channels (int): Channels of the FFM output (the decode head's ``in_channels``).
            Defaults to 32.
        out_indices (Sequence[int] | int): Outputs returned, of (FFM, layer3 ARM, layer4 ARM),
            all at the spatial path's stride. Defaults to (0, 1, 2).
        align_corners (bool): ``align_corners`` of the context upsampling. Defaults to False.
        conv_cfg (dict, optional): Config of the conv layers. Defaults to None.
        norm_cfg (dict): Config of the norm layers. Defaults to BN with ``requires_grad=True``.
        act_cfg (dict): Config of the activations. Defaults to ReLU.
        init_cfg (dict | list[dict], optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 backbone_cfg: ConfigType,
                 in_channels: int = 3,
                 spatial_channels: Sequence[int] = (64, 128, 256),
                 context_channels: Sequence[int] = (256, 512),
                 out_channels: int = 32,
                 out_indices: Union[Sequence[int], int] = (0, 1, 2),
                 align_corners: bool = False,
                 conv_cfg: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(context_channels) != 2:
            raise ValueError(
                f'SeedBiSeNetV1: context_channels must be the widths of the backbone\'s layer3 and '
                f'layer4 maps, two numbers such as (256, 512) for ResNet-18 or (1024, 2048) for '
                f'ResNet-101; got {tuple(context_channels)}')
        if len(spatial_channels) < 1:
            raise ValueError('SeedBiSeNetV1: spatial_channels must list at least one conv width, '
                             'e.g. (64, 128, 256)')
        out_indices = (out_indices, ) if isinstance(out_indices, int) else tuple(out_indices)
        if not out_indices or any(i not in (0, 1, 2) for i in out_indices):
            raise ValueError(f'SeedBiSeNetV1: out_indices must be taken from 0 (FFM), 1 (layer3 '
                             f'ARM), 2 (layer4 ARM); got {out_indices}')
        self.context_channels = tuple(int(c) for c in context_channels)
        self.out_indices = out_indices
        self.align_corners = align_corners
        self.backbone = MODELS.build(backbone_cfg)
        self.arm16 = ChannelAttentionRefinement(self.context_channels[0], conv_cfg=conv_cfg)
        self.arm32 = ChannelAttentionRefinement(self.context_channels[1], conv_cfg=conv_cfg)
        widths = [in_channels, *spatial_channels]
        self.spatial_path = nn.Sequential(*[
            ConvModule(cin, cout, 3, stride=2, padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                       act_cfg=act_cfg) for cin, cout in zip(widths[:-1], widths[1:])
        ])
        self.ffm = SeedFeatureFusionModule(
            spatial_channels[-1] + sum(self.context_channels), out_channels, conv_cfg=conv_cfg,
            norm_cfg=norm_cfg, act_cfg=act_cfg)

    def _context_maps(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """The backbone's layer3 (1/16) and layer4 (1/32) maps, widths checked."""
        feats = self.backbone(x)
        if not isinstance(feats, (tuple, list)) or len(feats) < 2:
            got = len(feats) if isinstance(feats, (tuple, list)) else type(feats).__name__
            raise ValueError(f'SeedBiSeNetV1: backbone_cfg must return the stride-16 and stride-32 '
                             f'maps as its last two outputs (for ResNet: out_indices=(2, 3)); '
                             f'got {got}')
        x16, x32 = feats[-2], feats[-1]
        widths = (x16.shape[1], x32.shape[1])
        if widths != self.context_channels:
            raise ValueError(f'SeedBiSeNetV1: the backbone returns maps of {widths} channels but '
                             f'context_channels is {self.context_channels}; set '
                             f'context_channels={widths}')
        return x16, x32

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Forward of an image batch of shape (N, in_channels, H, W).

        Returns:
            tuple[Tensor]: The outputs of ``out_indices`` among: the FFM output, shape
            (N, out_channels, H/8, W/8) for three spatial convs; the layer3 and layer4 ARM
            outputs upsampled to the same size, shapes (N, context_channels[i], H/8, W/8).
        """
        x16, x32 = self._context_maps(x)
        x_spatial = self.spatial_path(x)
        size = x_spatial.shape[2:]
        tail = x32.mean(dim=(2, 3), keepdim=True)
        x16 = resize(self.arm16(x16), size=size, mode='bilinear',
                     align_corners=self.align_corners)
        x32 = resize(self.arm32(x32) * tail, size=size, mode='bilinear',
                     align_corners=self.align_corners)
        x_fuse = self.ffm(x_spatial, torch.cat([x16, x32], dim=1))
        outs = (x_fuse, x16, x32)
        return tuple(outs[i] for i in self.out_indices)
