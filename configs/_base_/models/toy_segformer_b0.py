# SegFormer-B0 for the CPU toy runs: no ImageNet weights (none can be downloaded here).
_base_ = ['./segformer_b0.py']
model = dict(backbone=dict(init_cfg=None))
