_base_ = [
    '../_base_/models/toy_r18.py', '../_base_/datasets/toyvoc_incremental.py',
    '../_base_/schedules/toy_cpu.py', '../_base_/default_runtime.py'
]
# MiB's weight (100) x MiB's lr after step 0 (0.001) kept at the toy's lr (0.05 x 0.1 = 0.005):
# MiB's own weight diverges here (ParameterImportanceHook refuses it)
incremental = dict(task='15-1', step=0, setting='overlap', method='rw', labels='gt',
                   reg_weight=20.0)
