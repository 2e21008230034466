_base_ = ['./seam_r18_toyvoc_15-5_step1.py']
incremental = dict(task='15-1', step=4)
