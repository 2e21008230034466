# SegFormer-B0 for the toy runs: fine-tuned from the toy "ImageNet" MiT-B0
# (mmincseg-toy://mit_b0, made once on first use and cached; see toy_r18.py) as the VOC config is
# from mmseg's MiT-B0 ImageNet file.
_base_ = ['./segformer_b0.py']
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='mmincseg-toy://mit_b0')))
