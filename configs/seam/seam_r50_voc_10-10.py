# SEAM for the new classes of VOC 10-10 (step 1: 11-20), as seam_r50_voc_15-5.py.
_base_ = ['./seam_r50_voc_15-5.py']
incremental = dict(task='10-10', step=1)
