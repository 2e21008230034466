_base_ = ['./bisenetv2_voc_15-5_step0.py']
incremental = dict(step=1)
