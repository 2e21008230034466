# DeepLabV3+ R101 (mmseg's DepthwiseSeparableASPPHead model _base_, output stride 8, FCN auxiliary
# head) for VOC: BN instead of SyncBN, 21 classes, batches padded to a multiple of 32.
_base_ = ['mmseg::_base_/models/deeplabv3plus_r50-d8.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size_divisor=32),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101, norm_cfg=norm_cfg),
    decode_head=dict(num_classes=21, norm_cfg=norm_cfg),
    auxiliary_head=dict(num_classes=21, norm_cfg=norm_cfg))
