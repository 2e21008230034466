"""Hook that turns a freshly built step-t model into the continuation of step t-1."""
import copy
import os.path as osp
import pickle
from typing import Sequence

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import CheckpointLoader
from mmseg.registry import HOOKS, MODELS

from ...models.classifiers import incremental_classifiers, init_novel_classifier
from ...utils.checkpoint import checkpoint_record, recorded_checkpoint, unwrap_state_dict


def find_last_checkpoint(path: str) -> str:
    """Resolve a checkpoint file or a step directory (its ``last_checkpoint`` record) to a file.

    Raises:
        FileNotFoundError: naming what was looked for and how to fix it.
    """
    if osp.isfile(path):
        return path
    ckpt = recorded_checkpoint(path) if osp.isdir(path) else None
    if ckpt is not None:
        if osp.isfile(ckpt):
            return ckpt
        raise FileNotFoundError(f'{checkpoint_record(path)} names {ckpt}, which does not exist; '
                                're-run the previous step or set incremental.prev_checkpoint=PATH')
    raise FileNotFoundError(
        f'previous-step checkpoint not found: {path} is neither a checkpoint file nor a step '
        'directory with a last_checkpoint record. Train the previous step first (same --work-dir, '
        '--cfg-options incremental.step=<t-1>) or set incremental.prev_checkpoint=PATH.')


def read_checkpoint(path: str) -> dict:
    """Load a previous-step checkpoint file on the CPU.

    Raises:
        ValueError: the file is not a readable checkpoint (truncated download or copy, another
            kind of file); names the file and the fix.
    """
    try:
        return CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, AttributeError,
            ImportError) as e:
        raise ValueError(
            f'previous-step checkpoint {path} is not a readable checkpoint ({type(e).__name__}: '
            f'{e}); the file is truncated or of another kind. Re-train the previous step '
            '(tools/train.py ... --force), copy the file again, or set '
            'incremental.prev_checkpoint=PATH to a valid .pth file.') from e


def teacher_model_config(model_cfg: dict, classes_per_step: Sequence[int]) -> dict:
    """The config of the step t-1 model (the teacher) from the step-t student's model config.

    The same model with the classifiers of steps 0..t-1 (``classes_per_step``), no distillation
    losses or pseudo-labelling of its own, and no weight initialisation (its weights come from the
    previous-step checkpoint, so no pretrained file is read), and no weak learner of the step
    (WILSON's localizer belongs to the step that trains it). The resolver computes it and gives it to
    :class:`IncrementalStepHook` as ``teacher_model``.
    """
    cfg = copy.deepcopy(model_cfg)
    cfg.update(classes_per_step=list(classes_per_step), distill_loss=None,
               feature_distill_loss=None)
    for key in ('pod_loss', 'pseudo_label'):  # PLOP's, only where the student has them
        if key in cfg:
            cfg[key] = None
    cfg.pop('weak_localizer', None)
    cfg.pop('init_cfg', None)
    cfg.get('backbone', {}).pop('init_cfg', None)  # weights come from the checkpoint
    if 'pretrained' in cfg:
        cfg['pretrained'] = None
    return cfg


def build_teacher(teacher_model: dict, prev_checkpoint: str) -> nn.Module:
    """Build the step t-1 model of ``teacher_model`` (:func:`teacher_model_config`) and load
    ``prev_checkpoint`` into it, strictly.

    Raises:
        ValueError: the checkpoint does not fit the previous step (other split, class count).
    """
    classes_per_step = list(teacher_model.get('classes_per_step') or [])
    teacher = MODELS.build(copy.deepcopy(teacher_model))
    ckpt = read_checkpoint(prev_checkpoint)
    state = unwrap_state_dict(ckpt)
    expected = teacher.state_dict()
    for key, value in expected.items():
        if key in state and state[key].shape != value.shape:
            raise ValueError(
                f'previous-step checkpoint {prev_checkpoint} does not match the previous step: '
                f'{key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)} '
                f'(classes per step {classes_per_step}). It was trained for another split '
                'or step: check incremental.task/step or incremental.prev_checkpoint.')
    missing, unexpected = teacher.load_state_dict(state, strict=False)
    missing = [k for k in missing if 'num_batches_tracked' not in k]
    if missing or unexpected:
        raise ValueError(
            f'previous-step checkpoint {prev_checkpoint} does not fit the step-{len(classes_per_step) - 1} '
            f'model (classes per step {classes_per_step}): missing keys {missing[:5]}, '
            f'unexpected keys {unexpected[:5]}. Check incremental.task/step/prev_checkpoint.')
    return teacher


def load_teacher(model_cfg: dict, prev_checkpoint: str, classes_per_step: list) -> nn.Module:
    """Build the step t-1 model from the student's ``model_cfg`` and load ``prev_checkpoint``.

    :func:`teacher_model_config` then :func:`build_teacher`.

    Raises:
        ValueError: the checkpoint does not fit the previous step (other split, class count).
    """
    return build_teacher(teacher_model_config(model_cfg, classes_per_step), prev_checkpoint)


@HOOKS.register_module()
class IncrementalStepHook(Hook):
    """Continue step t-1 in step t: load its weights, freeze a teacher copy, init novel rows.

    ``before_train`` runs after mmengine's weight init and ``--resume``: on a fresh step the
    student gets the previous weights and MiB-initialised new classifier rows of every head (in
    place, so the optimizer built earlier owns them); on a resumed step only the teacher is
    rebuilt and the trained rows are left alone.

    Args:
        prev_checkpoint (str): Previous-step checkpoint file or step directory.
        teacher_model (dict): Config of the step t-1 model, as the resolver writes it
            (:func:`teacher_model_config` of the student's model).
        init_novel (bool): MiB initialisation of the new rows (else they keep their random init).
    """

    priority = 'VERY_HIGH'

    def __init__(self, prev_checkpoint: str, teacher_model: dict,
                 init_novel: bool = True) -> None:
        self.prev_checkpoint = prev_checkpoint
        self.teacher_model = teacher_model
        self.init_novel = init_novel

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        classes_per_step = list(model.classes_per_step)
        if len(classes_per_step) < 2:
            raise ValueError('IncrementalStepHook is for steps > 0; the model has one step')
        teacher_steps = list(self.teacher_model.get('classes_per_step') or [])
        if teacher_steps != classes_per_step[:-1]:
            raise ValueError(
                f'IncrementalStepHook: teacher_model has classes per step {teacher_steps}, the '
                f'student {classes_per_step} needs {classes_per_step[:-1]}. The resolver writes '
                'both from the incremental block: resolve the config again instead of editing '
                'model.classes_per_step or the hook by hand.')
        ckpt_file = find_last_checkpoint(self.prev_checkpoint)
        teacher = build_teacher(self.teacher_model, ckpt_file)
        device = next(model.parameters()).device
        teacher.to(device)
        resumed = runner.iter > 0
        runner.logger.info(f'teacher loaded from {ckpt_file} (classes per step '
                           f'{classes_per_step[:-1]}); student {"resumed" if resumed else "starts"} '
                           f'with {classes_per_step}')
        if not resumed:
            model.load_state_dict(teacher.state_dict(), strict=False)
            new_step = len(classes_per_step) - 1
            for classifier in incremental_classifiers(model):
                self._init_new_rows(classifier, new_step)
        # last: set_teacher may fuse the teacher's BN into its convs (its weights change form)
        model.set_teacher(teacher)

    @torch.no_grad()
    def _init_new_rows(self, classifier, new_step: int) -> None:
        new = classifier.classifiers[new_step]
        if not self.init_novel:
            return
        old_weight = torch.cat([c.weight for c in classifier.classifiers[:new_step]], dim=0)
        old_bias = torch.cat([c.bias for c in classifier.classifiers[:new_step]], dim=0)
        weight, bias = init_novel_classifier(old_weight, old_bias, new.out_channels)
        classifier.classifiers[0].bias[0] = bias[0]
        new.weight.copy_(weight[old_weight.shape[0]:])
        new.bias.copy_(bias[old_weight.shape[0]:])
