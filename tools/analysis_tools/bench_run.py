"""The benchmark run: every section in turn, then the ratios and targets of the document.

``run_benchmark()`` returns the JSON document of DESIGN.md ("Benchmark output")::

    {"machine": {...},
     "infer": {MODEL: {"ms_per_img", "imgs_per_s", "peak_mem_mb", ...}},
     "train_step": {METHOD: {"ms", ...}},
     "ratios": {"mib_over_ft", "loss_share_of_mib_step", "deeplabv3_r101_os16_over_bisenet_r18",
                "train_gflops_over_matmul_peak", ...},
     ...}

with extra sections (``infer_b8``, ``train_step_by_model`` (the MiB step of each model of
``BenchmarkSettings.train_models``, keyed by MODEL), ``channels_last``, ``flops``,
``matmul_gflops``, ``pipeline``, ``seam``, ``profile``, ``targets``, ``settings``).
:func:`~tools.analysis_tools.bench_report.render_markdown` turns it into docs/benchmarks.md.

Method, shared by every section: models are built once, put in eval mode (inference) or train mode
(training step), and measured interleaved in one process (round-robin, the order rotated every
round) so that a change of machine load hits all of them alike; each measurement is warmed up and
the median of the repeats is reported. Timings synchronise CUDA when run on a GPU.
"""
import gc
import os
import time
import warnings
from dataclasses import asdict
from typing import Callable, List, Optional

import torch

from .bench_inference import benchmark_inference
from .bench_measure import count_flops, machine_info, matmul_peak_gflops
from .bench_models import (CHANNELS_LAST, FULL, MODEL_CONFIGS, QUICK, BenchmarkSettings,
                           TensorForward, TrainForward, attach_method_state,
                           build_inference_model, build_train_models, setup,
                           split_channels_last, train_batch_data)
from .bench_report import check_targets, compute_ratios
from .bench_sections import benchmark_pipeline, benchmark_seam, profile_train_step
from .bench_train import benchmark_train_steps

Logger = Callable[[str], None]


def run_benchmark(quick: bool = False, device: Optional[str] = None,
                  settings: Optional[BenchmarkSettings] = None, data_root: Optional[str] = None,
                  threads: Optional[int] = None, log: Logger = print) -> dict:
    """Run every section and return the benchmark document (see the module docstring).

    Args:
        quick (bool): Use the tiny ``QUICK`` sizes (smoke test) instead of ``FULL``.
        device (str, optional): ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; default CUDA if available.
        settings (BenchmarkSettings, optional): Overrides ``quick``.
        data_root (str, optional): An existing toy VOC for the pipeline section; default: one is
            generated in a temporary folder and removed.
        threads (int, optional): torch intra-op threads during the run (restored afterwards);
            default: torch's (one per core).
        log (callable): Progress messages.

    Returns:
        dict: The JSON-serialisable benchmark document.
    """
    previous_threads = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise ValueError(f'threads must be >= 1, got {threads}')
        torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            # Deprecation notes of mmseg/mmcv/mmengine, repeated for every model built.
            for package in ('mmseg', 'mmcv', 'mmengine'):
                warnings.filterwarnings('ignore', module=package)
            return _run_benchmark(quick, device, settings, data_root, _Progress(log))
    finally:
        torch.set_num_threads(previous_threads)


class _Progress:
    """Progress messages prefixed with the elapsed seconds; samples the 1-minute load average
    at every message (the machine's load during the run is part of the result)."""

    def __init__(self, log: Logger) -> None:
        self.log = log
        self.began = time.perf_counter()
        self.loads: List[float] = []

    def __call__(self, msg: str) -> None:
        if hasattr(os, 'getloadavg'):
            self.loads.append(round(os.getloadavg()[0], 2))
        self.log(f'[{time.perf_counter() - self.began:4.0f} s] {msg}')


def _run_benchmark(quick: bool, device: Optional[str], settings: Optional[BenchmarkSettings],
                   data_root: Optional[str], log: _Progress) -> dict:
    setup()
    settings = settings or (QUICK if quick else FULL)
    dev = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device {device!r} requested but CUDA is not available; use '
                           '--device cpu')
    unknown = (set(settings.models) | set(settings.train_models)) - set(MODEL_CONFIGS)
    if unknown:
        raise ValueError(f'unknown benchmark models {sorted(unknown)}; valid: '
                         f'{sorted(MODEL_CONFIGS)}')
    start = time.perf_counter()
    torch.manual_seed(0)
    doc = dict(machine=machine_info(dev), mode='quick' if quick else 'full',
               settings=asdict(settings))

    log('matmul peak')
    doc['matmul_gflops'] = matmul_peak_gflops(settings.matmul_size, dev)

    names = list(settings.models) + [n + CHANNELS_LAST for n in settings.channels_last_models
                                     if n in settings.models]
    log(f'building {len(names)} inference models')
    models = {name: build_inference_model(name, dev) for name in names}
    if settings.flops:
        log('FLOPs (mmengine.analysis)')
        doc['flops'] = {name: count_flops(TensorForward(models[name]), settings.infer_size, dev)
                        for name in settings.models}
    log(f'inference {settings.infer_size} px, batch 1')
    doc['infer'], nhwc_infer = split_channels_last(
        benchmark_inference(models, settings.infer_size, 1, settings.infer_warmup,
                            settings.infer_repeats, dev, log=log))
    b8_models = [n for n in settings.batch_infer_models if n in models]
    if settings.batch_infer_batch and b8_models:
        log(f'inference {settings.infer_size} px, batch {settings.batch_infer_batch}')
        doc['infer_b8'] = benchmark_inference({n: models[n] for n in b8_models},
                                              settings.infer_size, settings.batch_infer_batch, 0,
                                              settings.batch_infer_repeats, dev,
                                              measure_memory=False, log=log)
    del models
    gc.collect()

    log(f'training step {settings.train_size} px, batch {settings.train_batch}')
    methods = list(settings.methods) + [m + CHANNELS_LAST for m in settings.channels_last_methods
                                        if m in settings.methods]
    students = {m: build_train_models(m, dev) for m in methods}
    data = train_batch_data(settings.train_batch, settings.train_size)
    train = benchmark_train_steps(students, data, settings.train_warmup, settings.train_repeats,
                                  dev, log=log, on_optimizer=attach_method_state)
    for entry in train.values():
        entry.update(size=settings.train_size, batch=settings.train_batch)
    doc['train_step'], nhwc_train = split_channels_last(train)
    doc['channels_last'] = dict(infer=nhwc_infer, train_step=nhwc_train)
    train_flops = None
    if settings.flops and 'mib' in students:
        mib = students['mib']
        student = count_flops(TrainForward(mib), settings.train_size, dev)
        teacher = count_flops(TensorForward(mib.teacher), settings.train_size, dev)
        # forward + backward ~ 3x forward for the student; one forward for the teacher.
        per_img = 3 * student['gflops_2x'] + teacher['gflops_2x']
        train_flops = dict(student_forward_gflops_2x=student['gflops_2x'],
                           teacher_forward_gflops_2x=teacher['gflops_2x'],
                           step_gflops_2x=round(per_img * settings.train_batch, 3),
                           size=settings.train_size, batch=settings.train_batch)
        doc.setdefault('flops', {})['train_step_mib'] = train_flops
    if settings.profile_steps and 'mib' in students:
        log('profiling a MiB step')
        doc['profile'] = profile_train_step(students['mib'], data, settings.profile_steps,
                                            settings.profile_top, dev)
    del students
    gc.collect()
    if settings.train_models:
        log(f'MiB step by model {settings.train_size} px, batch {settings.train_batch}')
        by_model = {m: build_train_models('mib', dev, model=m) for m in settings.train_models}
        doc['train_step_by_model'] = benchmark_train_steps(
            by_model, data, settings.train_models_warmup, settings.train_models_repeats, dev,
            log=log)
        for entry in doc['train_step_by_model'].values():
            entry.update(size=settings.train_size, batch=settings.train_batch, method='mib')
        del by_model
        gc.collect()

    if settings.pipeline_images:
        log('training data pipeline')
        try:
            doc['pipeline'] = benchmark_pipeline(settings, data_root, log=log)
        except Exception as e:  # report, never lose the other sections
            doc['pipeline'] = dict(skipped=f'{type(e).__name__}: {e}')
    if settings.seam_size:
        log(f'SEAM CAM inference {settings.seam_size} px')
        try:
            doc['seam'] = benchmark_seam(settings.seam_size, settings.seam_repeats, dev)
        except Exception as e:
            doc['seam'] = dict(skipped=f'{type(e).__name__}: {e}')

    doc['ratios'] = compute_ratios(doc)
    doc['targets'] = check_targets(doc['ratios'])
    if hasattr(os, 'getloadavg'):
        doc['machine']['load_avg_end'] = [round(v, 2) for v in os.getloadavg()]
        doc['machine']['load_1min_max'] = max(log.loads + [doc['machine']['load_avg_end'][0]])
    doc['machine']['wall_s'] = round(time.perf_counter() - start, 1)
    return doc
