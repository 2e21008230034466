_base_ = [
    '../_base_/models/toy_deeplabv3_r101.py', '../_base_/datasets/toyvoc_incremental.py',
    '../_base_/schedules/toy_cpu.py', '../_base_/default_runtime.py'
]
incremental = dict(task='15-5', step=0, setting='overlap', method='mib', labels='gt')
