_base_ = ['./bisenetv2_voc_15-1_step0.py']
incremental = dict(step=1)
