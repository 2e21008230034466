_base_ = ['./bisenet_r18_toyvoc_15-1_step0.py']
incremental = dict(step=4)
