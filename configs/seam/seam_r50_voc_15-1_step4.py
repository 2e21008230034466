_base_ = ['./seam_r50_voc_15-5_step1.py']
incremental = dict(task='15-1', step=4)
