# SEAM for the new classes of VOC 15-5 (step 1: 16-20), from image-level labels only.
# REFERENCES.md (SEAM): batch 8, 8 epochs, lr 0.01 poly (power 0.9), weight decay 5e-4, crop 448,
# flips, colour jitter; the reference's poly optimiser is plain SGD (no momentum).
# Any split/step: --cfg-options incremental.task=15-1 incremental.step=3 (the SEAM learns
# background + the new classes of that step; the weak step hook of tools/run_incremental.py sets
# both from the weak config, see configs/README.md).
# Trains into <work-dir>/step<t>/seam; pseudo-labels: tools/make_pseudo_labels.py.
_base_ = [
    '../_base_/models/seam_r50.py', '../_base_/datasets/voc_incremental.py',
    '../_base_/default_runtime.py'
]
incremental = dict(task='15-5', step=1, setting='overlap', method='ft', labels='gt')

crop_size = (448, 448)
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor',
             'flip', 'flip_direction', 'reduce_zero_label', 'img_labels')
# No LoadAnnotations: SEAM sees image-level labels (`img_labels`) only.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # long side in [448, 768] as SEAM
    dict(type='RandomResize', scale=(608, 608), ratio_range=(448 / 608, 768 / 608),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
# Pseudo-labels are made at the original image size; the true masks only measure their quality.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
# Validation = pseudo-label quality on the step's images of VOC train (1464 images with masks,
# the set of SEAM's reported CAM mIoU), classes of other steps as background.
val_dataloader = dict(
    dataset=dict(
        subset='train',
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_epochs = 8
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.0, weight_decay=5e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=max_epochs))
