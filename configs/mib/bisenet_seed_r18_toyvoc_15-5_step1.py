_base_ = ['./bisenet_seed_r18_toyvoc_15-5_step0.py']
incremental = dict(step=1)
