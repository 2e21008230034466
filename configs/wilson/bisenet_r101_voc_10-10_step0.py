# WILSON on VOC 10-10 (its paper's second setting): step 0 on true masks (classes 1-10,
# sigmoid loss), step 1 learns classes 11-20 from image-level labels only
# (as bisenet_r101_voc_15-5_step0.py).
_base_ = ['../mib/bisenet_r101_voc_10-10_step0.py']
incremental = dict(method='wilson', labels='image')
