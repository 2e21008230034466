# BiSeNet V1 with a ResNetV1c-101 context path (as bisenet_r18.py): mmseg's BiSeNetV1 with light
# widths of our choosing. It is not the seed's shape (bisenet_seed_r101.py is: FFM to 32
# channels, classifiers directly on the FFM and ARM outputs; REFERENCES.md "Seed code").
# ARM/context 128, ResNet layer3/layer4 1024/2048, spatial path
# 64-64-64-896 so that the FFM input is 896 + 128 = 1024 (mmseg couples context_channels[1] to
# it), FFM 256. mmseg's stock R50/R101 shape (FFM 1024, 1024-channel heads) is slower than
# DeepLabV3-R101.
_base_ = ['./bisenet_r18.py']
model = dict(
    backbone=dict(
        context_channels=(128, 1024, 2048),
        spatial_channels=(64, 64, 64, 896),
        out_channels=256,
        backbone_cfg=dict(
            depth=101,
            init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet101_v1c'))),
    decode_head=dict(in_channels=256, channels=256))
