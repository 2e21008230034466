"""Timing and memory utilities of the benchmark: CUDA-synchronised wall time, medians,
round-robin order, peak memory, FLOP counts, the machine's matmul peak and description."""
import ctypes
import datetime
import gc
import logging
import os
import platform
import statistics
import threading
import time
import warnings
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA only)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of ``fn()`` in milliseconds, CUDA work included."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return (time.perf_counter() - start) * 1e3


def summary(times: Sequence[float]) -> dict:
    """Median, min, max (ms, 3 decimals) and count of ``times``."""
    return dict(ms=round(statistics.median(times), 3), ms_min=round(min(times), 3),
                ms_max=round(max(times), 3), repeats=len(times))


def rotated(names: Sequence[str], round_index: int) -> List[str]:
    """``names`` rotated by the round index, so no model always runs first or last."""
    names = list(names)
    k = round_index % max(len(names), 1)
    return names[k:] + names[:k]


def tensor_bytes(model: nn.Module) -> int:
    """Bytes of the parameters and buffers of ``model``."""
    return sum(t.numel() * t.element_size()
               for t in list(model.parameters()) + list(model.buffers()))


# ------------------------------------------------------------------------------ peak memory
_PAGE_SIZE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096


def _rss_bytes() -> Optional[int]:
    """Resident set size of this process from /proc (Linux); None elsewhere."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def _malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so later RSS growth shows new use."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak extra memory of a block: CUDA allocator peak on GPU, sampled RSS growth on CPU.

    On CPU a thread samples the process RSS every ``interval`` seconds (after ``gc`` and
    ``malloc_trim``, so freed memory does not hide new allocations); the result is the peak
    minus the RSS at entry. Sampling can miss allocations shorter than the interval, so the
    figure is a lower bound of the true peak.

    Attributes:
        peak_bytes (int | None): Peak extra bytes, None where unmeasurable.
    """

    def __init__(self, device: torch.device, interval: float = 0.0005) -> None:
        self.device = device
        self.interval = interval
        self.peak_bytes: Optional[int] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._base = 0
        self._peak = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = _rss_bytes() or 0
            if rss > self._peak:
                self._peak = rss
            time.sleep(self.interval)

    def __enter__(self) -> 'PeakMemory':
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        _malloc_trim()
        base = _rss_bytes()
        if base is None:
            return self
        self._base = self._peak = base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
            return
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss_bytes() or 0)
            self.peak_bytes = max(self._peak - self._base, 0)


# ------------------------------------------------------------------------- FLOPs and peak
def count_flops(module: nn.Module, size: int, device: torch.device) -> dict:
    """MMEngine's FLOPs and parameters of ``module`` on one ``size`` x ``size`` image.

    MMEngine (fvcore's convention) counts one multiply-add as one FLOP; ``gflops`` is that count,
    ``gflops_2x`` the same work as multiply + add (the convention of a matmul's 2 n^3).
    """
    from mmengine.analysis import get_model_complexity_info
    from mmengine.logging import MMLogger
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    logger = MMLogger.get_current_instance()
    level = logger.level
    try:
        logger.setLevel(logging.ERROR)  # "Unsupported operator" notes of every model
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter('ignore')
            info = get_model_complexity_info(
                module, inputs=(torch.randn(1, 3, size, size, device=device), ),
                show_table=False, show_arch=False)
    finally:
        logger.setLevel(level)
        for m, training in modes:
            m.training = training
    flops = float(info['flops'])
    return dict(gflops=round(flops / 1e9, 3), gflops_2x=round(2 * flops / 1e9, 3),
                params_m=round(float(info['params']) / 1e6, 3), size=size)


def matmul_peak_gflops(size: int, device: torch.device, repeats: int = 5) -> dict:
    """Dense fp32 matmul throughput (2 n^3 FLOPs per product), best of ``repeats``."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    with torch.inference_mode():
        torch.mm(a, b)
        times = [time_ms(lambda: torch.mm(a, b), device) for _ in range(repeats)]
    best = min(times) / 1e3
    return dict(gflops=round(2 * size**3 / best / 1e9, 2), size=size, dtype='float32',
                ms=round(min(times), 3))


def machine_info(device: torch.device) -> dict:
    """CPU/GPU, threads, library versions and load of the machine."""
    import mmengine
    import mmseg

    from mmincseg import __version__
    try:
        import mmcv
        mmcv_version = mmcv.__version__
    except ImportError:
        mmcv_version = None
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info = dict(
        cpu_model=cpu, cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
        device=str(device), gpu=torch.cuda.get_device_name(device) if device.type == 'cuda'
        else None, platform=platform.platform(), python=platform.python_version(),
        torch=torch.__version__, mmcv=mmcv_version, mmengine=mmengine.__version__,
        mmseg=mmseg.__version__, mmincseg=__version__,
        date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        memory_method=('torch.cuda.max_memory_allocated' if device.type == 'cuda' else
                       'sampled RSS growth (/proc/self/statm, 0.5 ms) after gc + malloc_trim'))
    if hasattr(os, 'getloadavg'):
        info['load_avg_start'] = [round(v, 2) for v in os.getloadavg()]
    return info
