# The synthetic toy ADE20K made by tools/make_toy_ade.py (ADE20K's layout and 150 classes) with
# the toy VOC's CPU-sized pipelines: trained and predicted at half size, evaluated at the
# original size (no held-out test split: test is val).
_base_ = ['./toyvoc_incremental.py']
data_root = 'data/toyade'
ade = dict(type='IncrementalDataset', base_type='ADE20KDataset', data_root=data_root,
           ann_file='')
train_dataloader = dict(
    dataset=dict(ade, data_prefix=dict(img_path='images/training',
                                       seg_map_path='annotations/training')))
val_dataloader = dict(
    dataset=dict(ade, data_prefix=dict(img_path='images/validation',
                                       seg_map_path='annotations/validation')))
test_dataloader = val_dataloader
