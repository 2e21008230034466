"""Hook that computes PLOP's per-class pseudo-label thresholds before a step trains."""
import random
from typing import Iterable, Optional

import numpy as np
import torch
import torch.nn as nn
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.models.utils import resize
from mmseg.registry import HOOKS
from torch import Tensor

from ...models.utils.pseudo_label import EntropyHistogram


@torch.no_grad()
def pseudo_label_thresholds(model: nn.Module, dataloader: Iterable,
                            max_iters: Optional[int] = None) -> Tensor:
    """One pass of the teacher over ``dataloader``: PLOP's per-class entropy thresholds.

    Every batch goes through the model's data preprocessor (as in training) and the teacher;
    the teacher logits, upsampled to the labels, fill an
    :class:`~mmincseg.models.utils.pseudo_label.EntropyHistogram` with the pixels labelled
    background, whose counts are summed over processes; the thresholds are its
    ``max(median, threshold)`` per class, as ``model.pseudo_label`` configures. The random
    states of torch, numpy and ``random`` are restored afterwards, so the pass leaves the
    training's random stream as it was.

    Args:
        model (nn.Module): An ``IncrementalEncoderDecoder`` with a teacher and ``pseudo_label``.
        dataloader (Iterable): The step's training loader.
        max_iters (int, optional): Stop after this many batches. Defaults to None (all).

    Returns:
        Tensor: Float32 thresholds, has a shape (C_t, ).
    """
    options = model.pseudo_label
    histogram = EntropyHistogram(model.num_classes, options['num_bins'])
    states = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        for i, batch in enumerate(dataloader):
            if max_iters is not None and i >= max_iters:
                break
            data = model.data_preprocessor(batch, True)
            old_logits = model.teacher_forward(data['inputs'])[0]
            labels = torch.stack([s.gt_sem_seg.data for s in data['data_samples']]).squeeze(1)
            if old_logits.shape[2:] != labels.shape[-2:]:
                old_logits = resize(old_logits, labels.shape[-2:], mode='bilinear',
                                    align_corners=model.align_corners)
            histogram.update(old_logits, labels)
    finally:
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
    counts = histogram.counts.to(next(model.parameters()).device)
    all_reduce(counts, op='sum')
    histogram.counts = counts.cpu()
    return histogram.thresholds(options['threshold'], options['median'])


@HOOKS.register_module()
class PseudoLabelThresholdHook(Hook):
    """Compute the pseudo-label thresholds of a step > 0 before it trains (PLOP's ``before``).

    Runs after :class:`IncrementalStepHook` (which sets the teacher) and again on ``--resume``
    (thresholds are not saved in checkpoints). A method recipe's hooks are in every step's
    config; at step 0 (``prev_checkpoint=None``, no teacher) this one does nothing.

    Args:
        prev_checkpoint (str, optional): The previous step's checkpoint, as the resolver gives
            every recipe hook; None at step 0. Defaults to None.
        max_iters (int, optional): Batches of the pass (None: the whole training set, PLOP's).
    """

    priority = 'HIGH'  # after IncrementalStepHook ('VERY_HIGH')

    def __init__(self, prev_checkpoint: Optional[str] = None,
                 max_iters: Optional[int] = None) -> None:
        self.prev_checkpoint = prev_checkpoint
        self.max_iters = max_iters

    def before_train(self, runner) -> None:
        if self.prev_checkpoint is None:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, 'pseudo_label', None) is None or model.teacher is None:
            raise ValueError('PseudoLabelThresholdHook needs a model with pseudo_label set and a '
                             'teacher (IncrementalStepHook, at steps > 0); remove the hook or set '
                             'model.pseudo_label')
        thresholds = pseudo_label_thresholds(model, runner.train_dataloader, self.max_iters)
        model.set_pseudo_label_thresholds(thresholds)
        runner.logger.info('pseudo-label thresholds per class: '
                           + ' '.join(f'{t:.4f}' for t in thresholds.tolist()))
