"""The resolver: one ``incremental`` block describes a step; everything else is derived here."""
import copy
import os.path as osp
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence

from mmengine.config import Config, ConfigDict

from .. import tasks
from ..models.classifiers import check_head_config

METHODS: Dict[str, Dict[str, Any]] = {
    # decode/aux loss, distillation and their default weights (REFERENCES.md: MiB paper/code).
    'ft': dict(unbiased=False, kd=None),
    'lwf': dict(unbiased=False, kd='LwFKDLoss', kd_weight=100.0),
    'ilt': dict(unbiased=False, kd='LwFKDLoss', kd_weight=100.0, feat_kd_weight=100.0),
    'mib': dict(unbiased=True, kd='UnbiasedKDLoss', kd_weight=10.0, kd_alpha=1.0),
    'joint': dict(unbiased=False, kd=None),
}
LABELS = ('gt', 'seam')
CROSS_ENTROPY_TYPES = ('CrossEntropyLoss', 'mmseg.CrossEntropyLoss')
INCREMENTAL_KEYS = {
    'task', 'step', 'setting', 'method', 'labels', 'prev_checkpoint', 'kd_weight', 'kd_alpha',
    'feat_kd_weight', 'lr_factor', 'init_novel', 'work_root', 'pseudo_label_dir', 'seam'
}
EXAMPLE = ("incremental = dict(task='15-5', step=1, setting='overlap', method='mib', "
           "labels='gt')")


def check_incremental(inc: Optional[dict], source: str = 'config') -> dict:
    """Validate an ``incremental`` block and fill its defaults.

    Raises:
        ValueError: naming the key that is wrong and the valid values.
    """
    if inc is None:
        raise ValueError(f'{source} has no `incremental` block. Add e.g. `{EXAMPLE}` or inherit '
                         'from a config in configs/<method>/.')
    inc = dict(inc)
    unknown = set(inc) - INCREMENTAL_KEYS
    if unknown:
        raise ValueError(f'{source}: unknown incremental keys {sorted(unknown)}; valid keys: '
                         f'{sorted(INCREMENTAL_KEYS)}')
    inc.setdefault('setting', 'overlap')
    inc.setdefault('method', 'mib')
    inc.setdefault('labels', 'gt')
    inc.setdefault('step', 0)
    if 'task' not in inc:
        raise ValueError(f'{source}: incremental.task is missing; valid: {tasks.task_names()}')
    tasks.get_task(inc['task'])
    if inc['method'] not in METHODS:
        raise ValueError(f"{source}: unknown incremental.method '{inc['method']}'; valid: "
                         f'{sorted(METHODS)}')
    if inc['method'] == 'joint':
        if inc['step'] != 0:
            raise ValueError(f"{source}: method 'joint' trains all classes in one step; set "
                             f"incremental.step=0 (got {inc['step']})")
    else:
        tasks.check_step(inc['task'], inc['step'])
    tasks.check_setting(inc['setting'])
    if inc['labels'] not in LABELS:
        raise ValueError(f"{source}: unknown incremental.labels '{inc['labels']}'; valid: "
                         f'{list(LABELS)}')
    return inc


def data_task_step(inc: dict) -> tuple:
    """The (task, step) whose classes the model and datasets use (joint: all classes at once)."""
    if inc['method'] == 'joint':
        return '20-0', 0
    return inc['task'], inc['step']


def metric_task_step(inc: dict) -> tuple:
    """The (task, step) the metric groups by (joint reports the split's base/novel columns)."""
    if inc['method'] == 'joint':
        return inc['task'], tasks.num_steps(inc['task']) - 1
    return inc['task'], inc['step']


def work_root(cfg: Config) -> str:
    """The run directory holding ``step<t>/`` sub-directories.

    ``work_dirs/<config>_step<t>`` (mmseg's default work dir) becomes ``work_dirs/<config>`` so
    all steps of a split share one run directory, whichever step config trained them.
    """
    base = cfg.get('work_dir') or osp.join('work_dirs', 'mmincseg')
    base = base.rstrip('/')
    m = re.match(r'^(.*)_step\d+$', base)
    return m.group(1) if m else base


def step_dir(root: str, step: int) -> str:
    """Directory of one step of a run."""
    return osp.join(root, f'step{step}')


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def walk_datasets(cfg: Config, loaders: Sequence[str] = LOADERS) -> Iterator[ConfigDict]:
    """Every dataset config of the given data loaders, outermost first: the loader's
    ``dataset`` and, inside dataset wrappers, their ``dataset`` / ``datasets``. The one walker of
    dataset configs (the resolver, ``--data-root``, pseudo-labels and SEAM read datasets with it).
    """
    def visit(ds):
        if isinstance(ds, dict):
            yield ds
            for key in ('dataset', 'datasets'):
                sub = ds.get(key)
                for s in (sub if isinstance(sub, (list, tuple)) else [sub]):
                    yield from visit(s)

    for loader in loaders:
        if cfg.get(loader):
            yield from visit(cfg[loader].get('dataset'))


def inner_dataset(cfg: Config, loader: str) -> ConfigDict:
    """The innermost dataset config of a loader that has a pipeline (inside any wrappers)."""
    found = [ds for ds in walk_datasets(cfg, [loader]) if 'pipeline' in ds]
    if not found:
        raise ValueError(f'{loader}.dataset has no dataset with a pipeline')
    return found[-1]


def _dataset_cfgs(cfg: Config) -> List[ConfigDict]:
    return [ds for ds in walk_datasets(cfg) if ds.get('type') == 'IncrementalVOCDataset']


def _head_cfgs(model: dict, source: str) -> List[dict]:
    """The decode and auxiliary head configs of a model, each checked for incremental use.

    Raises:
        ValueError: a head cannot be made incremental (cascade, binary, not a decode head);
            names the config key, the head type and what is supported.
    """
    found = []
    for key in ('decode_head', 'auxiliary_head'):
        value = model.get(key)
        if value is None:
            continue
        many = isinstance(value, (list, tuple))
        for i, head in enumerate(value if many else [value]):
            where = f'model.{key}[{i}]' if many else f'model.{key}'
            try:
                check_head_config(head)
            except TypeError as e:
                raise ValueError(f'{source}: {where} cannot learn classes incrementally: {e}. '
                                 'Replace or remove that head.') from None
            found.append(head)
    return found


def _set_head_loss(head: dict, method: dict, n_old: int) -> None:
    """Set a head's segmentation loss for the method: one cross-entropy for every method.

    MiB's unbiased CE averages over the non-ignored pixels; every other softmax cross-entropy
    (FT, LwF, ILT, Joint, every step 0) is mmseg's ``CrossEntropyLoss`` with
    ``avg_non_ignore=True``, so 255 and batch padding never dilute the loss (mmseg's default
    divides by every pixel) and the CE weighs the same against distillation for every method.
    A head without ``loss_decode`` gets mmseg's default CE first; a list of losses keeps its
    types (only its cross-entropies get ``avg_non_ignore``).
    """
    loss = head.get('loss_decode')
    if loss is None:  # BaseDecodeHead's default
        loss = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    if isinstance(loss, dict):
        weight = loss.get('loss_weight', 1.0)
        if method['unbiased'] and n_old > 0:
            loss = dict(type='UnbiasedCrossEntropyLoss', old_classes=n_old, loss_weight=weight)
        elif loss.get('type') == 'UnbiasedCrossEntropyLoss':
            loss = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=weight)
        head['loss_decode'] = loss
        loss = head['loss_decode']  # a ConfigDict stores a copy
    for item in (loss if isinstance(loss, (list, tuple)) else [loss]):
        if (isinstance(item, dict) and item.get('type') in CROSS_ENTROPY_TYPES
                and not item.get('use_sigmoid', False)):
            item['avg_non_ignore'] = True


def resolve_incremental_config(cfg: Config) -> Config:
    """Derive model, datasets, metric, hook, lr and work_dir of a step from ``cfg.incremental``.

    Idempotent: a resolved config is returned unchanged.

    Args:
        cfg (Config): A config with an ``incremental`` block.

    Returns:
        Config: the same object, resolved.
    """
    if cfg.get('_incremental_resolved', False):
        return cfg
    inc = check_incremental(cfg.get('incremental'), getattr(cfg, 'filename', None) or 'config')
    if cfg.model.get('type') == 'SEAMNet':
        return _resolve_seam_config(cfg, inc)
    method = dict(METHODS[inc['method']])
    for key in ('kd_weight', 'kd_alpha', 'feat_kd_weight'):
        if inc.get(key) is not None:
            method[key] = inc[key]
    data_task, data_step = data_task_step(inc)
    classes_per_step = tasks.classes_per_step(data_task, data_step)
    n_old = sum(classes_per_step[:-1])
    total = sum(classes_per_step)
    incremental_step = data_step > 0

    # Model: incremental segmentor, every head's classifier and loss.
    model = cfg.model
    heads = _head_cfgs(model, getattr(cfg, 'filename', None) or 'config')
    if model.get('type') in ('EncoderDecoder', 'IncrementalEncoderDecoder'):
        model['type'] = 'IncrementalEncoderDecoder'
    else:
        raise ValueError(f"model.type {model.get('type')!r} is not supported; mmincseg builds "
                         "class-incremental models from mmseg's 'EncoderDecoder'")
    model['classes_per_step'] = classes_per_step
    for head in heads:
        head['num_classes'] = total
        head.pop('out_channels', None)
        _set_head_loss(head, method, n_old if incremental_step else 0)
    model['distill_loss'] = None
    model['feature_distill_loss'] = None
    if incremental_step and method.get('kd'):
        kd = dict(type=method['kd'], loss_weight=method['kd_weight'])
        if 'kd_alpha' in method:
            kd['alpha'] = method['kd_alpha']
        model['distill_loss'] = kd
    if incremental_step and method.get('feat_kd_weight'):
        model['feature_distill_loss'] = dict(type='FeatureDistillationLoss',
                                             loss_weight=method['feat_kd_weight'])
    if inc['labels'] == 'seam' and inc['method'] == 'mib':
        # MiB-S: the teacher keeps pseudo-labels off old objects (a config may set it False)
        model.setdefault('old_class_veto', True)

    # Datasets and metric.
    for ds in _dataset_cfgs(cfg):
        ds.update(task=data_task, step=data_step, setting=inc['setting'])
    metric_task, metric_step = metric_task_step(inc)
    _set_metric(cfg, metric_task, metric_step)

    # Run directories, previous checkpoint, hook, lr.
    root = inc.get('work_root') or work_root(cfg)
    inc['work_root'] = root
    cfg.work_dir = step_dir(root, inc['step'])
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') not in ('IncrementalStepHook', 'StepResultHook')]
    hooks.append(dict(type='StepResultHook', info=dict(
        task=inc['task'], step=inc['step'], setting=inc['setting'], method=inc['method'],
        labels=inc['labels'], classes=tasks.classes_of_step(data_task, data_step)
        if inc['method'] != 'joint' else tasks.classes_seen('20-0', 0)),
        test=has_held_out_test(cfg)))
    if incremental_step:
        prev = inc.get('prev_checkpoint') or step_dir(root, inc['step'] - 1)
        inc['prev_checkpoint'] = prev
        hooks.append(dict(type='IncrementalStepHook', prev_checkpoint=prev,
                          init_novel=inc.get('init_novel', inc['method'] == 'mib')))
        lr_factor = inc.get('lr_factor', 0.1)
        optimizer = cfg.get('optim_wrapper', {}).get('optimizer')
        if optimizer is not None and 'lr' in optimizer:
            optimizer['lr'] = optimizer['lr'] * lr_factor
    _sync_buffers(hooks)
    cfg.custom_hooks = hooks
    if inc['labels'] == 'seam' and (incremental_step or inc['method'] == 'joint'):
        _add_pseudo_labels(cfg, inc, root, tasks.classes_of_step(data_task, data_step))
    return _finish(cfg, inc)


def has_held_out_test(cfg: Config) -> bool:
    """Whether the config's test split is another image list than its val split (the toy's
    held-out ``test.txt``; VOC's test loader is its val loader, whose masks are public)."""
    try:
        val = cfg.val_dataloader.dataset
        test = cfg.test_dataloader.dataset
    except AttributeError:
        return False
    return (test.get('ann_file'), test.get('data_root')) != (val.get('ann_file'),
                                                              val.get('data_root'))


def _resolve_seam_config(cfg: Config, inc: dict) -> Config:
    """A SEAM (CAM network) config of step t: class ids, datasets, metric and work_dir.

    The SEAMNet learns the classes of the step (``class_ids`` = background + new classes) from
    image-level labels; no incremental heads, losses, teacher or lr factor. It trains into
    ``<run>/step<t>/seam`` (``incremental.method`` is not used).
    """
    data_task, data_step = data_task_step(inc)
    cfg.model['class_ids'] = [0] + tasks.new_classes(data_task, data_step)
    for ds in _dataset_cfgs(cfg):
        ds.update(task=data_task, step=data_step, setting=inc['setting'])
    _set_metric(cfg, data_task, data_step)
    root = inc.get('work_root') or work_root(cfg)
    inc['work_root'] = root
    cfg.work_dir = osp.join(step_dir(root, inc['step']), 'seam')
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') not in ('IncrementalStepHook', 'StepResultHook')]
    hooks.append(dict(type='StepResultHook', info=dict(
        task=inc['task'], step=inc['step'], setting=inc['setting'], method='seam', labels='image',
        classes=cfg.model['class_ids'][1:])))
    _sync_buffers(hooks)
    cfg.custom_hooks = hooks
    return _finish(cfg, inc)


def _set_metric(cfg: Config, task: str, step: int) -> None:
    """Make the val/test IoU metrics the incremental one of ``task``/``step``."""
    for name in ('val_evaluator', 'test_evaluator'):
        ev = cfg.get(name)
        if isinstance(ev, dict) and ev.get('type') in ('IoUMetric', 'IncrementalIoUMetric'):
            ev.update(type='IncrementalIoUMetric', task=task, step=step)


def _finish(cfg: Config, inc: dict) -> Config:
    """Steps shared by every resolution: resumable loop, gloo without CUDA, mark as resolved."""
    _resumable_train_loop(cfg)
    _seeded_sampler(cfg)
    _no_persistence_without_workers(cfg)
    if not _cuda_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    cfg.incremental = inc
    cfg._incremental_resolved = True
    return cfg


def _add_pseudo_labels(cfg: Config, inc: dict, root: str, classes: List[int]) -> None:
    """Train on SEAM pseudo-labels: insert the transform after LoadAnnotations."""
    pseudo_dir = inc.get('pseudo_label_dir') or osp.join(step_dir(root, inc['step']),
                                                         'pseudo_labels')
    inc['pseudo_label_dir'] = pseudo_dir
    ds = inner_dataset(cfg, 'train_dataloader')
    pipeline = copy.deepcopy(ds.pipeline)
    out = []
    for t in pipeline:
        out.append(t)
        if t.get('type') == 'LoadAnnotations':
            out.append(dict(type='LoadPseudoLabel', pseudo_label_dir=pseudo_dir, classes=classes))
    ds.pipeline = out


def _sync_buffers(hooks: List[dict]) -> None:
    """Average BatchNorm statistics over processes before validation and epoch checkpoints.

    Plain BN (``broadcast_buffers=False``) leaves every process with its own running statistics:
    without this the multi-process validation would mix models and differ from a single-process
    test of the saved checkpoint. MMEngine's ``SyncBuffersHook`` is a no-op in one process.
    """
    if not any(h.get('type') == 'SyncBuffersHook' for h in hooks):
        hooks.append(dict(type='SyncBuffersHook'))


def _seeded_sampler(cfg: Config) -> None:
    """Train with ``SeededSampler``: each sample's augmentation seeded from (seed, epoch, index).

    Exact ``--resume`` then holds with data-loader workers of any number, persistent or not
    (datasets/samplers.py). Another sampler type is left as configured.
    """
    loader = cfg.get('train_dataloader')
    sampler = loader.get('sampler') if isinstance(loader, dict) else None
    if isinstance(sampler, dict) and sampler.get('type') in ('DefaultSampler',
                                                              'mmengine.DefaultSampler'):
        sampler['type'] = 'SeededSampler'


def _no_persistence_without_workers(cfg: Config) -> None:
    """``num_workers=0`` (the usual debugging override) turns ``persistent_workers`` off.

    torch's DataLoader refuses persistent workers when there are none.
    """
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if isinstance(loader, dict) and loader.get('num_workers', 0) == 0 and loader.get(
                'persistent_workers', False):
            loader['persistent_workers'] = False


def _resumable_train_loop(cfg: Config) -> None:
    """Train with ``ResumableEpochBasedTrainLoop``: exact ``--resume`` (engine/loops.py)."""
    train_cfg = cfg.get('train_cfg')
    if not isinstance(train_cfg, dict):
        return
    if 'type' not in train_cfg and train_cfg.get('by_epoch'):  # MMEngine's short form
        train_cfg.pop('by_epoch')
        train_cfg['type'] = 'EpochBasedTrainLoop'
    if train_cfg.get('type') in ('EpochBasedTrainLoop', 'mmengine.EpochBasedTrainLoop'):
        train_cfg['type'] = 'ResumableEpochBasedTrainLoop'


def _cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


def set_data_root(cfg: Config, data_root: str) -> Config:
    """Point every dataset of the config (train/val/test, wrapped ones too) at ``data_root``."""
    cfg.data_root = data_root
    for ds in walk_datasets(cfg):
        if 'data_root' in ds or str(ds.get('type', '')).endswith('Dataset'):
            ds['data_root'] = data_root
    return cfg
