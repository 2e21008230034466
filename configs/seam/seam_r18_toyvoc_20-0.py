# SEAM for all 20 classes on the toy VOC (configs/joint_seam/).
_base_ = ['./seam_r18_toyvoc_15-5.py']
incremental = dict(task='20-0', step=0)
