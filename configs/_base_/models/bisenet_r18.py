# BiSeNet V1, ResNet-18 context path (mmseg's BiSeNetV1 backbone and model _base_), with the
# FFM decode head and two auxiliary context heads; every classifier becomes incremental.
# The context path is mmseg's ResNetV1c (deep stem stem.0-stem.7), the architecture of the
# open-mmlab://resnet*_v1c weights. mmseg's base builds a plain ResNet (conv1/bn1), into which such
# a file loads all but the stem; the segmentor's init_weights refuses a partial load like that
# (model.allow_partial_pretrained=True permits it).
_base_ = ['mmseg::_base_/models/bisenetv1_r18-d32.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # pad each training batch to its largest crop (rounded to 32): one config for any crop size
    data_preprocessor=dict(size_divisor=32),
    backbone=dict(
        norm_cfg=norm_cfg,
        backbone_cfg=dict(
            type='ResNetV1c',
            norm_cfg=norm_cfg,
            init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet18_v1c'))),
    decode_head=dict(norm_cfg=norm_cfg, num_classes=21),
    auxiliary_head=[
        dict(type='FCNHead', in_channels=128, channels=64, num_convs=1, num_classes=21,
             in_index=1, norm_cfg=norm_cfg, concat_input=False, align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        dict(type='FCNHead', in_channels=128, channels=64, num_convs=1, num_classes=21,
             in_index=2, norm_cfg=norm_cfg, concat_input=False, align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    ])
