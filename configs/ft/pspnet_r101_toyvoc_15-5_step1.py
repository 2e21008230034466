_base_ = ['./pspnet_r101_toyvoc_15-5_step0.py']
incremental = dict(step=1)
