# BiSeNet V1 in the seed paper's own shape with a ResNet-101 context path (the seed's best
# BiSeNet): as bisenet_seed_r18.py, ARMs on 1024 / 2048 channels, FFM from
# 256 + 1024 + 2048 = 3328 to 32 channels, auxiliary classifiers on 1024 and 2048 channels.
_base_ = ['./bisenet_seed_r18.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(
        context_channels=(1024, 2048),
        backbone_cfg=dict(
            depth=101,
            # torchvision://resnet101 (see bisenet_seed_r18.py)
            init_cfg=dict(
                type='Pretrained',
                checkpoint='https://download.pytorch.org/models/resnet101-63fe2227.pth'))),
    auxiliary_head=[
        dict(type='FCNHead', in_channels=1024, channels=1024, num_convs=0, concat_input=False,
             dropout_ratio=0, num_classes=21, in_index=1, norm_cfg=norm_cfg, align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        dict(type='FCNHead', in_channels=2048, channels=2048, num_convs=0, concat_input=False,
             dropout_ratio=0, num_classes=21, in_index=2, norm_cfg=norm_cfg, align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    ])
