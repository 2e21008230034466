# SEAM for the new class of one VOC 15-1 step (step t learns class 15 + t), as seam_r50_voc_15-5.py.
# Step t (1-5): --cfg-options incremental.step=t; the weak configs' step hook sets it.
_base_ = ['./seam_r50_voc_15-5.py']
incremental = dict(task='15-1', step=1)
