_base_ = ['./segformer_b0_voc_15-1_step0.py']
incremental = dict(step=2)
