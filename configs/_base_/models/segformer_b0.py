# SegFormer-B0 (mmseg's MixVisionTransformer + SegformerHead model _base_) for VOC: BN instead of
# SyncBN, 21 classes, batches padded to a multiple of 32, the MiT-B0 ImageNet weights of mmseg.
# The incremental block turns the head's classifier into an IncrementalClassifier.
_base_ = ['mmseg::_base_/models/segformer_mit-b0.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size_divisor=32),
    backbone=dict(init_cfg=dict(
        type='Pretrained',
        checkpoint='https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/'
        'mit_b0_20220624-7e0fe6dd.pth')),
    decode_head=dict(num_classes=21, norm_cfg=norm_cfg))
