# BiSeNet V2 (mmseg's model _base_: FCN decode head + four FCN auxiliary heads, trained from
# scratch as in mmseg, so it also serves the toy runs) for VOC: BN instead of SyncBN, 21 classes,
# batches padded to a multiple of 32. mmseg's auxiliary heads are a list, restated here whole.
_base_ = ['mmseg::_base_/models/bisenetv2.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size_divisor=32),
    decode_head=dict(num_classes=21, norm_cfg=norm_cfg),
    auxiliary_head=[
        dict(type='FCNHead', in_channels=in_channels, channels=channels, num_convs=2,
             num_classes=21, in_index=in_index, norm_cfg=norm_cfg, concat_input=False,
             align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
        for in_index, in_channels, channels in ((1, 16, 16), (2, 32, 64), (3, 64, 256),
                                                 (4, 128, 1024))
    ])
