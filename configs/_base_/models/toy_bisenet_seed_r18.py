# The seed-shaped BiSeNet-R18 for the CPU toy runs: no ImageNet weights (none can be downloaded
# here).
_base_ = ['./bisenet_seed_r18.py']
model = dict(backbone=dict(backbone_cfg=dict(init_cfg=None)))
