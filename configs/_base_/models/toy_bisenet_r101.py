# BiSeNet-R101 (our mmseg shape, bisenet_r101.py) for the toy runs: fine-tuned from the toy
# "ImageNet" ResNetV1c-101 (mmincseg-toy://resnet101_v1c, made once on first use and cached; see
# toy_r18.py) as the VOC config is from open-mmlab://resnet101_v1c.
_base_ = ['./bisenet_r101.py']
model = dict(
    backbone=dict(
        backbone_cfg=dict(
            init_cfg=dict(type='Pretrained', checkpoint='mmincseg-toy://resnet101_v1c'))))
