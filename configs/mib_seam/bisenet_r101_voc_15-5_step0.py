# MiB on VOC 15-5 with weak supervision: step 0 on true masks, step 1 on SEAM pseudo-labels made
# from image-level labels (incremental.seam names the SEAM config of each step; {step} is replaced).
# tools/run_incremental.py trains the SEAM of every step > 0 and makes its pseudo-labels first.
_base_ = ['../mib/bisenet_r101_voc_15-5_step0.py']
incremental = dict(
    labels='seam', seam=dict(config='configs/seam/seam_r50_voc_15-5_step{step}.py'))
# Pseudo-labelled pixels that the teacher (step t-1 model) gives to an old class become background:
# a CAM spilling onto old objects must not teach the student to overwrite them.
model = dict(old_class_veto=True)
