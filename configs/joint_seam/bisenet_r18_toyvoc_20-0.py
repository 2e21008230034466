# Joint training on SEAM pseudo-labels of all 20 classes: a SEAM learns all classes from the
# image-level labels of every training image (configs/seam/seam_r18_toyvoc_20-0.py); its labels
# replace the true masks of the one joint step; validation on true masks. The weakly supervised
# counterpart of configs/joint/ (tools/run_incremental.py trains the SEAM and makes the labels).
_base_ = ['../joint/bisenet_r18_toyvoc_20-0.py']
incremental = dict(labels='seam', seam=dict(config='configs/seam/seam_r18_toyvoc_20-0.py'))
