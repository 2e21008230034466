# ADE20K (ADEChallengeData2016: 20210 train / 2000 val images, 150 classes), one incremental step,
# as MiB reads it: label 0 ("other") is the background class, trained as background and ignored
# in evaluation; classes keep ADE's label values 1..150 (mmseg's ADE20KDataset reduces label 0
# by default; IncrementalDataset turns that off and its label map does the rest).
# Layout under data_root: images/{training,validation}/*.jpg, annotations/{training,validation}/
# *.png (no split list: every image of the folder). `--data-root DIR` moves it (the toy ADE20K of
# tools/make_toy_ade.py has this layout). Evaluation as VOC's (MiB's crop_val: Resize 512 +
# CenterCrop 512). Training images of a step: the overlapped setting (PLOP's protocol; MiB split
# ADE20K's images into disjoint per-step sets with a heuristic of its own, not reproduced here).
_base_ = ['./voc_incremental.py']
data_root = 'data/ade/ADEChallengeData2016'
ade = dict(type='IncrementalDataset', base_type='ADE20KDataset', data_root=data_root,
           ann_file='')
# MiB's training augmentation: random resized crop (0.5, 2.0) and horizontal flips
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),  # mask fits its image (mmincseg)
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}}, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=24,  # MiB's
    dataset=dict(ade, data_prefix=dict(img_path='images/training',
                                       seg_map_path='annotations/training'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(ade, data_prefix=dict(img_path='images/validation',
                                       seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
