"""The resolver: one ``incremental`` block describes a step; everything else is derived here."""
import copy
import os.path as osp
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

from .. import tasks
from ..datasets.incremental import dataset_class_names
from ..engine.hooks.incremental_step_hook import teacher_model_config
from ..models.classifiers import check_head_config
from .methods import METHODS, OVERRIDABLE, apply_model_arguments, get_method

LABELS = ('gt', 'seam', 'image')
CROSS_ENTROPY_TYPES = ('CrossEntropyLoss', 'mmseg.CrossEntropyLoss')
INCREMENTAL_KEYS = {
    'task', 'step', 'setting', 'method', 'labels', 'order', 'prev_checkpoint', 'lr_factor',
    'work_root',
    'pseudo_label_dir', 'seam', 'negative_label_dir', *OVERRIDABLE
}
#: ``incremental.seam.negatives`` keys and defaults (:func:`seam_negatives`): the previous
#: model's confidence that makes a pixel a negative, and the weight of the SEAM's negative loss.
#: The threshold is an a-priori value (the PLOP-style "confident" 0.9), not tuned.
NEGATIVES_DEFAULTS = dict(threshold=0.9, weight=1.0)
#: Folder of a weak step holding the previous model's confident old-class maps of its images.
OLD_MODEL_LABELS = 'old_model_labels'
EXAMPLE = ("incremental = dict(task='15-5', step=1, setting='overlap', method='mib', "
           "labels='gt')")


def check_incremental(inc: Optional[dict], source: str = 'config',
                      num_classes: int = tasks.NUM_VOC_CLASSES) -> dict:
    """Validate an ``incremental`` block and fill its defaults.

    Args:
        inc (dict): The block.
        source (str): Where it comes from (the config file), for messages.
        num_classes (int): Label values of the config's dataset, background included
            (:func:`dataset_num_classes`; VOC's 21 by default).

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
        raise ValueError(f'{source}: incremental.task is missing; valid: '
                         f'{tasks.task_names(num_classes)}')
    try:
        tasks.get_split(inc['task'], num_classes, inc.get('order'))
    except ValueError as e:
        raise ValueError(f'{source}: {e}') from None
    if inc.get('order') is not None and inc['labels'] == 'seam':
        raise ValueError(f"{source}: incremental.order is not supported with labels='seam' (the "
                         'SEAM pseudo-labels speak channel ids of the identity order); remove '
                         'the order or train on true masks')
    if get_method(inc['method'], source).all_classes_at_once:
        if inc['step'] != 0:
            raise ValueError(f"{source}: method 'joint' trains all classes in one step; set "
                             f"incremental.step=0 (got {inc['step']})")
    else:
        tasks.check_step(inc['task'], inc['step'], num_classes)
    tasks.check_setting(inc['setting'])
    if inc['labels'] not in LABELS:
        raise ValueError(f"{source}: unknown incremental.labels '{inc['labels']}'; valid: "
                         f'{list(LABELS)}')
    image_methods = sorted(m for m, r in METHODS.items() if r.image_model)
    if inc['labels'] == 'image' and inc['method'] not in image_methods:
        raise ValueError(f"{source}: incremental.labels='image' (new classes from image-level "
                         f"labels) needs a method that learns from them: {image_methods}; got "
                         f"method '{inc['method']}' (use labels='seam' for SEAM pseudo-labels)")
    if inc['labels'] != 'image' and inc['method'] in image_methods:
        raise ValueError(f"{source}: method '{inc['method']}' learns its steps > 0 from "
                         "image-level labels: set incremental.labels='image'")
    return inc


def data_task_step(inc: dict, num_classes: int = tasks.NUM_VOC_CLASSES) -> tuple:
    """The (task, step) whose classes the model and datasets use (joint: every class of the
    dataset at once, ``tasks.joint_task``: VOC's ``'20-0'``)."""
    if METHODS[inc['method']].all_classes_at_once:
        return tasks.joint_task(num_classes), 0
    return inc['task'], inc['step']


def metric_task_step(inc: dict, num_classes: int = tasks.NUM_VOC_CLASSES) -> tuple:
    """The (task, step) the metric groups by (joint reports the split's base/novel columns)."""
    if METHODS[inc['method']].all_classes_at_once:
        return inc['task'], tasks.num_steps(inc['task'], num_classes) - 1
    return inc['task'], inc['step']


def run_steps(inc: dict, num_classes: int = tasks.NUM_VOC_CLASSES) -> List[int]:
    """The steps a run of this block trains (joint: a single step 0)."""
    if METHODS[inc['method']].all_classes_at_once:
        return [0]
    return list(range(tasks.num_steps(inc['task'], num_classes)))


def method_settings(inc: dict) -> Dict[str, Any]:
    """The method's recipe (:class:`~mmincseg.apis.methods.Method`) as plain data, with the
    block's overrides of ``kd_weight``/``kd_alpha``/``feat_kd_weight``/``init_novel``."""
    return METHODS[inc['method']].settings(inc)


def needs_pseudo_labels(inc: dict) -> bool:
    """Whether the step trains on SEAM pseudo-labels: ``labels='seam'`` at steps > 0 and at the
    single step of ``method='joint'`` (step 0 of an incremental split has true masks)."""
    return inc['labels'] == 'seam' and (data_task_step(inc)[1] > 0
                                        or METHODS[inc['method']].all_classes_at_once)


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


def seam_dir(root: str, step: int) -> str:
    """Directory where the SEAM of a weak step trains (``<run>/step<t>/seam``)."""
    return osp.join(step_dir(root, step), 'seam')


def default_pseudo_label_dir(root: str, step: int) -> str:
    """Default folder of a weak step's pseudo-labels (``<run>/step<t>/pseudo_labels``)."""
    return osp.join(step_dir(root, step), 'pseudo_labels')


#: The repository holding this package (a SEAM config path may be relative to it).
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: ``train_cfg.val_begin`` that no schedule reaches: no validation during training.
SKIP_VALIDATION = 10**9


def resolve_config_path(path: str, relative_to: Optional[str] = None) -> str:
    """Find a config named relative to the current folder, an ancestor of ``relative_to``'s
    folder (a repository holding ``configs/``) or this package's repository.

    Raises:
        FileNotFoundError: listing the places tried.
    """
    if osp.isabs(path):
        candidates = [path]
    else:
        candidates = [osp.abspath(path)]
        if relative_to:
            folder = osp.dirname(osp.abspath(relative_to))
            while True:
                candidates.append(osp.join(folder, path))
                parent = osp.dirname(folder)
                if parent == folder:
                    break
                folder = parent
        candidates.append(osp.join(REPO_ROOT, path))
    for candidate in candidates:
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'SEAM config {path} (incremental.seam.config) not found; tried '
                            f'{candidates[:3]}... Give a path relative to the repository root or '
                            'an absolute one.')


def missing_seam_config(source: str) -> ValueError:
    """The error of a weak block (``labels='seam'``) that names no SEAM config."""
    return ValueError(f"{source}: incremental.labels='seam' needs the SEAM config of its steps: "
                      "incremental.seam=dict(config='configs/seam/<seam config>.py')")


def seam_of_step(inc: dict, source: str, step: int) -> Tuple[str, dict]:
    """The SEAM config of a weak block's step and the overrides that pin it to that step.

    ``incremental.seam = dict(config='configs/seam/seam_r18_toyvoc_15-1.py',
    cfg_options=dict(...))``: one SEAM config serves every step, since the SEAM's split, step
    and setting are set to the weak step's data (for joint: all classes, ``'20-0'`` step 0).
    A ``{step}`` in the path is replaced by the step (one SEAM file per step also works).

    Raises:
        ValueError: ``incremental.seam`` is missing or has unknown keys (names ``source``).
    """
    seam = inc.get('seam')
    if not isinstance(seam, dict) or not seam.get('config'):
        raise missing_seam_config(source)
    unknown = set(seam) - {'config', 'cfg_options', 'negatives'}
    if unknown:
        raise ValueError(f'{source}: unknown incremental.seam keys {sorted(unknown)}; valid: '
                         "['cfg_options', 'config', 'negatives']")
    seam_config = resolve_config_path(str(seam['config']).replace('{step}', str(step)), source)
    data_task, data_step = data_task_step(dict(inc, step=step))
    options = dict(seam.get('cfg_options') or {})
    options.update({'incremental.task': data_task, 'incremental.step': data_step,
                    'incremental.setting': inc['setting']})
    return seam_config, options


def seam_training_options(inc: dict, source: str, step: int, root: str,
                          negatives: Optional[dict] = None) -> Tuple[str, dict]:
    """The SEAM config of a weak step and every override it trains with: pinned to the step
    (:func:`seam_of_step`), trained into ``<root>/step<t>/seam`` and without its own
    end-of-training validation (``train_cfg.val_begin`` past the schedule; the pseudo-labels
    actually written are measured instead; ``incremental.seam.cfg_options=
    {'train_cfg.val_begin': 1}`` brings it back) and, with ``negatives``
    (:func:`seam_negatives`), the negative loss and the folder of its old-model maps."""
    seam_config, options = seam_of_step(inc, source, step)
    options['incremental.work_root'] = root
    options.setdefault('train_cfg.val_begin', SKIP_VALIDATION)
    if negatives is not None:
        options['model.loss_negative_weight'] = negatives['weight']
        options['incremental.negative_label_dir'] = negatives['label_dir']
    return seam_config, options


def seam_negatives(inc: dict, source: str, step: int, root: str) -> Optional[dict]:
    """Negatives for the SEAM of a weak step (``incremental.seam.negatives``), or None.

    ``negatives=dict(threshold=0.9, weight=1.0)`` (``NEGATIVES_DEFAULTS``; ``{}`` takes both):
    before the SEAM trains, the previous step's model labels the step's images, keeping the
    pixels it gives an old class with probability >= ``threshold`` (the rest 255), into
    ``<run>/step<t>/old_model_labels``; the SEAM then scores those regions as images without its
    classes (``SEAMNet.loss_negative_weight = weight``). In a one-class step every image holds
    the new class, so these regions are the classifier's only negatives.

    Returns:
        dict | None: ``threshold``, ``weight`` and ``label_dir``; None when not set.

    Raises:
        ValueError: unknown keys or values out of range, or a step without a previous model
            (step 0, joint), naming ``source``.
    """
    negatives = (inc.get('seam') or {}).get('negatives')
    if negatives is None:
        return None
    if not isinstance(negatives, dict):
        raise ValueError(f'{source}: incremental.seam.negatives must be a dict such as '
                         f'{NEGATIVES_DEFAULTS}, got {negatives!r}')
    unknown = set(negatives) - set(NEGATIVES_DEFAULTS)
    if unknown:
        raise ValueError(f'{source}: unknown incremental.seam.negatives keys {sorted(unknown)}; '
                         f'valid: {sorted(NEGATIVES_DEFAULTS)}')
    out = {**NEGATIVES_DEFAULTS, **negatives}
    if not 0 < float(out['threshold']) <= 1 or float(out['weight']) < 0:
        raise ValueError(f'{source}: incremental.seam.negatives needs 0 < threshold <= 1 and '
                         f'weight >= 0, got {dict(negatives)}')
    if METHODS[inc['method']].all_classes_at_once or step == 0:
        raise ValueError(f'{source}: incremental.seam.negatives come from the previous step\'s '
                         f"model; method '{inc['method']}' step {step} has none (remove it)")
    return dict(threshold=float(out['threshold']), weight=float(out['weight']),
                label_dir=osp.join(step_dir(root, step), OLD_MODEL_LABELS))


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


#: Dataset types the resolver sets the step of (``datasets/incremental.py``).
INCREMENTAL_DATASETS = ('IncrementalVOCDataset', 'IncrementalDataset', 'mmseg.IncrementalDataset')


def _dataset_cfgs(cfg: Config) -> List[ConfigDict]:
    return [ds for ds in walk_datasets(cfg) if ds.get('type') in INCREMENTAL_DATASETS]


def dataset_class_space(cfg: Config) -> Tuple[str, ...]:
    """Names of the label values of the config's incremental datasets (background first; VOC's
    when the config has none).

    Raises:
        ValueError: its datasets disagree on the classes (naming both).
    """
    found = {}
    for ds in _dataset_cfgs(cfg):
        found.setdefault(dataset_class_names(ds), ds.get('type'))
    if len(found) > 1:
        sizes = [f'{t}: {len(n) - 1} classes' for n, t in found.items()]
        raise ValueError(f'{getattr(cfg, "filename", None) or "config"}: the train/val/test '
                         f'datasets have different classes ({sizes}); one split needs one class '
                         'list (set the same metainfo.classes / base_type on every dataset)')
    return next(iter(found)) if found else tuple(tasks.VOC_CLASSES)


def dataset_num_classes(cfg: Config) -> int:
    """Label values of the config's dataset, background included (VOC: 21, ADE20K: 151)."""
    return len(dataset_class_space(cfg))


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
    """Set a head's segmentation loss for the method: one cross-entropy for every method
    (or the recipe's ``seg_loss``, with the head's ``loss_weight``).

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
        if method.get('seg_loss'):
            loss = dict(type=method['seg_loss'], loss_weight=weight)
        elif method['unbiased'] and n_old > 0:
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
    return resolve_step(cfg)[0]


def resolve_step(cfg: Config) -> Tuple[Config, Dict[str, Any]]:
    """Resolve ``cfg`` (as :func:`resolve_incremental_config`) and return what was decided.

    The decisions (the content of :class:`~mmincseg.apis.plan.StepPlan` but the config path):
    task, setting, method, labels, step, steps, run_dir, step_dir, work_dir, prev_checkpoint,
    old/new/seen classes, classes_per_step, teacher_model, needs_pseudo_labels, seam_config,
    seam_cfg_options, seam_dir, pseudo_label_dir, method_settings, trains.

    Raises:
        ValueError: ``cfg`` is resolved already (its decisions are not kept in the config:
            resolve the file again, e.g. with :func:`~mmincseg.apis.plan.plan_step`), or its
            ``incremental`` block / model is wrong (naming the key and the fix).
    """
    source = getattr(cfg, 'filename', None) or 'config'
    if cfg.get('_incremental_resolved', False):
        raise ValueError(f'{source} is resolved already; plan the step from its config file '
                         '(mmincseg.apis.plan_step)')
    names = dataset_class_space(cfg)
    num_classes = len(names)
    inc = check_incremental(cfg.get('incremental'), source, num_classes)
    if cfg.model.get('type') == 'SEAMNet':
        return _resolve_seam_config(cfg, inc)
    recipe = METHODS[inc['method']]
    method = recipe.settings(inc)
    data_task, data_step = data_task_step(inc, num_classes)
    split = tasks.get_split(data_task, num_classes, inc.get('order'))
    classes_per_step = split.classes_per_step(data_step)
    n_old = sum(classes_per_step[:-1])
    total = sum(classes_per_step)
    incremental_step = data_step > 0

    # Model: incremental segmentor, every head's classifier and loss.
    model = cfg.model
    heads = _head_cfgs(model, source)
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
    model['distill_loss'] = recipe.distill_loss(method) if incremental_step else None
    model['feature_distill_loss'] = recipe.feature_distill_loss(
        method) if incremental_step else None
    if incremental_step:
        apply_model_arguments(model, recipe.model)
    if inc['labels'] == 'seam':
        apply_model_arguments(model, recipe.weak_model)
    if incremental_step and inc['labels'] == 'image':
        apply_model_arguments(model, recipe.image_model)
        if model.get('weak_localizer') is not None:
            # class ids of the new channels, in channel order (the split's order and class count)
            model['weak_localizer']['new_classes'] = list(split.new_classes(data_step))
        _train_on_image_labels(cfg)
    else:  # a config's own image_model values (--cfg-options) apply to the weak steps only
        for key in recipe.image_model:
            model.pop(key, None)
    if incremental_step and recipe.lr_mult:
        _apply_lr_mult(cfg, recipe.lr_mult)

    # Datasets and metric (the order and class count only where they are not the defaults).
    order = {} if inc.get('order') is None else dict(order=inc['order'])
    for ds in _dataset_cfgs(cfg):
        ds.update(task=data_task, step=data_step, setting=inc['setting'], **order)
    metric_task, metric_step = metric_task_step(inc, num_classes)
    _set_metric(cfg, metric_task, metric_step, num_classes, inc.get('order'))

    # Run directories, previous checkpoint, hook, lr.
    root = inc.get('work_root') or work_root(cfg)
    inc['work_root'] = root
    cfg.work_dir = step_dir(root, inc['step'])
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') not in ('IncrementalStepHook', 'StepResultHook')]
    info = dict(task=inc['task'], step=inc['step'], setting=inc['setting'],
                method=inc['method'], labels=inc['labels'],
                classes=split.classes_of_step(data_step))
    if names != tasks.VOC_CLASSES:  # results name the classes of any dataset
        info['class_names'] = list(names)
    info.update(order)
    hooks.append(dict(type='StepResultHook', info=info, test=has_held_out_test(cfg)))
    prev = teacher = None
    if incremental_step:
        prev = inc.get('prev_checkpoint') or step_dir(root, inc['step'] - 1)
        inc['prev_checkpoint'] = prev
        # the step t-1 model the hook loads prev into (the student's, with t-1's classifiers)
        teacher = teacher_model_config(model.to_dict(), classes_per_step[:-1])
        hooks.append(dict(type='IncrementalStepHook', prev_checkpoint=prev,
                          teacher_model=copy.deepcopy(teacher),
                          init_novel=method['init_novel']))
        lr_factor = inc.get('lr_factor', 0.1)
        optimizer = cfg.get('optim_wrapper', {}).get('optimizer')
        if optimizer is not None and 'lr' in optimizer:
            optimizer['lr'] = optimizer['lr'] * lr_factor
    for hook in recipe.hooks:  # state a method keeps across steps (every step, step 0 too)
        hook = dict(copy.deepcopy(dict(hook)), prev_checkpoint=prev)
        if method.get('reg_weight') is not None:
            hook['loss_weight'] = method['reg_weight']
        hooks.append(hook)
    _sync_buffers(hooks)
    cfg.custom_hooks = hooks
    pseudo = needs_pseudo_labels(inc)
    seam_config = seam_options = negatives = None
    if pseudo:
        _add_pseudo_labels(cfg, inc, root, split.classes_of_step(data_step))
        if inc.get('seam') is not None:
            negatives = seam_negatives(inc, source, inc['step'], root)
            seam_config, seam_options = seam_training_options(inc, source, inc['step'], root,
                                                              negatives)
    facts = _facts(inc, root, cfg.work_dir, split, data_step, names)
    facts.update(prev_checkpoint=prev, teacher_model=teacher, needs_pseudo_labels=pseudo,
                 seam_config=seam_config, seam_cfg_options=seam_options,
                 seam_dir=seam_dir(root, inc['step']) if pseudo else None,
                 pseudo_label_dir=inc['pseudo_label_dir'] if pseudo else None,
                 seam_negatives=negatives,
                 method_settings=method, trains='segmentor')
    return _finish(cfg, inc), facts


def _facts(inc: dict, root: str, work_dir: str, split: tasks.Split, data_step: int,
           names: Sequence[str]) -> dict:
    """The decisions every resolution shares: the step, its run, classes and class order."""
    return dict(task=inc['task'], setting=inc['setting'], method=inc['method'],
                labels=inc['labels'], step=inc['step'], steps=run_steps(inc, len(names)),
                run_dir=root, step_dir=step_dir(root, inc['step']), work_dir=work_dir,
                old_classes=split.old_classes(data_step),
                new_classes=split.new_classes(data_step),
                seen_classes=split.classes_seen(data_step),
                classes_per_step=split.classes_per_step(data_step),
                class_names=list(names), channels=list(split.channels))


def has_held_out_test(cfg: Config) -> bool:
    """Whether the config's test split is another image list than its val split (the toy's
    held-out ``test.txt``; VOC's test loader is its val loader, whose masks are public)."""
    try:
        val = inner_dataset(cfg, 'val_dataloader')
        test = inner_dataset(cfg, 'test_dataloader')
    except ValueError:  # no such loader, or no dataset with a pipeline in it
        return False
    return (test.get('ann_file'), test.get('data_root')) != (val.get('ann_file'),
                                                              val.get('data_root'))


def _resolve_seam_config(cfg: Config, inc: dict) -> Tuple[Config, Dict[str, Any]]:
    """A SEAM (CAM network) config of step t: class ids, datasets, metric and work_dir.

    The SEAMNet learns the classes of the step (``class_ids`` = background + new classes) from
    image-level labels; no incremental heads, losses, teacher or lr factor. It trains into
    ``<run>/step<t>/seam`` (``incremental.method`` is not used).
    """
    data_task, data_step = data_task_step(inc)
    split = tasks.get_split(data_task)
    cfg.model['class_ids'] = [0] + split.new_classes(data_step)
    for ds in _dataset_cfgs(cfg):
        ds.update(task=data_task, step=data_step, setting=inc['setting'])
    _set_metric(cfg, data_task, data_step)
    if inc.get('negative_label_dir'):  # the previous model's confident old classes as gt_sem_seg
        _add_negative_labels(cfg, inc['negative_label_dir'], split)
    root = inc.get('work_root') or work_root(cfg)
    inc['work_root'] = root
    cfg.work_dir = seam_dir(root, inc['step'])
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h.get('type') not in ('IncrementalStepHook', 'StepResultHook')]
    hooks.append(dict(type='StepResultHook', info=dict(
        task=inc['task'], step=inc['step'], setting=inc['setting'], method='seam', labels='image',
        classes=cfg.model['class_ids'][1:])))
    _sync_buffers(hooks)
    cfg.custom_hooks = hooks
    facts = _facts(inc, root, cfg.work_dir, split, data_step, tasks.VOC_CLASSES)
    facts.update(prev_checkpoint=None, teacher_model=None, needs_pseudo_labels=False,
                 seam_config=None, seam_cfg_options=None, seam_dir=cfg.work_dir,
                 pseudo_label_dir=None, method_settings={}, trains='seam')
    return _finish(cfg, inc), facts


def _add_negative_labels(cfg: Config, label_dir: str, split: tasks.Split) -> None:
    """SEAM training with negatives: load the step's old-model maps right after the image, so
    the crops and flips move them with it (``SEAMNet.negative_pixels`` reads them)."""
    foreground = sorted({c for s in split.steps for c in s} - {0})
    if not _insert_after(cfg, 'LoadImageFromFile', dict(
            type='LoadPseudoLabel', pseudo_label_dir=label_dir, classes=foreground)):
        raise ValueError(f'{cfg.filename}: incremental.seam.negatives needs a LoadImageFromFile '
                         'in the SEAM training pipeline to load the old-model maps after it')


def _set_metric(cfg: Config, task: str, step: int, num_classes: int = tasks.NUM_VOC_CLASSES,
                order: tasks.OrderSpec = None) -> None:
    """Make the val/test IoU metrics the incremental one of ``task``/``step`` (with the class
    count and order of the dataset where they are not VOC's and the identity)."""
    extra = {} if num_classes == tasks.NUM_VOC_CLASSES else dict(num_classes=num_classes)
    if order is not None:
        extra['order'] = order
    for name in ('val_evaluator', 'test_evaluator'):
        ev = cfg.get(name)
        if isinstance(ev, dict) and ev.get('type') in ('IoUMetric', 'IncrementalIoUMetric'):
            ev.update(type='IncrementalIoUMetric', task=task, step=step, **extra)


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
    pseudo_dir = inc.get('pseudo_label_dir') or default_pseudo_label_dir(root, inc['step'])
    inc['pseudo_label_dir'] = pseudo_dir
    _insert_after(cfg, 'LoadAnnotations',
                  dict(type='LoadPseudoLabel', pseudo_label_dir=pseudo_dir, classes=classes))


def _insert_after(cfg: Config, after: str, transform: dict) -> bool:
    """Insert ``transform`` after every ``after`` transform of the training dataset's pipeline;
    whether there was one."""
    ds = inner_dataset(cfg, 'train_dataloader')
    out = []
    found = False
    for t in copy.deepcopy(list(ds.pipeline)):
        out.append(t)
        if t.get('type') == after:
            out.append(copy.deepcopy(transform))
            found = True
    ds.pipeline = out
    return found


#: mmseg's ``PackSegInputs`` default meta keys.
PACK_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                  'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label')


def without_pixel_labels(pipeline: Sequence[dict],
                         drop: Sequence[str] = ('LoadAnnotations', )) -> List[dict]:
    """A copy of ``pipeline`` that loads no mask and packs the image-level labels.

    The transforms of the types in ``drop`` are removed, ``RandomCrop`` chooses its crops
    without a mask (``cat_max_ratio`` 1) and ``PackSegInputs`` adds ``img_labels`` (set by
    ``IncrementalVOCDataset``) to the metainfo it packs.
    """
    out = []
    for t in copy.deepcopy(list(pipeline)):
        if t.get('type') in drop:
            continue
        if t.get('type') == 'RandomCrop' and t.get('cat_max_ratio', 1.0) < 1.0:
            t['cat_max_ratio'] = 1.0
        if t.get('type') == 'PackSegInputs':
            keys = list(t.get('meta_keys', PACK_META_KEYS))
            t['meta_keys'] = tuple(keys + [k for k in ('img_labels', ) if k not in keys])
        out.append(t)
    return out


def _train_on_image_labels(cfg: Config) -> None:
    """Train without pixel labels (``labels='image'``): the training pipeline loads no mask
    (:func:`without_pixel_labels`, ``CheckSegSample`` dropped too)."""
    ds = inner_dataset(cfg, 'train_dataloader')
    ds.pipeline = without_pixel_labels(ds.pipeline, ('LoadAnnotations', 'CheckSegSample'))


def _apply_lr_mult(cfg: Config, lr_mult: Dict[str, float]) -> None:
    """A recipe's learning-rate multipliers as ``paramwise_cfg.custom_keys`` (config's win)."""
    optim = cfg.get('optim_wrapper')
    if not isinstance(optim, dict):
        return
    paramwise = dict(optim.get('paramwise_cfg') or {})
    custom = dict(paramwise.get('custom_keys') or {})
    for key, mult in lr_mult.items():
        custom.setdefault(key, dict(lr_mult=mult))
    paramwise['custom_keys'] = custom
    optim['paramwise_cfg'] = paramwise  # a ConfigDict stores a copy: set the whole value


def _sync_buffers(hooks: List[dict]) -> None:
    """Average BatchNorm statistics over processes before validation and epoch checkpoints.

    Plain BN (``broadcast_buffers=False``) leaves every process with its own running statistics:
    without this the multi-process validation would mix models and differ from a single-process
    test of the saved checkpoint. MMEngine's ``SyncBuffersHook`` is a no-op in one process.
    """
    if not any(h.get('type') == 'SyncBuffersHook' for h in hooks):
        hooks.append(dict(type='SyncBuffersHook'))


def _seeded_sampler(cfg: Config) -> None:
    """Train with ``SeededSampler``: each sample's augmentation seeded from (seed, epoch, index),
    in batches of ``NoSingletonBatchSampler`` (unless the loader names a batch sampler or drops
    its last batch).

    Exact ``--resume`` then holds with data-loader workers of any number, persistent or not
    (datasets/samplers.py). Another sampler type is left as configured.
    """
    loader = cfg.get('train_dataloader')
    sampler = loader.get('sampler') if isinstance(loader, dict) else None
    if isinstance(sampler, dict) and sampler.get('type') in ('DefaultSampler',
                                                              'mmengine.DefaultSampler'):
        sampler['type'] = 'SeededSampler'
    if isinstance(loader, dict) and 'batch_sampler' not in loader and not loader.get('drop_last'):
        # a last batch of one sample joins the one before (BatchNorm needs two); none dropped
        loader['batch_sampler'] = dict(type='NoSingletonBatchSampler')


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
