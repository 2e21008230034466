# SEAM for the new classes of toy VOC 10-10 (step 1: 11-20), as seam_r18_toyvoc_15-5.py.
_base_ = ['./seam_r18_toyvoc_15-5.py']
incremental = dict(task='10-10', step=1)
