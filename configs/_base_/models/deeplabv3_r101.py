# DeepLabV3-R101 as MiB trains it: output stride 16 (dilations 1,1,1,2), ASPP head; the
# original MiB model, kept for comparison. mmseg's own default is output stride 8.
_base_ = ['mmseg::_base_/models/deeplabv3_r50-d8.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # pad each training batch to its largest crop (rounded to 32): one config for any crop size
    data_preprocessor=dict(size_divisor=32),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101, dilations=(1, 1, 1, 2), strides=(1, 2, 2, 1), norm_cfg=norm_cfg),
    decode_head=dict(dilations=(1, 6, 12, 18), num_classes=21, norm_cfg=norm_cfg),
    auxiliary_head=dict(num_classes=21, norm_cfg=norm_cfg))
