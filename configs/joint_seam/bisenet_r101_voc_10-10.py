# Joint on pseudo-labels, reported in the columns of split 10-10 (base / novel classes).
_base_ = ['./bisenet_r101_voc_20-0.py']
incremental = dict(task='10-10')
