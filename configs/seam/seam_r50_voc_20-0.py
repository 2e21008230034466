# SEAM for all 20 VOC classes (joint training on pseudo-labels, configs/joint_seam/).
_base_ = ['./seam_r50_voc_15-5.py']
incremental = dict(task='20-0', step=0)
