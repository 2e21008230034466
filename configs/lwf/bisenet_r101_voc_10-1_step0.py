_base_ = [
    '../_base_/models/bisenet_r101.py', '../_base_/datasets/voc_incremental.py',
    '../_base_/schedules/voc_30e.py', '../_base_/default_runtime.py'
]
incremental = dict(task='10-1', step=0, setting='overlap', method='lwf', labels='gt')
