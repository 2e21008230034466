_base_ = [
    '../_base_/models/toy_r18.py', '../_base_/datasets/toyade_incremental.py',
    '../_base_/schedules/toy_cpu.py', '../_base_/default_runtime.py'
]
incremental = dict(task='100-10', step=0, setting='overlap', method='plop', labels='gt')
