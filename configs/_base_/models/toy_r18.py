# BiSeNet-R18 for the toy runs, fine-tuned from the toy "ImageNet" weights as the VOC configs are
# from open-mmlab://resnet18_v1c: a ResNetV1c-18 trained on the toy classification set
# (mmincseg/apis/toy_pretrain.py), same layout, made once on first use and cached in
# $MMINCSEG_CACHE/pretrained/ (cost: README, "Toy pretraining"). The segmentor's init_weights
# checks that every tensor of the context path is loaded.
_base_ = ['./bisenet_r18.py']
model = dict(
    backbone=dict(
        backbone_cfg=dict(
            init_cfg=dict(type='Pretrained', checkpoint='mmincseg-toy://resnet18_v1c'))))
