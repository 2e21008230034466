# Joint (offline) training of all 150 ADE20K classes: the upper bound.
_base_ = [
    '../_base_/models/bisenet_r101.py', '../_base_/datasets/ade20k_incremental.py',
    '../_base_/schedules/ade_60e.py', '../_base_/default_runtime.py'
]
incremental = dict(task='150-0', step=0, setting='overlap', method='joint', labels='gt')
