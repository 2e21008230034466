_base_ = [
    '../_base_/models/bisenet_r101.py', '../_base_/datasets/voc_incremental.py',
    '../_base_/schedules/voc_30e.py', '../_base_/default_runtime.py'
]
# one class per step, as 15-1, where MiB's authors distil with weight 100 (10 on 15-5)
incremental = dict(task='10-1', step=0, setting='overlap', method='mib', labels='gt',
                   kd_weight=100.0)
