# Joint training on the toy VOC (CPU); Table 1 on toy data.
_base_ = ['./bisenet_r50_voc_20-0.py', '../_base_/datasets/toyvoc_incremental.py', '../_base_/schedules/toy_cpu.py']
model = dict(backbone=dict(backbone_cfg=dict(init_cfg=None)))
