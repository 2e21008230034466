# MiB on VOC 15-5 with weak supervision: step 0 on true masks, step 1 on SEAM pseudo-labels made
# from image-level labels (incremental.seam names the SEAM config; the step hook sets its step).
# tools/run_incremental.py trains the SEAM of every step > 0 and makes its pseudo-labels first.
_base_ = ['../mib/bisenet_r101_voc_15-5_step0.py']
incremental = dict(
    labels='seam', seam=dict(config='configs/seam/seam_r50_voc_15-5.py'))
