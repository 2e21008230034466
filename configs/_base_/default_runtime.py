# Runtime shared by every mmincseg config: mmseg scope, our plugin, the incremental runner.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmincseg'], allow_failed_imports=False)
runner_type = 'IncrementalRunner'  # resolves the `incremental` block (mmincseg/apis/config.py)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))  # the resolver switches to gloo when CUDA is absent
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=10, max_keep_ckpts=2,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # prediction overlays of every 50th val image (work_dir/<time>/vis_data/vis_image); mmseg's
    # SegVisualizationHook that also draws the crops of VOC's Resize + CenterCrop evaluation
    visualization=dict(type='EvaluatedImageVisualizationHook', draw=True, interval=50))
