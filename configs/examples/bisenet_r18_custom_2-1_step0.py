# A dataset given by config alone (no dataset class): mmseg's BaseSegDataset reads
# <data_root>/img/{train,val}/*.jpg and <data_root>/ann/{train,val}/*.png (label value v is
# classes[v]; 0 is the background, 255 is ignored). The split '2-1' learns two classes, then one
# per step; `order` says which: channel k of the model is the k-th class learned, while metrics,
# tables and `tools/test.py --out` PNGs keep the dataset's own label values.
_base_ = [
    '../_base_/models/toy_r18.py', '../_base_/schedules/toy_cpu.py',
    '../_base_/default_runtime.py'
]
data_root = 'data/mydata'
dataset = dict(
    type='IncrementalDataset',  # base_type='BaseSegDataset' by default
    metainfo=dict(classes=('background', 'circle', 'square', 'triangle', 'star')),
    data_root=data_root, img_suffix='.jpg', seg_map_suffix='.png')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='RandomResize', scale=(512, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(64, 64), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(dataset, data_prefix=dict(img_path='img/train', seg_map_path='ann/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, data_prefix=dict(img_path='img/val', seg_map_path='ann/val'),
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IncrementalIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
incremental = dict(task='2-1', step=0, setting='overlap', method='mib', labels='gt',
                   order=[3, 1, 4, 2])  # triangle and circle first, then star, then square
