_base_ = [
    '../_base_/models/toy_bisenet_seed_r101.py', '../_base_/datasets/toyvoc_incremental.py',
    '../_base_/schedules/toy_cpu.py', '../_base_/default_runtime.py'
]
# MiB's authors distil with weight 100 on 15-1 (10 on the other splits)
incremental = dict(task='15-1', step=0, setting='overlap', method='mib', labels='gt',
                   kd_weight=100.0)
