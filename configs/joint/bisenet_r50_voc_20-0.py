# Joint (offline) training of all 20 classes: the seed's Table 1 and the upper bound of Table 2.
_base_ = [
    '../_base_/models/bisenet_r50.py', '../_base_/datasets/voc_incremental.py',
    '../_base_/schedules/voc_30e.py', '../_base_/default_runtime.py'
]
incremental = dict(task='20-0', step=0, setting='overlap', method='joint', labels='gt')
