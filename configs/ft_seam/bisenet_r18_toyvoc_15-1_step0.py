# FT on VOC 15-1 with weak supervision: steps 1-5 train on SEAM pseudo-labels (see 15-5).
_base_ = ['../ft/bisenet_r18_toyvoc_15-1_step0.py']
incremental = dict(
    labels='seam', seam=dict(config='configs/seam/seam_r18_toyvoc_15-1.py'))
