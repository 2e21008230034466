"""Training-step section of the benchmark: MMEngine's ``train_step`` of each method, the loss
functions alone and the teacher forward, interleaved.

The loss time is the segmentor's own loss code, never a copy of it:
``IncrementalEncoderDecoder.loss`` is the forwards followed by
``IncrementalEncoderDecoder.losses_from_outputs``; :func:`record_loss_inputs` records the
arguments ``loss`` passes to that method on the benchmark batch, and :func:`loss_step` times the
method on them, plus the backward to the recorded outputs.
"""
import copy
import inspect
import math
import statistics
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

from .bench_measure import rotated, summary, time_ms
from .bench_models import aux_heads

Logger = Callable[[str], None]
# Arguments of ``losses_from_outputs`` that are student outputs: the gradient flows back to them.
STUDENT_OUTPUTS = ('seg_logits', 'aux_logits', 'new_feats', 'pod_feats')


def optim_wrapper(model: nn.Module):
    """SGD (momentum, weight decay) over the trainable parameters, in MMEngine's wrapper."""
    from mmengine.optim import OptimWrapper
    params = [p for p in model.parameters() if p.requires_grad]
    return OptimWrapper(torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=1e-4))


def record_loss_inputs(model: nn.Module, data: dict) -> dict:
    """The arguments of ``model.losses_from_outputs`` on this batch, as ``model.loss`` passes them.

    Runs the data preprocessor and ``model.loss`` once without gradient (teacher forward, student
    forward, losses) and records the call ``loss`` makes of ``losses_from_outputs`` (on this
    instance only, restored afterwards): the student and teacher outputs, the data samples (as the
    old-class veto left them, if the model vetoes) and the batch shape.

    Returns:
        dict: Keyword arguments of ``losses_from_outputs``.

    Raises:
        RuntimeError: ``model.loss`` does not go through ``losses_from_outputs``.
    """
    data = model.data_preprocessor(copy.copy(data), True)
    losses_from_outputs = model.losses_from_outputs
    signature = inspect.signature(losses_from_outputs)
    record: dict = {}

    def recording(*args, **kwargs):
        record.update(signature.bind(*args, **kwargs).arguments)
        return losses_from_outputs(*args, **kwargs)

    model.losses_from_outputs = recording
    try:
        with torch.no_grad():
            model.loss(data['inputs'], data['data_samples'])
    finally:
        del model.losses_from_outputs
    if not record:
        raise RuntimeError(f'{type(model).__name__}.loss did not call losses_from_outputs, so '
                           'the benchmark cannot time its losses on their own; compute the '
                           'losses of `loss` in `losses_from_outputs`')
    return record


def _leaf(x):
    """Detached copy of a tensor (or list of tensors) that requires grad if floating point."""
    if isinstance(x, torch.Tensor):
        return x.detach().requires_grad_(x.is_floating_point())
    if isinstance(x, (list, tuple)):
        return type(x)(_leaf(t) for t in x)
    return x


def student_leaves(record: dict) -> dict:
    """``record`` with the student outputs made fresh leaves that require grad."""
    return {k: _leaf(v) if k in STUDENT_OUTPUTS else v for k, v in record.items()}


def loss_step(model: nn.Module, record: dict) -> torch.Tensor:
    """What a training step spends in its losses: ``model.losses_from_outputs`` on the recorded
    outputs, summed as MMEngine's ``train_step`` sums them (``model.parse_losses``), then the
    backward to the outputs.

    Args:
        model (nn.Module): An ``IncrementalEncoderDecoder``.
        record (dict): From :func:`record_loss_inputs`.

    Returns:
        Tensor: The summed loss.
    """
    loss, _ = model.parse_losses(model.losses_from_outputs(**student_leaves(record)))
    loss.backward()
    return loss


def loss_terms(model: nn.Module, record: dict) -> Dict[str, Callable[[], torch.Tensor]]:
    """``losses_from_outputs`` split by term, one callable per term computing its scalar loss
    from the recorded outputs (made leaves that require grad), for the per-term times.

    Each term is the call ``losses_from_outputs`` makes for it: ``decode`` and ``aux_<i>`` are
    :func:`~mmincseg.models.utils.head_loss_by_feat` of that head, ``kd`` and ``feat_kd``
    ``model.distillation_losses`` given the teacher logits only or the features only.
    :func:`check_loss_terms` verifies that they add up to the whole.
    """
    from mmincseg.models.utils import head_loss_by_feat
    samples, batch_shape = record['data_samples'], record['batch_shape']
    old_logits = record.get('old_logits')
    head_samples, pixel_weight = samples, None
    if model.pseudo_label is not None and old_logits is not None:  # PLOP's labels, made once
        with torch.no_grad():
            head_samples, pixel_weight = model.pseudo_labelled(samples, old_logits)

    def total(losses: Dict[str, torch.Tensor]) -> torch.Tensor:
        return model.parse_losses(losses)[0]

    def head_term(head: nn.Module, logits: torch.Tensor) -> Callable[[], torch.Tensor]:
        return lambda: total(head_loss_by_feat(head, _leaf(logits), head_samples, pixel_weight))

    terms = {'decode': head_term(model.decode_head, record['seg_logits'])}
    for i, (head, logits) in enumerate(zip(aux_heads(model), record.get('aux_logits') or [])):
        terms[f'aux_{i}'] = head_term(head, logits)
    if old_logits is not None and model.distill_loss is not None:
        terms['kd'] = lambda: total(model.distillation_losses(
            _leaf(record['seg_logits']), old_logits, samples, batch_shape))
    if old_logits is not None and record.get('new_feats') is not None:
        terms['feat_kd'] = lambda: total(model.distillation_losses(
            record['seg_logits'], None, samples, batch_shape, _leaf(record['new_feats']),
            record['old_feats']))
    if old_logits is not None and model.pod_loss is not None and record.get('pod_feats'):
        terms['pod'] = lambda: total(model._pod_losses(
            _leaf(record['seg_logits']), old_logits, samples, batch_shape,
            _leaf(record['pod_feats']), record['old_pod_feats']))
    if model.regularizer is not None:
        terms['reg'] = lambda: total(
            {model.regularizer.loss_name: model.regularizer(dict(model.named_parameters()))})
    return terms


def check_loss_terms(model: nn.Module, record: dict) -> None:
    """Raise if the terms of :func:`loss_terms` no longer add up to ``losses_from_outputs``.

    Raises:
        RuntimeError: the segmentor's loss has a term the split misses (or computes it
            otherwise).
    """
    with torch.no_grad():
        whole = float(model.parse_losses(model.losses_from_outputs(**record))[0])
        parts = {name: float(term()) for name, term in loss_terms(model, record).items()}
    if not math.isclose(sum(parts.values()), whole, rel_tol=1e-5, abs_tol=1e-6):
        raise RuntimeError(
            f'the per-term split of the benchmark {parts} adds up to {sum(parts.values())}, '
            f'but {type(model).__name__}.losses_from_outputs gives {whole}: update loss_terms in '
            'tools/analysis_tools/bench_train.py to the terms the segmentor computes')


def benchmark_train_steps(students: Dict[str, nn.Module], data: dict, warmup: int, repeats: int,
                          device: torch.device, log: Logger = print,
                          on_optimizer: Optional[Callable[[str, nn.Module, torch.optim.Optimizer],
                                                          None]] = None) -> Dict[str, dict]:
    """Interleaved timing of full training steps, of their loss functions alone and of the
    teacher forward.

    A step is ``model.train_step`` (data preprocessor, student forward, teacher forward, losses,
    backward, SGD step, zero_grad), as MMEngine's train loop runs it. The loss time is
    :func:`loss_step` on the outputs recorded from the same batch; ``loss_terms_ms`` splits it by
    term (each term's forward + backward timed on its own, :func:`loss_terms`).
    """
    names = list(students)
    wrappers = {n: optim_wrapper(m) for n, m in students.items()}
    if on_optimizer is not None:  # what a method's hooks attach to the optimizer (EWC/PI/RW)
        for name, wrapper in wrappers.items():
            on_optimizer(name, students[name], wrapper.optimizer)
    step_times: Dict[str, List[float]] = {n: [] for n in names}
    loss_times: Dict[str, List[float]] = {n: [] for n in names}
    term_times: Dict[str, Dict[str, List[float]]] = {n: {} for n in names}
    teacher_times: Dict[str, List[float]] = {n: [] for n in names}

    def step(name: str) -> Callable[[], object]:
        return lambda: students[name].train_step(copy.copy(data), wrappers[name])

    for r in range(warmup):
        for name in rotated(names, r):
            step(name)()
    records = {n: record_loss_inputs(students[n], data) for n in names}
    for name in names:
        check_loss_terms(students[name], records[name])
    teacher_inputs = {n: students[n].data_preprocessor(copy.copy(data), True)['inputs']
                      for n in names if records[n].get('old_logits') is not None}
    for r in range(repeats):
        for name in rotated(names, r):
            model = students[name]
            step_times[name].append(time_ms(step(name), device))
            loss_times[name].append(time_ms(lambda: loss_step(model, records[name]), device))
            for term, fn in loss_terms(model, records[name]).items():
                term_times[name].setdefault(term, []).append(
                    time_ms(lambda: fn().backward(), device))
            if name in teacher_inputs:
                teacher_times[name].append(
                    time_ms(lambda: model.teacher_forward(teacher_inputs[name]), device))
        log(f'  train round {r + 1}/{repeats}: ' + ', '.join(
            f'{n} {step_times[n][-1]:.0f} ms' for n in names))
    batch = len(data['inputs'])
    result = {}
    for name in names:
        s = summary(step_times[name])
        result[name] = dict(
            ms=s['ms'], ms_min=s['ms_min'], ms_max=s['ms_max'], repeats=s['repeats'],
            imgs_per_s=round(batch * 1e3 / s['ms'], 3),
            loss_ms=round(statistics.median(loss_times[name]), 3),
            loss_terms_ms={t: round(statistics.median(v), 3)
                           for t, v in term_times[name].items()})
        if teacher_times[name]:
            result[name]['teacher_forward_ms'] = round(statistics.median(teacher_times[name]), 3)
    return result
