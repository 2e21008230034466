# BiSeNet V1 in the seed paper's own shape (REFERENCES.md "Seed code"): ResNet-18 context path at
# output stride 32 (torchvision weights, plain stem) whose layer3 / layer4 maps (256 / 512) go
# through width-keeping ARMs (layer4's multiplied by its global average), a spatial path of three
# 3x3 stride-2 convs (64-128-256, 1/8) and an FFM from 256 + 256 + 512 = 1024 to 32 channels.
# Per-step 1x1 classifiers run directly on the FFM output (decode head) and on the two ARM
# outputs (auxiliary heads, loss weight 1 each); no dropout, as in the seed. mmseg's BiSeNetV1
# cannot take this shape (mmincseg/models/backbones/seed_bisenetv1.py says why).
_base_ = ['mmseg::_base_/models/bisenetv1_r18-d32.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    # pad each training batch to its largest crop (rounded to 32): one config for any crop size
    data_preprocessor=dict(size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='SeedBiSeNetV1',
        in_channels=3,
        spatial_channels=(64, 128, 256),
        context_channels=(256, 512),
        out_channels=32,
        out_indices=(0, 1, 2),
        align_corners=False,
        norm_cfg=norm_cfg,
        # mmseg's plain ResNet has torchvision's keys (conv1/bn1/layer1..4), so torchvision's
        # ImageNet weights load completely (fc.* is left over). The file of
        # `torchvision://resnet18`, by its URL: mmengine resolves torchvision:// names by
        # importing torchvision, which the install (tools/install.sh) does not have.
        backbone_cfg=dict(
            type='ResNet',
            depth=18,
            num_stages=4,
            out_indices=(2, 3),
            strides=(1, 2, 2, 2),
            dilations=(1, 1, 1, 1),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            init_cfg=dict(
                type='Pretrained',
                checkpoint='https://download.pytorch.org/models/resnet18-f37072fd.pth'))),
    # FCNHead without convs is a 1x1 conv_seg on its input
    decode_head=dict(in_channels=32, channels=32, in_index=0, num_convs=0, concat_input=False,
                     dropout_ratio=0, norm_cfg=norm_cfg, num_classes=21),
    auxiliary_head=[
        dict(type='FCNHead', in_channels=256, channels=256, num_convs=0, concat_input=False,
             dropout_ratio=0, num_classes=21, in_index=1, norm_cfg=norm_cfg, align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        dict(type='FCNHead', in_channels=512, channels=512, num_convs=0, concat_input=False,
             dropout_ratio=0, num_classes=21, in_index=2, norm_cfg=norm_cfg, align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    ])
