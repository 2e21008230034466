_base_ = [
    '../_base_/models/toy_r18.py', '../_base_/datasets/toyvoc_incremental.py',
    '../_base_/schedules/toy_cpu.py', '../_base_/default_runtime.py'
]
incremental = dict(task='10-10', step=0, setting='overlap', method='mib', labels='gt')
