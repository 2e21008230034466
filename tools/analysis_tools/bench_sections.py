"""Extra sections of the benchmark: the operator profile of a MiB step, the training data
pipeline and SEAM pseudo-label CAMs."""
import copy
import shutil
import statistics
import tempfile
import time
from typing import Callable, Optional

import torch
import torch.nn as nn
from mmengine.config import Config

from .bench_measure import sync, time_ms
from .bench_models import STEP, TASK, BenchmarkSettings, config_path, train_config
from .bench_train import optim_wrapper

Logger = Callable[[str], None]


def profile_train_step(model: nn.Module, data: dict, steps: int, top: int,
                       device: torch.device) -> dict:
    """``torch.profiler`` of ``steps`` training steps: the operators of highest self time."""
    from torch.profiler import ProfilerActivity, profile
    wrapper = optim_wrapper(model)
    model.train_step(copy.copy(data), wrapper)  # warm (its own optimizer state)
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    sync(device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            model.train_step(copy.copy(data), wrapper)
        sync(device)
    wall_ms = (time.perf_counter() - start) * 1e3 / steps
    on_gpu = device.type == 'cuda'

    def self_time(event) -> float:  # microseconds
        if on_gpu:
            for attr in ('self_device_time_total', 'self_cuda_time_total'):
                if hasattr(event, attr):
                    return float(getattr(event, attr))
        return float(event.self_cpu_time_total)

    events = [e for e in prof.key_averages() if not e.key.startswith('ProfilerStep')]
    total = sum(self_time(e) for e in events) or 1.0
    events.sort(key=self_time, reverse=True)
    ops = [dict(op=e.key, self_ms_per_step=round(self_time(e) / 1e3 / steps, 3),
                share=round(self_time(e) / total, 4), calls_per_step=round(e.count / steps, 1))
           for e in events[:top]]
    groups = {'convolution': ('conv', ), 'batch_norm': ('batch_norm', 'native_batch_norm'),
              'interpolate': ('upsample', 'interp'),
              'softmax / logsumexp': ('softmax', 'logsumexp'),
              'optimizer': ('sgd', '_foreach', 'optimizer')}
    grouped = {}
    for group, keys in groups.items():
        t = sum(self_time(e) for e in events if any(k in e.key.lower() for k in keys))
        grouped[group] = round(t / total, 4)
    return dict(method='mib', steps=steps, wall_ms_per_step=round(wall_ms, 3),
                profiled_self_ms_per_step=round(total / 1e3 / steps, 3),
                time='self CUDA time' if on_gpu else 'self CPU time', top_ops=ops,
                group_share=grouped)


def benchmark_pipeline(settings: BenchmarkSettings, data_root: Optional[str] = None,
                       log: Logger = print) -> dict:
    """Images/s of the incremental VOC training pipeline (15-5 step 1) on a generated toy VOC.

    The toy images have the training crop as nominal side (like VOC's ~500 px images with
    512 crops); the pipeline of the toy config is used with the crop set to
    ``settings.train_size`` and the resize range scaled as in VOC (scale (4c, c), ratio
    0.5..2 of the toy config). The first batch (worker start-up) is not timed.
    """
    from mmengine.runner import Runner

    from mmincseg.apis.config import resolve_incremental_config, set_data_root
    own_root = data_root is None
    crop = settings.train_size
    if own_root:
        from mmincseg.datasets.toy_voc import make_toy_voc
        data_root = tempfile.mkdtemp(prefix='mmincseg_bench_toyvoc_')
        start = time.perf_counter()
        make_toy_voc(data_root, seed=0, num_train=settings.pipeline_images, num_val=1, num_test=0,
                     size=max(crop, 32))
        log(f'  toy VOC: {settings.pipeline_images} images of ~{crop} px in '
            f'{time.perf_counter() - start:.1f} s')
    try:
        cfg = train_config('mib')
        cfg = resolve_incremental_config(cfg)
        set_data_root(cfg, data_root)
        loader_cfg = copy.deepcopy(cfg.train_dataloader)
        dataset = loader_cfg.dataset
        for t in dataset.pipeline:
            if t['type'] == 'RandomCrop':
                t['crop_size'] = (crop, crop)
            elif t['type'] == 'RandomResize':
                t['scale'] = (4 * crop, crop)
        result = dict(crop=crop, batch=settings.train_batch, task=TASK, step=STEP,
                      source_images=settings.pipeline_images, workers={})
        for workers in settings.pipeline_workers:
            loader = copy.deepcopy(loader_cfg)
            loader.update(batch_size=settings.train_batch, num_workers=workers,
                          persistent_workers=workers > 0)
            loader = Runner.build_dataloader(loader, seed=0)
            result['step_images'] = len(loader.dataset)
            it = iter(loader)
            next(it)
            count = 0
            start = time.perf_counter()
            while count < settings.pipeline_batches:
                try:
                    batch = next(it)
                except StopIteration:
                    it = iter(loader)
                    continue
                count += 1
            seconds = time.perf_counter() - start
            imgs = count * len(batch['inputs'])
            result['workers'][str(workers)] = dict(imgs_per_s=round(imgs / seconds, 2),
                                                   batches=count)
            log(f'  pipeline, {workers} workers: {imgs / seconds:.1f} imgs/s')
            del it, loader
        return result
    finally:
        if own_root:
            shutil.rmtree(data_root, ignore_errors=True)


def benchmark_seam(size: int, repeats: int, device: torch.device) -> dict:
    """Images/s of SEAM pseudo-label CAMs (``infer_cams`` with the model's test scales/flip)."""
    try:
        from mmincseg.models.seam import SEAMNet, infer_cams
    except ImportError as e:
        return dict(skipped=f'mmincseg.models.seam has no infer_cams/SEAMNet ({e})')
    model_cfg = Config.fromfile(config_path('configs/_base_/models/seam_r50.py')).model
    model_cfg.backbone.pop('init_cfg', None)  # timing only: no ImageNet weights needed
    model = SEAMNet(**{k: v for k, v in model_cfg.items() if k != 'type'}).to(device).eval()
    test_cfg = model.test_cfg
    img = torch.randn(3, size, size, generator=torch.Generator().manual_seed(0)).to(device)

    def call():
        return infer_cams(model, img, scales=test_cfg['scales'], flip=test_cfg['flip'],
                          img_labels=[1, 16], use_pcm=test_cfg['use_pcm'],
                          norm=test_cfg.get('norm', 'min_max'))

    with torch.inference_mode():
        call()
        times = [time_ms(call, device) for _ in range(repeats)]
    ms = statistics.median(times)
    return dict(size=size, scales=list(test_cfg['scales']), flip=bool(test_cfg['flip']),
                backbone=f"ResNetV1c-{model.backbone.depth}", ms_per_img=round(ms, 3),
                imgs_per_s=round(1e3 / ms, 3), repeats=repeats)
