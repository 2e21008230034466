# PASCAL VOC 2012 + SBD augmented masks (10582 train images), one incremental step.
# Layout under data_root (= VOCdevkit/VOC2012): JPEGImages/, SegmentationClassAug/,
# SegmentationClass/, ImageSets/Segmentation/{train_aug,val}.txt. `--data-root DIR` moves it.
# The step's task/step/setting are filled in from the `incremental` block by the resolver.
dataset_type = 'IncrementalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),  # mask fits its image (mmincseg)
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomRotate', prob=0.5, degree=10, pad_val=0, seg_pad_val=255),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=[0.5, 0.2], direction=['horizontal', 'vertical']),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
# Evaluation as MiB (crop_val), PLOP and the seed: short side resized to 512, centre crop 512 of
# image and mask; the crop is what is scored (and what `tools/test.py --out` writes).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),  # mask fits its image (mmincseg)
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='CenterCrop', crop_size=crop_size),
    dict(type='CropIsImage'),  # the crop is the evaluated image (mmincseg)
    dict(type='PackSegInputs')
]
# Full-image evaluation (every pixel of the original mask): configs/_base_/datasets/
# voc_incremental_full_image.py uses this one.
full_image_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),  # mask fits its image (mmincseg)
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IncrementalIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
