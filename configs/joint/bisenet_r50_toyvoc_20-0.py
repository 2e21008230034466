# Joint training of all 20 classes on the toy VOC (CPU): the seed's Table 1 on toy data.
_base_ = [
    '../_base_/models/bisenet_r50.py', '../_base_/datasets/toyvoc_incremental.py',
    '../_base_/schedules/toy_cpu.py', '../_base_/default_runtime.py'
]
# fine-tuned from the toy "ImageNet" weights (made once, cached; see _base_/models/toy_r18.py)
model = dict(
    backbone=dict(
        backbone_cfg=dict(
            init_cfg=dict(type='Pretrained', checkpoint='mmincseg-toy://resnet50_v1c'))))
incremental = dict(task='20-0', step=0, setting='overlap', method='joint', labels='gt')
