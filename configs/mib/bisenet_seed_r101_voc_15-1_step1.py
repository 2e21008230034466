_base_ = ['./bisenet_seed_r101_voc_15-1_step0.py']
incremental = dict(step=1)
