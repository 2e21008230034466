# BiSeNet V1, ResNetV1c-50 context path, same light shape as bisenet_r101.py.
_base_ = ['./bisenet_r101.py']
model = dict(
    backbone=dict(
        backbone_cfg=dict(
            depth=50, init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c'))))
