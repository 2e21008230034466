# The seed-shaped BiSeNet-R101 (bisenet_seed_r101.py) for the toy runs: fine-tuned from the toy
# "ImageNet" ResNetV1c-101 (mmincseg-toy://resnet101_v1c, made once on first use and cached; see
# toy_r18.py) as the VOC config is from torchvision's resnet101. The toy weights exist only in the
# v1c layout, so the context path is mmseg's ResNetV1c (deep stem stem.0-stem.7, three 3x3 convs)
# instead of the seed's plain ResNet (one 7x7 conv1/bn1); layers 1-4, ARMs, FFM and heads are the
# seed's.
_base_ = ['./bisenet_seed_r101.py']
model = dict(
    backbone=dict(
        backbone_cfg=dict(
            type='ResNetV1c',
            init_cfg=dict(type='Pretrained', checkpoint='mmincseg-toy://resnet101_v1c'))))
