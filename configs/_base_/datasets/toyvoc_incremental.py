# The synthetic toy VOC made by tools/make_toy_voc.py (same layout as VOC2012), sized for a
# 2-core CPU: images (~128 px) are trained and predicted at half size (short side ~64);
# predictions are resized back and evaluated at the original size. Choices are made on val
# (`ImageSets/Segmentation/val.txt`); the held-out `test.txt` is what tables report: after the
# last epoch each step also runs the test loop and records its metrics (`test_metrics` in
# step_result.json).
_base_ = ['./voc_incremental.py']
data_root = 'data/toyvoc'
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),  # mask fits its image (mmincseg)
    dict(type='RandomResize', scale=(512, 64), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomRotate', prob=0.5, degree=10, pad_val=0, seg_pad_val=255),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=[0.5, 0.2], direction=['horizontal', 'vertical']),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 64), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),  # mask fits its image (mmincseg)
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    dataset=dict(data_root=data_root, ann_file='ImageSets/Segmentation/test.txt',
                 pipeline=test_pipeline))
