"""What the benchmark measures: its settings, the model and method names, the models built from
the project's configs (randomly initialised, no download) and the training batch."""
import copy
import functools
import os.path as osp
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config

from mmincseg import tasks
from mmincseg.tasks import IGNORE_INDEX

# DESIGN.md's MODEL names of the ``infer`` section (bisenet_seed_r18 is timed in
# ``train_step_by_model`` only)
MODELS_BENCHMARKED = ('bisenet_r18', 'bisenet_r50', 'bisenet_r101', 'bisenet_seed_r101',
                      'deeplabv3_r101_os16', 'deeplabv3_r101_os8')
METHODS_BENCHMARKED = ('ft', 'lwf', 'lwf_mc', 'ilt', 'ewc', 'pi', 'rw', 'mib', 'plop')
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
# Every method's toy 15-5 config, resolved at STEP (the methods' step-0 files exist for all)
TRAIN_CONFIG = 'configs/{method}/bisenet_r18_toyvoc_15-5_step0.py'
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


def with_overrides(settings: BenchmarkSettings, **kwargs) -> BenchmarkSettings:
    """A copy of ``settings`` with some fields replaced (used by tests and the CLI)."""
    return replace(settings, **kwargs)


def repo_root() -> str:
    """The checkout holding these tools and its ``configs/``."""
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def config_path(relative: str) -> str:
    """``relative`` (e.g. ``configs/...``) inside the checkout; it must exist."""
    path = osp.join(repo_root(), relative)
    if not osp.isfile(path):
        raise FileNotFoundError(f'benchmark config {path} does not exist; run the benchmark from '
                                'a checkout of mmincseg (tools/ beside configs/)')
    return path


def setup() -> None:
    """Register mmseg and mmincseg modules and make mmseg the default registry scope."""
    from mmengine.registry import init_default_scope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import mmincseg  # noqa: F401  (registers our modules)
    init_default_scope('mmseg')


def _strip_pretrained(model_cfg: dict) -> None:
    """No ImageNet download: drop every ``Pretrained`` init of a model config, in place."""
    model_cfg.pop('pretrained', None)
    backbone = model_cfg.get('backbone', {})
    backbone['init_cfg'] = None
    if isinstance(backbone.get('backbone_cfg'), dict):
        backbone['backbone_cfg']['init_cfg'] = None


def base_name(name: str) -> str:
    """``name`` without the channels-last suffix."""
    return name[:-len(CHANNELS_LAST)] if name.endswith(CHANNELS_LAST) else name


def split_channels_last(results: Dict[str, dict]) -> Tuple[Dict[str, dict], Dict[str, dict]]:
    """Results keyed by DESIGN.md names, and the channels-last ones keyed by their base name."""
    plain = {n: r for n, r in results.items() if not n.endswith(CHANNELS_LAST)}
    nhwc = {base_name(n): r for n, r in results.items() if n.endswith(CHANNELS_LAST)}
    return plain, nhwc


def model_file_config(name: str) -> Config:
    """The model file of benchmarked model ``name`` (``MODEL_CONFIGS``), overrides merged."""
    name = base_name(name)
    if name not in MODEL_CONFIGS:
        raise ValueError(f'unknown benchmark model {name!r}; valid: {sorted(MODEL_CONFIGS)}')
    filename, overrides = MODEL_CONFIGS[name]
    cfg = Config.fromfile(config_path(osp.join('configs', '_base_', 'models', filename)))
    cfg.merge_from_dict(dict(model=overrides))
    return cfg


def inference_model_config(name: str) -> Config:
    """The resolved 15-5 step-1 config (classifiers 16 + 5) of benchmarked model ``name``."""
    from mmincseg.apis.config import resolve_incremental_config
    cfg = model_file_config(name)
    cfg.incremental = dict(task=TASK, step=STEP, setting='overlap', method='ft', labels='gt')
    cfg = resolve_incremental_config(cfg)
    _strip_pretrained(cfg.model)
    return cfg


def build_inference_model(name: str, device: torch.device) -> nn.Module:
    """A randomly initialised model in eval mode, on ``device`` (channels-last for
    ``*_channels_last`` names)."""
    from mmseg.registry import MODELS

    from mmincseg.engine.hooks import to_channels_last
    cfg = inference_model_config(name)
    model = MODELS.build(cfg.model).to(device).eval()
    return to_channels_last(model) if name.endswith(CHANNELS_LAST) else model


def train_config(method: str) -> Config:
    """The toy 15-5 config of ``method`` (``TRAIN_CONFIG``) at the benchmarked step, unresolved."""
    cfg = Config.fromfile(config_path(TRAIN_CONFIG.format(method=method)))
    cfg.incremental.step = STEP
    return cfg


@functools.lru_cache(maxsize=None)
def _resolved_train_config(method: str, model: Optional[str]) -> Config:
    from mmincseg.apis.config import resolve_incremental_config
    cfg = train_config(method)
    if model is not None:
        cfg.model = model_file_config(model).model
    return resolve_incremental_config(cfg)


def resolved_train_config(method: str, model: Optional[str] = None) -> Config:
    """:func:`train_config` resolved (``model``: a ``MODEL_CONFIGS`` key replacing its model
    first); resolved once per pair, a copy returned each call."""
    return copy.deepcopy(_resolved_train_config(method, model))


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

    from mmincseg.engine.hooks import to_channels_last
    channels_last = method.endswith(CHANNELS_LAST)
    cfg = resolved_train_config(base_name(method), model)
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
    if student.pseudo_label is not None:  # PLOP: thresholds from the teacher, as its hook does
        from mmincseg.engine.hooks.pseudo_label_threshold_hook import pseudo_label_thresholds
        batch = train_batch_data(2, 64)
        student.set_pseudo_label_thresholds(pseudo_label_thresholds(student, [batch]))
    return student.train()


def attach_method_state(name: str, student: nn.Module,
                        optimizer: torch.optim.Optimizer) -> Optional[object]:
    """What a method's hooks give the step-1 student before training, for the benchmark's own
    optimizer: EWC / PI / RW get the ``ParameterImportanceHook`` of their resolved config
    attached (the accumulator seeing every optimizer step, and the penalty on every trainable
    parameter towards its starting value, weighted by the importance of a simulated step 0 of
    two SGD updates with random gradients: the real step penalises all but the new classifier,
    a negligible difference in cost); other methods need nothing here (PLOP's thresholds are set by
    :func:`build_train_models`).

    Args:
        name (str): The benchmarked method name (optionally ``_channels_last``).
        student (nn.Module): From :func:`build_train_models`.
        optimizer (torch.optim.Optimizer): The optimizer of its steps.

    Returns:
        ParameterImportanceHook | None: The attached hook (None for other methods).
    """
    from mmincseg.engine.hooks import ParameterImportanceHook
    from mmincseg.engine.hooks.parameter_importance_hook import trainable_parameters
    from mmincseg.models.losses.parameter_regularizer import ACCUMULATORS
    cfg = resolved_train_config(base_name(name))
    for hook_cfg in cfg.get('custom_hooks', []):
        if hook_cfg['type'] != 'ParameterImportanceHook':
            continue
        kwargs = {k: v for k, v in hook_cfg.items() if k not in ('type', 'prev_checkpoint')}
        params = {n: p.detach().clone() for n, p in trainable_parameters(student).items()}
        gen = torch.Generator().manual_seed(0)
        grads = {n: torch.randn(p.shape, generator=gen).to(p) for n, p in params.items()}
        moved = {n: p - 0.01 * grads[n] for n, p in params.items()}  # one SGD step of "step 0"
        step0 = ACCUMULATORS[kwargs['method']](params)
        step0.update(grads, params)
        step0.update(grads, moved)  # PI and RW score the path between the two
        hook = ParameterImportanceHook(**kwargs)
        hook.attach(student, optimizer, step0.importance(moved), reference=params)
        return hook
    return None


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


def img_metas(batch: int, size: int) -> List[dict]:
    """Metainfo of ``batch`` unpadded ``size`` x ``size`` images (for ``encode_decode``)."""
    shape = (size, size)
    return [dict(img_shape=shape, ori_shape=shape, pad_shape=shape) for _ in range(batch)]


def aux_heads(model: nn.Module) -> List[nn.Module]:
    """The auxiliary heads of ``model``, in order (none without): the segmentor's own list."""
    return model.heads()[1:]


class TrainForward(nn.Module):
    """The student's training forward (backbone, decode and auxiliary heads), for FLOP counting."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> tuple:
        feats = self.model.extract_feat(inputs)
        return tuple([self.model.decode_head.forward(feats)] +
                     [head.forward(feats) for head in aux_heads(self.model)])


class TensorForward(nn.Module):
    """``model(x, mode='tensor')`` as a one-argument module, for FLOP counting."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, mode='tensor')
