_base_ = [
    '../_base_/models/bisenet_r101.py', '../_base_/datasets/ade20k_incremental.py',
    '../_base_/schedules/ade_60e.py', '../_base_/default_runtime.py'
]
incremental = dict(task='100-10', step=0, setting='overlap', method='plop', labels='gt')
