_base_ = [
    '../_base_/models/toy_r18.py', '../_base_/datasets/toyvoc_incremental.py',
    '../_base_/schedules/toy_cpu.py', '../_base_/default_runtime.py'
]
# one class per step, as 15-1, where MiB's authors distil with weight 100 (10 on 15-5)
incremental = dict(task='10-1', step=0, setting='overlap', method='mib', labels='gt',
                   kd_weight=100.0)
