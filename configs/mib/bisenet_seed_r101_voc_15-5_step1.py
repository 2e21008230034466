_base_ = ['./bisenet_seed_r101_voc_15-5_step0.py']
incremental = dict(step=1)
