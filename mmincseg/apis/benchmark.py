"""Speed and memory benchmark: inference of the segmentation models, one incremental training step
per method, the loss share of a MiB step, the training data pipeline and SEAM pseudo-labelling.

``run_benchmark()`` returns the JSON document of DESIGN.md ("Benchmark output")::

    {"machine": {...},
     "infer": {MODEL: {"ms_per_img", "imgs_per_s", "peak_mem_mb", ...}},
     "train_step": {METHOD: {"ms", ...}},
     "ratios": {"mib_over_ft", "loss_share_of_mib_step", "deeplabv3_r101_os16_over_bisenet_r18",
                "train_gflops_over_matmul_peak", ...},
     ...}

with extra sections (``infer_b8``, ``train_step_by_model`` (the MiB step of each model of
``BenchmarkSettings.train_models``, keyed by MODEL), ``flops``, ``matmul_gflops``, ``pipeline``,
``seam``, ``profile``, ``targets``, ``settings``). ``render_markdown()`` turns it into
docs/benchmarks.md.

Method, shared by every section: models are built once, put in eval mode (inference) or train mode
(training step), and measured interleaved in one process (round-robin, the order rotated every
round) so that a change of machine load hits all of them alike; each measurement is warmed up and
the median of the repeats is reported. Timings synchronise CUDA when run on a GPU.
"""
import copy
import ctypes
import datetime
import gc
import logging
import os
import os.path as osp
import platform
import shutil
import statistics
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

from .. import tasks
from ..tasks import IGNORE_INDEX

# DESIGN.md's MODEL names of the ``infer`` section (bisenet_seed_r18 is timed in
# ``train_step_by_model`` only)
MODELS_BENCHMARKED = ('bisenet_r18', 'bisenet_r50', 'bisenet_r101', 'bisenet_seed_r101',
                      'deeplabv3_r101_os16', 'deeplabv3_r101_os8')
METHODS_BENCHMARKED = ('ft', 'lwf', 'ilt', 'mib')
# Also measured in the channels-last memory format (section ``channels_last`` of the document;
# ``infer`` / ``train_step`` keep DESIGN.md's model and method names). Internally a name ending in
# CHANNELS_LAST builds the channels-last variant and is measured interleaved with the others.
CHANNELS_LAST = '_channels_last'
CHANNELS_LAST_MODELS = ('bisenet_r18', )
CHANNELS_LAST_METHODS = ('ft', 'mib')
# Model name -> (file in configs/_base_/models/, overrides merged into its `model`).
MODEL_CONFIGS: Dict[str, Tuple[str, dict]] = {
    'bisenet_r18': ('bisenet_r18.py', {}),
    'bisenet_r50': ('bisenet_r50.py', {}),
    'bisenet_r101': ('bisenet_r101.py', {}),
    # BiSeNet in the seed paper's own shape (SeedBiSeNetV1: FFM 32, classifiers on FFM and ARMs).
    'bisenet_seed_r18': ('bisenet_seed_r18.py', {}),
    'bisenet_seed_r101': ('bisenet_seed_r101.py', {}),
    'deeplabv3_r101_os16': ('deeplabv3_r101.py', {}),
    # mmseg's default DeepLabV3: output stride 8, ASPP rates doubled accordingly.
    'deeplabv3_r101_os8': ('deeplabv3_r101.py', dict(
        backbone=dict(dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1)),
        decode_head=dict(dilations=(1, 12, 24, 36)))),
}
TRAIN_CONFIG = 'configs/{method}/bisenet_r18_toyvoc_15-5_step1.py'
# Models whose MiB step is compared (section ``train_step_by_model``): the current BiSeNet shape,
# the seed's, and MiB's own DeepLabV3-R101.
TRAIN_MODELS = ('bisenet_r18', 'bisenet_seed_r18', 'bisenet_r101', 'bisenet_seed_r101',
                'deeplabv3_r101_os16')
# The step benchmarked: 15-5 step 1 (16 old channels incl. background, 5 new classes).
TASK, STEP = '15-5', 1


@dataclass
class BenchmarkSettings:
    """Sizes and repeat counts of one benchmark run (``FULL`` and ``QUICK`` below).

    Attributes:
        infer_size (int): Side of the square inference input, batch 1.
        infer_warmup (int): Untimed rounds over all models before timing.
        infer_repeats (int): Timed rounds (the median is reported).
        batch_infer_batch (int): Batch of the ``infer_b8`` section (0 skips it).
        batch_infer_repeats (int): Its timed rounds (models are already warm).
        batch_infer_models (tuple): Models of the batched section.
        train_size (int): Side of the square training crop.
        train_batch (int): Training batch size.
        train_warmup (int): Untimed training steps per method.
        train_repeats (int): Timed training steps per method.
        profile_steps (int): MiB steps recorded by ``torch.profiler`` (0 skips it).
        profile_top (int): Operators listed in the profile.
        pipeline_images (int): Training images of the generated toy VOC (0 skips the section).
        pipeline_workers (tuple): Dataloader worker counts measured.
        pipeline_batches (int): Timed batches per worker count.
        seam_size (int): Image side of the SEAM pseudo-label benchmark (0 skips it).
        seam_repeats (int): Timed images (after one warm-up image).
        matmul_size (int): Side of the square fp32 matmul used as the machine's peak.
        flops (bool): Count FLOPs/params with MMEngine's analyzer.
        models (tuple): Inference models (keys of ``MODEL_CONFIGS``).
        methods (tuple): Methods of the training-step section.
        train_models (tuple): Models (keys of ``MODEL_CONFIGS``) of the ``train_step_by_model``
            section: the MiB step of each, same size and batch as the method section (empty
            skips it).
        train_models_warmup (int): Untimed MiB steps per model there.
        train_models_repeats (int): Timed MiB steps per model there.
        channels_last_models (tuple): Of ``models``, also measured in channels-last format.
        channels_last_methods (tuple): Of ``methods``, also measured in channels-last format.
    """
    infer_size: int = 512
    infer_warmup: int = 1
    infer_repeats: int = 5
    batch_infer_batch: int = 8
    batch_infer_repeats: int = 3
    batch_infer_models: Tuple[str, ...] = ('bisenet_r18', 'bisenet_r50', 'bisenet_r101',
                                           'bisenet_seed_r101', 'deeplabv3_r101_os16')
    train_size: int = 256
    train_batch: int = 4
    train_warmup: int = 2
    train_repeats: int = 9
    profile_steps: int = 2
    profile_top: int = 12
    pipeline_images: int = 120
    pipeline_workers: Tuple[int, ...] = (0, 2)
    pipeline_batches: int = 12
    seam_size: int = 256
    seam_repeats: int = 2
    matmul_size: int = 2048
    flops: bool = True
    models: Tuple[str, ...] = MODELS_BENCHMARKED
    methods: Tuple[str, ...] = METHODS_BENCHMARKED
    train_models: Tuple[str, ...] = TRAIN_MODELS
    train_models_warmup: int = 1
    train_models_repeats: int = 3
    channels_last_models: Tuple[str, ...] = CHANNELS_LAST_MODELS
    channels_last_methods: Tuple[str, ...] = CHANNELS_LAST_METHODS


FULL = BenchmarkSettings()
QUICK = BenchmarkSettings(
    infer_size=64, infer_warmup=1, infer_repeats=2, batch_infer_batch=8, batch_infer_repeats=1,
    batch_infer_models=('bisenet_r18', 'deeplabv3_r101_os16'), train_size=64, train_batch=2,
    train_warmup=1, train_repeats=2, train_models=('bisenet_seed_r18', 'bisenet_seed_r101'),
    train_models_warmup=0, train_models_repeats=1, profile_steps=1, pipeline_images=24,
    pipeline_workers=(0, 1), pipeline_batches=3, seam_size=48, seam_repeats=1, matmul_size=256)

# name, ratio key, comparison, threshold, description (the targets).
TARGETS = (
    ('MiB step / FT step', 'mib_over_ft', '<=', 1.3,
     'MiB adds little over fine-tuning (teacher forward + KD)'),
    ('loss share of a MiB step', 'loss_share_of_mib_step', '<=', 0.05,
     'loss functions (forward + backward to the logits) <= 5% of the MiB step'),
    ('DeepLabV3-R101 OS16 / BiSeNet-R18 (inference)', 'deeplabv3_r101_os16_over_bisenet_r18', '>=',
     3.0, 'BiSeNet-R18 inference >= 3x faster than DeepLabV3-R101 OS16'),
    ('DeepLabV3-R101 OS16 / BiSeNet-R101 (inference)', 'deeplabv3_r101_os16_over_bisenet_r101',
     '>', 1.0, 'BiSeNet-R101 faster than DeepLabV3-R101'),
    ('DeepLabV3-R101 OS16 / seed BiSeNet-R101 (inference)',
     'deeplabv3_r101_os16_over_bisenet_seed_r101', '>', 1.0,
     "the seed's BiSeNet-R101 faster than DeepLabV3-R101"),
    ('pipeline / training consumption', 'pipeline_over_train_consumption', '>=', 3.0,
     'data pipeline delivers >= 3x the images/s the training step consumes'),
)

Logger = Callable[[str], None]


# ----------------------------------------------------------------------------------- helpers
def repo_root() -> str:
    """The checkout holding ``configs/`` (mmincseg is installed in editable mode)."""
    import mmincseg
    return osp.dirname(osp.dirname(osp.abspath(mmincseg.__file__)))


def _config_path(relative: str) -> str:
    path = osp.join(repo_root(), relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'benchmark config {path} does not exist; run the benchmark from a '
                                'checkout of mmincseg installed in editable mode (make install)')
    return path


def _setup() -> None:
    """Register mmseg and mmincseg modules and make mmseg the default registry scope."""
    from mmengine.registry import init_default_scope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import mmincseg  # noqa: F401  (registers our modules)
    init_default_scope('mmseg')


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time_ms(fn: Callable[[], object], device: torch.device) -> float:
    """Wall time of ``fn()`` in milliseconds, CUDA work included."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - start) * 1e3


def _summary(times: Sequence[float]) -> dict:
    return dict(ms=round(statistics.median(times), 3), ms_min=round(min(times), 3),
                ms_max=round(max(times), 3), repeats=len(times))


def _rotated(names: Sequence[str], round_index: int) -> List[str]:
    """``names`` rotated by the round index, so no model always runs first or last."""
    names = list(names)
    k = round_index % max(len(names), 1)
    return names[k:] + names[:k]


def _tensor_bytes(model: nn.Module) -> int:
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


# ------------------------------------------------------------------------------------ models
def _strip_pretrained(model_cfg: dict) -> None:
    """No ImageNet download: drop every ``Pretrained`` init of a model config, in place."""
    model_cfg.pop('pretrained', None)
    backbone = model_cfg.get('backbone', {})
    backbone['init_cfg'] = None
    if isinstance(backbone.get('backbone_cfg'), dict):
        backbone['backbone_cfg']['init_cfg'] = None


def _base_name(name: str) -> str:
    """``name`` without the channels-last suffix."""
    return name[:-len(CHANNELS_LAST)] if name.endswith(CHANNELS_LAST) else name


def _split_channels_last(results: Dict[str, dict]) -> Tuple[Dict[str, dict], Dict[str, dict]]:
    """Results keyed by DESIGN.md names, and the channels-last ones keyed by their base name."""
    plain = {n: r for n, r in results.items() if not n.endswith(CHANNELS_LAST)}
    nhwc = {_base_name(n): r for n, r in results.items() if n.endswith(CHANNELS_LAST)}
    return plain, nhwc


def model_file_config(name: str) -> Config:
    """The model file of benchmarked model ``name`` (``MODEL_CONFIGS``), overrides merged."""
    name = _base_name(name)
    if name not in MODEL_CONFIGS:
        raise ValueError(f'unknown benchmark model {name!r}; valid: {sorted(MODEL_CONFIGS)}')
    filename, overrides = MODEL_CONFIGS[name]
    cfg = Config.fromfile(_config_path(osp.join('configs', '_base_', 'models', filename)))
    cfg.merge_from_dict(dict(model=overrides))
    return cfg


def inference_model_config(name: str) -> Config:
    """The resolved 15-5 step-1 config (classifiers 16 + 5) of benchmarked model ``name``."""
    from .config import resolve_incremental_config
    cfg = model_file_config(name)
    cfg.incremental = dict(task=TASK, step=STEP, setting='overlap', method='ft', labels='gt')
    cfg = resolve_incremental_config(cfg)
    _strip_pretrained(cfg.model)
    return cfg


def build_inference_model(name: str, device: torch.device) -> nn.Module:
    """A randomly initialised model in eval mode, on ``device`` (channels-last for ``*_channels_last``
    names)."""
    from mmseg.registry import MODELS

    from ..engine.hooks import to_channels_last
    cfg = inference_model_config(name)
    model = MODELS.build(cfg.model).to(device).eval()
    return to_channels_last(model) if name.endswith(CHANNELS_LAST) else model


def build_train_models(method: str, device: torch.device,
                       model: Optional[str] = None) -> nn.Module:
    """The student of the toy 15-5 step-1 config of ``method``, with its step-0 teacher set.

    The student's classifiers are [16, 5]; the teacher is the same model with classifiers [16]
    (no distillation losses of its own), frozen by ``set_teacher``. ``<method>_channels_last``:
    both in the channels-last memory format (what ``ChannelsLastHook`` does).

    Args:
        method (str): A method of ``METHODS_BENCHMARKED`` (optionally ``_channels_last``).
        device (torch.device): Where the models live.
        model (str, optional): A key of ``MODEL_CONFIGS`` whose model replaces the toy config's
            (BiSeNet-R18) before the config is resolved. Defaults to None (the toy config's).

    Returns:
        nn.Module: The student in train mode, its teacher set.
    """
    from mmseg.registry import MODELS

    from ..engine.hooks import to_channels_last
    from .config import resolve_incremental_config
    channels_last = method.endswith(CHANNELS_LAST)
    method = _base_name(method)
    cfg = Config.fromfile(_config_path(TRAIN_CONFIG.format(method=method)))
    if model is not None:
        cfg.model = model_file_config(model).model
    cfg = resolve_incremental_config(cfg)
    _strip_pretrained(cfg.model)
    student = MODELS.build(copy.deepcopy(cfg.model))
    teacher_cfg = copy.deepcopy(cfg.model)
    teacher_cfg.update(classes_per_step=tasks.classes_per_step(TASK, STEP)[:-1],
                       distill_loss=None, feature_distill_loss=None)
    teacher = MODELS.build(teacher_cfg).to(device)
    student = student.to(device)
    student.set_teacher(teacher)
    if channels_last:
        to_channels_last(student)
    return student.train()


def _img_metas(batch: int, size: int) -> List[dict]:
    shape = (size, size)
    return [dict(img_shape=shape, ori_shape=shape, pad_shape=shape) for _ in range(batch)]


def train_batch_data(batch: int, size: int, seed: int = 0) -> dict:
    """A training batch as the dataloader yields it: uint8 images and step labels.

    Labels are drawn per pixel from {0, 16..20, 255} (background, the new classes of 15-5
    step 1, ignore).
    """
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    values = torch.tensor([0] + tasks.new_classes(TASK, STEP) + [IGNORE_INDEX])
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=gen, dtype=torch.uint8))
        label = values[torch.randint(0, len(values), (1, size, size), generator=gen)]
        sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _optim_wrapper(model: nn.Module):
    from mmengine.optim import OptimWrapper
    params = [p for p in model.parameters() if p.requires_grad]
    return OptimWrapper(torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=1e-4))


def _aux_heads(model: nn.Module) -> List[nn.Module]:
    if not getattr(model, 'with_auxiliary_head', False):
        return []
    aux = model.auxiliary_head
    return list(aux) if isinstance(aux, nn.ModuleList) else [aux]


def record_loss_inputs(model: nn.Module, data: dict) -> dict:
    """Everything the loss functions of a training step consume, recorded without gradient."""
    data = model.data_preprocessor(copy.copy(data), True)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        record = dict(samples=samples, seg_logits=model.decode_head.forward(feats),
                      aux_logits=[head.forward(feats) for head in _aux_heads(model)])
        if model.teacher is not None and (model.distill_loss or model.feature_distill_loss):
            record['old_logits'], record['old_feats'] = model.teacher_forward(inputs)
            if model.feature_distill_loss is not None:
                record['new_feats'] = model.decode_head._transform_inputs(feats)
    return record


def _leaf(x):
    if isinstance(x, torch.Tensor):
        return x.detach().requires_grad_(x.is_floating_point())
    if isinstance(x, (list, tuple)):
        return type(x)(_leaf(t) for t in x)
    return x


def _sum_losses(losses: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum of the items whose name contains ``loss`` (what ``BaseModel.parse_losses`` sums)."""
    return sum(value for key, value in losses.items() if 'loss' in key)


def loss_terms(model: nn.Module, record: dict) -> Dict[str, Callable[[], torch.Tensor]]:
    """The loss functions of ``IncrementalEncoderDecoder.loss``, one callable per term, each
    computing its scalar loss from the recorded logits (made leaves that require grad).

    Terms: ``decode`` and ``aux_<i>`` (what the segmentor runs per head,
    :func:`~mmincseg.models.utils.head_loss_by_feat`: resize to the labels, CE or unbiased CE,
    accuracy), ``kd`` (logit distillation) and ``feat_kd`` (ILT), as configured.
    """
    from mmseg.models.utils import resize

    from ..models.utils import head_loss_by_feat
    samples = record['samples']

    def head_term(head: nn.Module, logits: torch.Tensor) -> Callable[[], torch.Tensor]:
        return lambda: _sum_losses(head_loss_by_feat(head, _leaf(logits), samples))

    terms = {'decode': head_term(model.decode_head, record['seg_logits'])}
    for i, (head, logits) in enumerate(zip(_aux_heads(model), record['aux_logits'])):
        terms[f'aux_{i}'] = head_term(head, logits)
    if 'old_logits' in record and model.distill_loss is not None:

        def kd() -> torch.Tensor:
            seg_logits, old_logits = _leaf(record['seg_logits']), record['old_logits']
            if old_logits.shape[2:] != seg_logits.shape[2:]:
                old_logits = resize(old_logits, seg_logits.shape[2:], mode='bilinear',
                                    align_corners=model.align_corners)
            return model.distill_loss(seg_logits, old_logits)

        terms['kd'] = kd
    if 'new_feats' in record and model.feature_distill_loss is not None:
        terms['feat_kd'] = lambda: model.feature_distill_loss(_leaf(record['new_feats']),
                                                              record['old_feats'])
    return terms


def loss_step(model: nn.Module, record: dict) -> torch.Tensor:
    """All loss terms of a step on recorded logits, then backward to the logits: what a training
    step spends in its losses.

    Returns:
        Tensor: The summed loss.
    """
    total = sum(term() for term in loss_terms(model, record).values())
    total.backward()
    return total


class _TrainForward(nn.Module):
    """The student's training forward (backbone, decode and auxiliary heads), for FLOP counting."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> tuple:
        feats = self.model.extract_feat(inputs)
        return tuple([self.model.decode_head.forward(feats)] +
                     [head.forward(feats) for head in _aux_heads(self.model)])


class _TensorForward(nn.Module):
    """``model(x, mode='tensor')`` as a one-argument module, for FLOP counting."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, mode='tensor')


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


# ---------------------------------------------------------------------------------- sections
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


def matmul_peak_gflops(size: int, device: torch.device, repeats: int = 5) -> dict:
    """Dense fp32 matmul throughput (2 n^3 FLOPs per product), best of ``repeats``."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    with torch.inference_mode():
        torch.mm(a, b)
        times = [_time_ms(lambda: torch.mm(a, b), device) for _ in range(repeats)]
    best = min(times) / 1e3
    return dict(gflops=round(2 * size**3 / best / 1e9, 2), size=size, dtype='float32',
                ms=round(min(times), 3))


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
    metas = _img_metas(batch, size)
    names = list(models)

    def call(name: str) -> Callable[[], object]:
        return lambda: models[name].encode_decode(inputs, metas)

    times: Dict[str, List[float]] = {n: [] for n in names}
    extra: Dict[str, Optional[int]] = {n: None for n in names}
    with torch.inference_mode():
        for r in range(warmup):
            for name in _rotated(names, r):
                call(name)()
        if measure_memory:
            for name in names:
                with PeakMemory(device) as mem:
                    call(name)()
                extra[name] = mem.peak_bytes
        for r in range(repeats):
            for name in _rotated(names, r):
                times[name].append(_time_ms(call(name), device))
            log(f'  infer b{batch} round {r + 1}/{repeats}: ' + ', '.join(
                f'{n} {times[n][-1]:.0f} ms' for n in names))
    result = {}
    for name in names:
        s = _summary(times[name])
        weights = _tensor_bytes(models[name])
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


def benchmark_train_steps(students: Dict[str, nn.Module], data: dict, warmup: int, repeats: int,
                          device: torch.device, log: Logger = print) -> Dict[str, dict]:
    """Interleaved timing of full training steps, of their loss functions alone and of the
    teacher forward.

    A step is ``model.train_step`` (data preprocessor, student forward, teacher forward, losses,
    backward, SGD step, zero_grad), as MMEngine's train loop runs it. The loss time is
    :func:`loss_step` on logits recorded from the same batch; ``loss_terms_ms`` splits it by term
    (each term's forward + backward timed on its own).
    """
    names = list(students)
    wrappers = {n: _optim_wrapper(m) for n, m in students.items()}
    step_times: Dict[str, List[float]] = {n: [] for n in names}
    loss_times: Dict[str, List[float]] = {n: [] for n in names}
    term_times: Dict[str, Dict[str, List[float]]] = {n: {} for n in names}
    teacher_times: Dict[str, List[float]] = {n: [] for n in names}

    def step(name: str) -> Callable[[], object]:
        return lambda: students[name].train_step(copy.copy(data), wrappers[name])

    for r in range(warmup):
        for name in _rotated(names, r):
            step(name)()
    records = {n: record_loss_inputs(students[n], data) for n in names}
    teacher_inputs = {n: students[n].data_preprocessor(copy.copy(data), True)['inputs']
                      for n in names if 'old_logits' in records[n]}
    for r in range(repeats):
        for name in _rotated(names, r):
            model = students[name]
            step_times[name].append(_time_ms(step(name), device))
            loss_times[name].append(_time_ms(lambda: loss_step(model, records[name]), device))
            for term, fn in loss_terms(model, records[name]).items():
                term_times[name].setdefault(term, []).append(
                    _time_ms(lambda: fn().backward(), device))
            if name in teacher_inputs:
                teacher_times[name].append(
                    _time_ms(lambda: model.teacher_forward(teacher_inputs[name]), device))
        log(f'  train round {r + 1}/{repeats}: ' + ', '.join(
            f'{n} {step_times[n][-1]:.0f} ms' for n in names))
    batch = len(data['inputs'])
    result = {}
    for name in names:
        s = _summary(step_times[name])
        result[name] = dict(
            ms=s['ms'], ms_min=s['ms_min'], ms_max=s['ms_max'], repeats=s['repeats'],
            imgs_per_s=round(batch * 1e3 / s['ms'], 3),
            loss_ms=round(statistics.median(loss_times[name]), 3),
            loss_terms_ms={t: round(statistics.median(v), 3)
                           for t, v in term_times[name].items()})
        if teacher_times[name]:
            result[name]['teacher_forward_ms'] = round(statistics.median(teacher_times[name]), 3)
    return result


def profile_train_step(model: nn.Module, data: dict, steps: int, top: int,
                       device: torch.device) -> dict:
    """``torch.profiler`` of ``steps`` training steps: the operators of highest self time."""
    from torch.profiler import ProfilerActivity, profile
    wrapper = _optim_wrapper(model)
    model.train_step(copy.copy(data), wrapper)  # warm (its own optimizer state)
    activities = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        activities.append(ProfilerActivity.CUDA)
    _sync(device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            model.train_step(copy.copy(data), wrapper)
        _sync(device)
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

    from .config import resolve_incremental_config, set_data_root
    own_root = data_root is None
    crop = settings.train_size
    if own_root:
        from mmincseg.datasets.toy_voc import make_toy_voc
        data_root = tempfile.mkdtemp(prefix='mmincseg_bench_toyvoc_')
        start = time.perf_counter()
        make_toy_voc(data_root, seed=0, num_train=settings.pipeline_images, num_val=1,
                     size=max(crop, 32))
        log(f'  toy VOC: {settings.pipeline_images} images of ~{crop} px in '
            f'{time.perf_counter() - start:.1f} s')
    try:
        cfg = Config.fromfile(_config_path(TRAIN_CONFIG.format(method='mib')))
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
    model = SEAMNet().to(device).eval()
    test_cfg = model.test_cfg
    img = torch.randn(3, size, size, generator=torch.Generator().manual_seed(0)).to(device)

    def call():
        return infer_cams(model, img, scales=test_cfg['scales'], flip=test_cfg['flip'],
                          img_labels=[1, 16], use_pcm=test_cfg['use_pcm'])

    with torch.inference_mode():
        call()
        times = [_time_ms(call, device) for _ in range(repeats)]
    ms = statistics.median(times)
    return dict(size=size, scales=list(test_cfg['scales']), flip=bool(test_cfg['flip']),
                backbone=f"ResNetV1c-{model.backbone.depth}", ms_per_img=round(ms, 3),
                imgs_per_s=round(1e3 / ms, 3), repeats=repeats)


# -------------------------------------------------------------------------------------- run
def _ratio(a: Optional[float], b: Optional[float], digits: int = 4) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, digits)


def check_targets(ratios: dict) -> List[dict]:
    """The issue's targets against the measured ratios (``met`` is None when not measured)."""
    ops = {'<=': lambda v, t: v <= t, '>=': lambda v, t: v >= t, '>': lambda v, t: v > t}
    out = []
    for name, key, op, threshold, description in TARGETS:
        value = ratios.get(key)
        out.append(dict(name=name, ratio=key, value=value, target=f'{op} {threshold}',
                        met=None if value is None else bool(ops[op](value, threshold)),
                        description=description))
    return out


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
    _setup()
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
        doc['flops'] = {name: count_flops(_TensorForward(models[name]), settings.infer_size, dev)
                        for name in settings.models}
    log(f'inference {settings.infer_size} px, batch 1')
    doc['infer'], nhwc_infer = _split_channels_last(
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
                                  dev, log=log)
    for entry in train.values():
        entry.update(size=settings.train_size, batch=settings.train_batch)
    doc['train_step'], nhwc_train = _split_channels_last(train)
    doc['channels_last'] = dict(infer=nhwc_infer, train_step=nhwc_train)
    train_flops = None
    if settings.flops and 'mib' in students:
        mib = students['mib']
        student = count_flops(_TrainForward(mib), settings.train_size, dev)
        teacher = count_flops(_TensorForward(mib.teacher), settings.train_size, dev)
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


def compute_ratios(doc: dict) -> dict:
    """The ratios of the document (DESIGN.md keys first, then extra ones)."""
    infer = doc.get('infer', {})
    train = doc.get('train_step', {})

    def ms(name):
        return infer.get(name, {}).get('ms_per_img')

    mib = train.get('mib', {})
    ft = train.get('ft', {})
    ratios = dict(
        mib_over_ft=_ratio(mib.get('ms'), ft.get('ms')),
        loss_share_of_mib_step=_ratio(mib.get('loss_ms'), mib.get('ms')),
        deeplabv3_r101_os16_over_bisenet_r18=_ratio(ms('deeplabv3_r101_os16'), ms('bisenet_r18')),
        train_gflops_over_matmul_peak=None)
    train_flops = doc.get('flops', {}).get('train_step_mib')
    peak = doc.get('matmul_gflops', {}).get('gflops')
    if train_flops and mib.get('ms') and peak:
        achieved = train_flops['step_gflops_2x'] / (mib['ms'] / 1e3)
        ratios['train_gflops_over_matmul_peak'] = round(achieved / peak, 4)
        ratios['train_achieved_gflops'] = round(achieved, 2)
    ratios['deeplabv3_r101_os16_over_bisenet_r101'] = _ratio(ms('deeplabv3_r101_os16'),
                                                             ms('bisenet_r101'))
    ratios['deeplabv3_r101_os8_over_bisenet_r101'] = _ratio(ms('deeplabv3_r101_os8'),
                                                            ms('bisenet_r101'))
    ratios['deeplabv3_r101_os16_over_bisenet_seed_r101'] = _ratio(ms('deeplabv3_r101_os16'),
                                                                  ms('bisenet_seed_r101'))
    ratios['bisenet_r101_over_bisenet_seed_r101'] = _ratio(ms('bisenet_r101'),
                                                           ms('bisenet_seed_r101'))
    by_model = doc.get('train_step_by_model', {})

    def step_ms(name):
        return by_model.get(name, {}).get('ms')

    ratios['mib_step_deeplabv3_r101_os16_over_bisenet_seed_r101'] = _ratio(
        step_ms('deeplabv3_r101_os16'), step_ms('bisenet_seed_r101'))
    ratios['mib_step_bisenet_r101_over_bisenet_seed_r101'] = _ratio(step_ms('bisenet_r101'),
                                                                    step_ms('bisenet_seed_r101'))
    nhwc = doc.get('channels_last', {})
    nhwc_infer, nhwc_train = nhwc.get('infer', {}), nhwc.get('train_step', {})
    ratios['channels_last_speedup_bisenet_r18_inference'] = _ratio(
        ms('bisenet_r18'), nhwc_infer.get('bisenet_r18', {}).get('ms_per_img'))
    mib_cl = nhwc_train.get('mib', {}).get('ms')
    ratios['channels_last_speedup_mib_step'] = _ratio(mib.get('ms'), mib_cl)
    ratios['mib_over_ft_channels_last'] = _ratio(mib_cl, nhwc_train.get('ft', {}).get('ms'))
    ratios['lwf_over_ft'] = _ratio(train.get('lwf', {}).get('ms'), ft.get('ms'))
    ratios['ilt_over_ft'] = _ratio(train.get('ilt', {}).get('ms'), ft.get('ms'))
    pipeline = doc.get('pipeline', {})
    rates = [w['imgs_per_s'] for w in pipeline.get('workers', {}).values()]
    if rates and mib.get('imgs_per_s'):
        ratios['pipeline_over_train_consumption'] = _ratio(max(rates), mib['imgs_per_s'])
    else:
        ratios['pipeline_over_train_consumption'] = None
    return ratios


# ----------------------------------------------------------------------------------- render
def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def render_markdown(doc: dict) -> str:
    """The benchmark document as a markdown page (docs/benchmarks.md)."""
    m = doc.get('machine', {})
    s = doc.get('settings', {})
    lines = ['# Benchmarks', '',
             '<!-- Generated by `make bench` (tools/benchmark.py); do not edit by hand. -->', '',
             f"Mode: **{doc.get('mode', 'full')}**, measured {m.get('date', '?')} in "
             f"{_fmt(m.get('wall_s'))} s.", '', '## Machine', '',
             '| | |', '|---|---|']
    load = m.get('load_avg_start')
    rows = [('CPU', f"{m.get('cpu_model')} ({m.get('cpu_count')} logical CPUs)"),
            ('device', m.get('device') + (f" ({m['gpu']})" if m.get('gpu') else '')),
            ('torch threads', m.get('torch_threads')), ('Python', m.get('python')),
            ('torch', m.get('torch')), ('mmcv', m.get('mmcv')), ('mmengine', m.get('mmengine')),
            ('mmseg', m.get('mmseg')), ('mmincseg', m.get('mmincseg')),
            ('load average (1/5/15 min) at start', ' / '.join(map(str, load)) if load else 'n/a'),
            ('load average at end', ' / '.join(map(str, m.get('load_avg_end', []))) or 'n/a'),
            ('highest 1-minute load during the run', _fmt(m.get('load_1min_max'), 2)),
            ('dense fp32 matmul peak',
             f"{_fmt(doc.get('matmul_gflops', {}).get('gflops'))} GFLOP/s "
             f"({doc.get('matmul_gflops', {}).get('size')}^2)"),
            ('peak memory method', m.get('memory_method'))]
    lines += [f'| {k} | {v} |' for k, v in rows]
    busiest = max([(m.get(k) or [0])[0] for k in ('load_avg_start', 'load_avg_end')] +
                  [m.get('load_1min_max') or 0])
    if busiest >= 1.5:
        lines += ['', f'Note: the machine was shared with other jobs (1-minute load up to '
                  f'{busiest} on {m.get("cpu_count")} CPUs during the run); absolute times are '
                  'inflated and noisier than on an idle machine. Models were measured '
                  'interleaved, so the ratios are affected less than the absolute numbers.']
    if m.get('torch_threads') and m.get('cpu_count') and m['torch_threads'] < m['cpu_count']:
        lines += ['', f"Run with {m['torch_threads']} torch thread(s) on {m['cpu_count']} CPUs "
                  '(`--threads`): on a CPU shared with other jobs, OpenMP threads that wait for '
                  'each other at every operator are several times slower than one thread, so '
                  'the numbers are single-thread figures.']

    lines += ['', '## Targets', '', '| target | ratio | measured | required | status |',
              '|---|---|---|---|---|']
    for t in doc.get('targets', []):
        status = 'n/a' if t['met'] is None else ('**met**' if t['met'] else '**missed**')
        lines.append(f"| {t['description']} | `{t['ratio']}` | {_fmt(t['value'], 3)} | "
                     f"{t['target']} | {status} |")

    flops = doc.get('flops', {})
    for key, title in (('infer', 'batch 1'), ('infer_b8', f"batch {s.get('batch_infer_batch')}")):
        section = doc.get(key)
        if not section:
            continue
        size = next(iter(section.values()))['size']
        lines += ['', f'## Inference, {size}x{size}, {title}', '',
                  f"Eval mode, `torch.inference_mode`, `encode_decode` (logits at input size); "
                  f"median of {next(iter(section.values()))['repeats']} interleaved rounds after "
                  f"warm-up. Memory: weights + peak extra memory of one call.", '',
                  '| model | ms / img | imgs / s | min-max ms / batch | peak mem MB | '
                  'GFLOPs (MAC) | params M |', '|---|---:|---:|---:|---:|---:|---:|']
        for name, e in section.items():
            f = flops.get(name, {})
            lines.append(f"| {name} | {_fmt(e['ms_per_img'])} | {_fmt(e['imgs_per_s'], 2)} | "
                         f"{_fmt(e['ms_min'], 0)}-{_fmt(e['ms_max'], 0)} | "
                         f"{_fmt(e.get('peak_mem_mb'), 0)} | {_fmt(f.get('gflops'))} | "
                         f"{_fmt(f.get('params_m'))} |")
    if flops:
        size = next((f['size'] for f in flops.values() if 'size' in f), None)
        lines += ['', f'FLOPs from `mmengine.analysis.get_model_complexity_info` at {size} px '
                  '(one multiply-add counted once).']

    train = doc.get('train_step')
    if train:
        e0 = next(iter(train.values()))
        lines += ['', f"## Training step, 15-5 step 1, BiSeNet-R18, {e0['size']}x{e0['size']}, "
                  f"batch {e0['batch']}", '',
                  'A step is `model.train_step` (data preprocessor, student forward, frozen '
                  'step-0 teacher forward, losses, backward, SGD step). "loss" is the loss '
                  'functions alone (forward + backward to the logits) on logits recorded from the '
                  f"same batch. Median of {e0['repeats']} interleaved steps after warm-up. The "
                  'full 512x512, batch 16 step of the paper is not run on CPU (minutes per step '
                  'on 2 cores); ratios between methods do not depend much on the size.', '',
                  '| method | ms / step | imgs / s | vs FT | teacher fwd ms | loss ms | '
                  'loss share | loss ms by term |', '|---|---:|---:|---:|---:|---:|---:|---|']
        ft_ms = train.get('ft', {}).get('ms')
        for name, e in train.items():
            terms = ', '.join(f'{t} {_fmt(v, 1)}' for t, v in e.get('loss_terms_ms', {}).items())
            lines.append(f"| {name} | {_fmt(e['ms'])} | {_fmt(e['imgs_per_s'], 2)} | "
                         f"{_fmt(_ratio(e['ms'], ft_ms), 2)} | "
                         f"{_fmt(e.get('teacher_forward_ms'))} | {_fmt(e['loss_ms'], 1)} | "
                         f"{_fmt(100 * e['loss_ms'] / e['ms'], 1)}% | {terms} |")

    by_model = doc.get('train_step_by_model')
    if by_model:
        e0 = next(iter(by_model.values()))
        dl_ms = by_model.get('deeplabv3_r101_os16', {}).get('ms')
        lines += ['', f"## MiB training step by model, 15-5 step 1, {e0['size']}x{e0['size']}, "
                  f"batch {e0['batch']}", '',
                  'The MiB step of the section above (student, frozen step-0 teacher, unbiased '
                  'CE on every head, unbiased KD) with the model of each row, measured '
                  f"interleaved: median of {e0['repeats']} steps after warm-up. `bisenet_seed_*` "
                  "is the seed paper's own BiSeNet (32-channel FFM, classifiers on the FFM and on "
                  'the two ARM outputs), `bisenet_r*` the shape of our BiSeNet configs.', '',
                  '| model | ms / step | imgs / s | DeepLabV3-R101 OS16 / model | '
                  'teacher fwd ms | loss ms | params M |', '|---|---:|---:|---:|---:|---:|---:|']
        for name, e in by_model.items():
            lines.append(f"| {name} | {_fmt(e['ms'])} | {_fmt(e['imgs_per_s'], 2)} | "
                         f"{_fmt(_ratio(dl_ms, e['ms']), 2)} | "
                         f"{_fmt(e.get('teacher_forward_ms'))} | {_fmt(e['loss_ms'], 1)} | "
                         f"{_fmt(flops.get(name, {}).get('params_m'))} |")

    nhwc = doc.get('channels_last') or {}
    nhwc_rows = [(f'`{n}` inference, ms / img', doc.get('infer', {}).get(n, {}).get('ms_per_img'),
                  e.get('ms_per_img')) for n, e in nhwc.get('infer', {}).items()]
    nhwc_rows += [(f'`{n}` training step, ms', (train or {}).get(n, {}).get('ms'), e.get('ms'))
                  for n, e in nhwc.get('train_step', {}).items()]
    if nhwc_rows:
        lines += ['', '## Channels-last (NHWC)', '',
                  'The same models in the channels-last memory format (`ChannelsLastHook`: weights '
                  'of student and teacher), measured interleaved with the rows above.', '',
                  '| measurement | NCHW | NHWC | speed-up |', '|---|---:|---:|---:|']
        lines += [f'| {what} | {_fmt(a)} | {_fmt(b)} | {_fmt(_ratio(a, b), 2)} |'
                  for what, a, b in nhwc_rows]

    r = doc.get('ratios', {})
    lines += ['', '## Ratios', '', '| ratio | value |', '|---|---:|']
    lines += [f'| `{k}` | {_fmt(v, 3)} |' for k, v in r.items()]
    tf = flops.get('train_step_mib')
    if tf:
        lines += ['', f"`train_gflops_over_matmul_peak`: the MiB step does "
                  f"{_fmt(tf['step_gflops_2x'])} GFLOP (multiply and add counted apart; student "
                  f"forward x3 for forward + backward, plus the teacher forward, batch "
                  f"{tf['batch']}), i.e. {_fmt(r.get('train_achieved_gflops'))} GFLOP/s, against "
                  f"the dense matmul peak measured in the same run."]

    pipe = doc.get('pipeline')
    if pipe:
        lines += ['', '## Training data pipeline', '']
        if 'skipped' in pipe:
            lines.append(f"Skipped: {pipe['skipped']}")
        else:
            mib_rate = train.get('mib', {}).get('imgs_per_s') if train else None
            lines += [f"`IncrementalVOCDataset` 15-5 step 1 with the toy config's training "
                      f"pipeline (load, resize, rotate, crop {pipe['crop']}, flip, photometric "
                      f"distortion, pack) on a generated toy VOC ({pipe['source_images']} "
                      f"images of ~{pipe['crop']} px, {pipe.get('step_images')} selected by the "
                      f"step), batch {pipe['batch']}, first batch not timed. The MiB step "
                      f"consumes {_fmt(mib_rate, 2)} imgs/s.", '',
                      '| workers | imgs / s | x training consumption |', '|---:|---:|---:|']
            for w, e in pipe['workers'].items():
                lines.append(f"| {w} | {_fmt(e['imgs_per_s'])} | "
                             f"{_fmt(_ratio(e['imgs_per_s'], mib_rate), 2)} |")
            lines += ['', 'Workers share the same CPUs as the training process, so on this '
                      'machine the two compete during real training.']

    seam = doc.get('seam')
    if seam:
        lines += ['', '## SEAM pseudo-labels', '']
        if 'skipped' in seam:
            lines.append(f"Skipped: {seam['skipped']}")
        else:
            lines.append(f"`infer_cams` ({seam['backbone']}, scales {seam['scales']}, flip "
                         f"{seam['flip']}) on a {seam['size']}x{seam['size']} image: "
                         f"{_fmt(seam['ms_per_img'], 0)} ms / img, "
                         f"{_fmt(seam['imgs_per_s'], 3)} imgs / s.")

    prof = doc.get('profile')
    if prof:
        lines += ['', f"## Profile of a MiB step ({prof['time']})", '',
                  f"`torch.profiler` over {prof['steps']} step(s); "
                  f"{_fmt(prof['wall_ms_per_step'])} ms wall / step under the profiler.", '',
                  '| operator | self ms / step | share | calls / step |',
                  '|---|---:|---:|---:|']
        for op in prof['top_ops']:
            lines.append(f"| `{op['op']}` | {_fmt(op['self_ms_per_step'])} | "
                         f"{_fmt(100 * op['share'], 1)}% | {_fmt(op['calls_per_step'])} |")
        lines += ['', 'By kind: ' + ', '.join(f'{k} {_fmt(100 * v, 1)}%'
                                             for k, v in prof['group_share'].items()) + '.']

    left = [f"`{n}` batch {s.get('batch_infer_batch')}" for n in s.get('models', [])
            if n not in doc.get('infer_b8', {})]
    if left and doc.get('infer_b8') is not None:
        lines += ['', 'Left out of the batched section to keep the run short: ' +
                  ', '.join(left) + '.']
    lines.append('')
    return '\n'.join(lines)


def with_overrides(settings: BenchmarkSettings, **kwargs) -> BenchmarkSettings:
    """A copy of ``settings`` with some fields replaced (used by tests and the CLI)."""
    return replace(settings, **kwargs)


__all__ = ['BenchmarkSettings', 'FULL', 'QUICK', 'MODELS_BENCHMARKED', 'METHODS_BENCHMARKED',
           'run_benchmark', 'render_markdown', 'compute_ratios', 'check_targets', 'PeakMemory',
           'build_inference_model', 'build_train_models', 'model_file_config', 'with_overrides']
