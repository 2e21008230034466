_base_ = ['./bisenet_r18_toyvoc_20-0.py']
incremental = dict(task='10-10')
