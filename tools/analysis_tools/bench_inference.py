"""Inference section of the benchmark: ``encode_decode`` of every model, interleaved."""
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

from .bench_measure import PeakMemory, rotated, summary, tensor_bytes, time_ms
from .bench_models import img_metas

Logger = Callable[[str], None]


def benchmark_inference(models: Dict[str, nn.Module], size: int, batch: int, warmup: int,
                        repeats: int, device: torch.device, measure_memory: bool = True,
                        log: Logger = print) -> Dict[str, dict]:
    """Interleaved inference timing of ``models`` (eval mode, ``torch.inference_mode``).

    Each call is ``model.encode_decode`` (backbone, decode head, logits resized to the input) on
    a random (batch, 3, size, size) input.

    Returns:
        dict: Per model ``ms_per_img``, ``imgs_per_s``, ``peak_mem_mb`` (weights + peak extra
        memory of one call), ``ms_per_batch``, ``batch``, ``size``, ``ms_min``, ``ms_max``.
    """
    inputs = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    inputs = inputs.to(device)
    metas = img_metas(batch, size)
    names = list(models)

    def call(name: str) -> Callable[[], object]:
        return lambda: models[name].encode_decode(inputs, metas)

    times: Dict[str, List[float]] = {n: [] for n in names}
    extra: Dict[str, Optional[int]] = {n: None for n in names}
    with torch.inference_mode():
        for r in range(warmup):
            for name in rotated(names, r):
                call(name)()
        if measure_memory:
            for name in names:
                with PeakMemory(device) as mem:
                    call(name)()
                extra[name] = mem.peak_bytes
        for r in range(repeats):
            for name in rotated(names, r):
                times[name].append(time_ms(call(name), device))
            log(f'  infer b{batch} round {r + 1}/{repeats}: ' + ', '.join(
                f'{n} {times[n][-1]:.0f} ms' for n in names))
    result = {}
    for name in names:
        s = summary(times[name])
        weights = tensor_bytes(models[name])
        entry = dict(ms_per_img=round(s['ms'] / batch, 3),
                     imgs_per_s=round(batch * 1e3 / s['ms'], 3),
                     peak_mem_mb=None, ms_per_batch=s['ms'], ms_min=s['ms_min'],
                     ms_max=s['ms_max'], repeats=s['repeats'], batch=batch, size=size,
                     weights_mb=round(weights / 2**20, 1))
        if extra[name] is not None:
            entry['activation_mb'] = round(extra[name] / 2**20, 1)
            entry['peak_mem_mb'] = round((weights + extra[name]) / 2**20, 1)
        result[name] = entry
    return result
