_base_ = ['./bisenetv2_toyvoc_15-5_step0.py']
incremental = dict(step=1)
