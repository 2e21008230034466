# MiB on VOC 10-10 with weak supervision: step 0 on true masks (classes 1-10), step 1 on SEAM
# pseudo-labels of classes 11-20 made from image-level labels (as bisenet_r18_toyvoc_15-5_step0.py).
_base_ = ['../mib/bisenet_r18_toyvoc_10-10_step0.py']
incremental = dict(
    labels='seam', seam=dict(config='configs/seam/seam_r18_toyvoc_10-10.py'))
