"""Hook of EWC / PI / RW: accumulate parameter importances, keep them in checkpoints, penalise.

At every step of such a run (step 0 included) the hook feeds the method's accumulator
(:mod:`mmincseg.models.losses.parameter_regularizer`) with the task-loss gradients of each
optimizer step and writes its state into every checkpoint under the top-level key
:data:`IMPORTANCE_KEY`, beside (never inside) ``state_dict``, so a step-t checkpoint still loads
strictly into a plain model and ``--resume`` continues the accumulation exactly. At step t > 0 it
reads the previous step's importance and weights from ``prev_checkpoint`` (the file
``IncrementalStepHook`` loads) and gives the segmentor the penalty (``set_regularizer``).
"""
from typing import Any, Dict, Mapping, Optional

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmseg.registry import HOOKS
from torch import Tensor

from ...models.losses.parameter_regularizer import (ACCUMULATORS, ImportanceAccumulator,
                                                    ParameterPenaltyLoss)
from ...utils.checkpoint import unwrap_state_dict
from .incremental_step_hook import find_last_checkpoint, read_checkpoint

#: Top-level checkpoint key of the importance state (beside ``state_dict``, ``optimizer``...).
IMPORTANCE_KEY = 'parameter_importance'


def to_cpu(obj: Any, memo: Optional[Dict[int, Tensor]] = None) -> Any:
    """``obj`` (nested dicts/lists of tensors) with every tensor on the CPU, detached; a tensor
    met twice becomes one CPU tensor (``torch.save`` then stores it once)."""
    memo = {} if memo is None else memo
    if isinstance(obj, Tensor):
        if id(obj) not in memo:
            memo[id(obj)] = obj.detach().cpu()
        return memo[id(obj)]
    if isinstance(obj, Mapping):
        return {k: to_cpu(v, memo) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v, memo) for v in obj)
    return obj


def trainable_parameters(model: nn.Module) -> Dict[str, nn.Parameter]:
    """``model``'s parameters that train (``requires_grad``), by name: what the importance
    accumulators, the penalty and the previous step's importance are keyed by."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def previous_importance(prev_checkpoint: str, method: str,
                        params: Mapping[str, Tensor]) -> tuple:
    """The previous step's importance and weights of the parameters it penalises.

    Args:
        prev_checkpoint (str): Previous-step checkpoint file or step directory
            (:func:`~mmincseg.engine.hooks.incremental_step_hook.find_last_checkpoint`).
        method (str): ``'ewc'``, ``'pi'`` or ``'rw'``; the file must have been written by it.
        params (Mapping[str, Tensor]): The student's trainable parameters by name.

    Returns:
        tuple: ``(file, importance, reference)``: the checkpoint file, its raw importance
        (``{key: {name: tensor}}``) and ``{name: tensor}`` of the previous weights of every
        trainable parameter the previous step had (the new step's parameters are not in it).

    Raises:
        ValueError: the file has no importance state, one of another method, or weights of
            another shape (naming the file, the key and the fix).
    """
    ckpt_file = find_last_checkpoint(prev_checkpoint)
    ckpt = read_checkpoint(ckpt_file)
    payload = ckpt.get(IMPORTANCE_KEY)
    if not isinstance(payload, Mapping):
        raise ValueError(
            f"previous-step checkpoint {ckpt_file} has no '{IMPORTANCE_KEY}': its step was not "
            f"trained with incremental.method='{method}'. EWC/PI/RW accumulate importances at "
            'every step, step 0 included: train the previous step with the same method (do not '
            'share a step 0 of another method) or set incremental.prev_checkpoint to one that was.')
    if payload.get('method') != method:
        raise ValueError(
            f"previous-step checkpoint {ckpt_file} holds the importances of method "
            f"'{payload.get('method')}', this step is '{method}'; train the previous step with "
            f"incremental.method='{method}' or set incremental.prev_checkpoint accordingly.")
    importance = payload['importance']
    state = unwrap_state_dict(ckpt)
    reference = {}
    for name in importance[ACCUMULATORS[method].carries[0]]:
        if name not in params:
            continue  # not trained at this step (frozen): not penalised either
        if name not in state or state[name].shape != params[name].shape:
            found = tuple(state[name].shape) if name in state else 'missing'
            raise ValueError(
                f'previous-step checkpoint {ckpt_file}: parameter {name} is {found}, the '
                f'student has {tuple(params[name].shape)}. It was trained for another model or '
                'split: check incremental.task/step/prev_checkpoint.')
        reference[name] = state[name]
    return ckpt_file, importance, reference


def check_penalty_stable(optimizer: torch.optim.Optimizer, loss_weight: float,
                         max_weight: float, method: str = 'penalty') -> float:
    """Refuse a penalty that SGD cannot follow: the step overshoots the reference weights.

    The penalty ``loss_weight * sum(w * (theta - theta*)^2)`` has curvature
    ``k = 2 * loss_weight * w``; SGD with momentum ``mu`` (heavy ball) on it converges only when
    ``lr * k < 2 * (1 + mu)``, else ``theta - theta*`` grows geometrically (the loss is NaN within
    an epoch). Checked at the largest lr of any parameter group and the largest weight; other
    optimizers than SGD are not checked.

    Args:
        optimizer (torch.optim.Optimizer): The step's optimizer (its initial lr).
        loss_weight (float): The penalty's weight.
        max_weight (float): The largest per-element penalty weight ``w``.
        method (str): Name used in the error. Defaults to 'penalty'.

    Returns:
        float: ``lr * k / (2 * (1 + mu))`` (below 1 when stable); 0 for another optimizer.

    Raises:
        ValueError: the product is 1 or more, naming the numbers and the fix.
    """
    if not isinstance(optimizer, torch.optim.SGD):
        return 0.0
    worst = 0.0
    for group in optimizer.param_groups:
        lr, momentum = float(group.get('initial_lr', group['lr'])), float(group.get('momentum', 0))
        ratio = lr * 2 * loss_weight * max_weight / (2 * (1 + momentum))
        if ratio > worst:
            worst, worst_lr, worst_momentum = ratio, lr, momentum
    if worst >= 1:
        safe = loss_weight / worst
        raise ValueError(
            f'{method}: the penalty is too stiff for the lr: lr {worst_lr:g} x 2 x weight '
            f'{loss_weight:g} x largest importance {max_weight:.3g} = '
            f'{worst_lr * 2 * loss_weight * max_weight:.3g} >= 2 x (1 + momentum '
            f'{worst_momentum:g}), so SGD overshoots the previous weights and diverges. MiB\'s '
            'weights (EWC/PI 500, RW 100) assume its lr 0.001 after step 0; lower '
            f'incremental.reg_weight below {safe:.3g} (e.g. keep weight x lr as MiB\'s) or the lr.')
    return worst


@HOOKS.register_module()
class ParameterImportanceHook(Hook):
    """EWC / PI / RW at every step: accumulate importances, save them, penalise at steps > 0.

    The accumulator sees, at each optimizer step (an ``Optimizer`` step pre-hook: after the
    backward, gradient unscaling and accumulation, before the update; skipped AMP steps are not
    seen), the gradient of the task losses only, as MiB's update runs before the penalty's
    backward: the penalty's gradient (:meth:`ParameterPenaltyLoss.gradient`) is subtracted from
    the parameter's gradient.

    Args:
        method (str): ``'ewc'``, ``'pi'`` or ``'rw'``.
        loss_weight (float): Weight of the penalty (MiB: EWC 500, PI 500, RW 100).
        prev_checkpoint (str, optional): Previous-step checkpoint file or step directory; None
            at step 0 (no penalty, importances are accumulated all the same).
        alpha (float): Weight of the new squared gradient in the Fisher EMA (EWC, RW).
            Defaults to 0.9 (MiB's ``reg_alpha``).
        score_interval (int): RW's optimizer steps between score updates. Defaults to 10
            (MiB's ``reg_iterations``).
        normalize (bool): Min-max normalise each importance tensor before weighting the
            penalty. Defaults to True (MiB's default).
    """

    priority = 'NORMAL'  # after IncrementalStepHook (VERY_HIGH) has loaded the previous weights

    def __init__(self, method: str, loss_weight: float, prev_checkpoint: Optional[str] = None,
                 alpha: float = 0.9, score_interval: int = 10, normalize: bool = True) -> None:
        if method not in ACCUMULATORS:
            raise ValueError(f'ParameterImportanceHook: unknown method {method!r}; valid: '
                             f'{sorted(ACCUMULATORS)}')
        self.method = method
        self.loss_weight = loss_weight
        self.prev_checkpoint = prev_checkpoint
        self.alpha = alpha
        self.score_interval = score_interval
        self.normalize = normalize
        self.accumulator: Optional[ImportanceAccumulator] = None
        self.penalty: Optional[ParameterPenaltyLoss] = None
        self._params: Dict[str, nn.Parameter] = {}
        self._resumed_state: Optional[Mapping] = None
        self._handle = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the state of a checkpoint being resumed (used by :meth:`before_train`)."""
        self._resumed_state = checkpoint.get(IMPORTANCE_KEY)

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        optim_wrapper = runner.optim_wrapper
        if not isinstance(optim_wrapper, OptimWrapper):
            raise TypeError(f'ParameterImportanceHook needs one optimizer (an OptimWrapper); '
                            f'got {type(optim_wrapper).__name__}')
        previous = reference = source = None
        if self.prev_checkpoint is not None:
            source, previous, reference = previous_importance(
                self.prev_checkpoint, self.method, trainable_parameters(model))
        self.attach(model, optim_wrapper.optimizer, previous, reference,
                    resumed=runner.iter > 0, source=source, logger=runner.logger)

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer,
               previous: Optional[Mapping[str, Mapping[str, Tensor]]] = None,
               reference: Optional[Mapping[str, Tensor]] = None, resumed: bool = False,
               source: Optional[str] = None, logger=None) -> None:
        """Start the step of ``model``: build the accumulator (and, with a previous importance,
        the penalty), give the segmentor the penalty and see every step of ``optimizer``.

        :meth:`before_train` calls it with what the runner and ``prev_checkpoint`` hold; the
        benchmark calls it with a model and optimizer of its own.

        Args:
            model (nn.Module): The segmentor (``set_regularizer``), unwrapped.
            optimizer (torch.optim.Optimizer): The optimizer whose steps are accounted.
            previous (Mapping, optional): The previous step's raw importance
                (:func:`previous_importance`); None at step 0 (no penalty).
            reference (Mapping[str, Tensor], optional): The previous step's weights by name.
            resumed (bool): Continue the accumulation of a resumed checkpoint
                (:meth:`after_load_checkpoint`). Defaults to False.
            source (str, optional): Where ``previous`` comes from (for the log).
            logger (optional): Logger of the summary line. Defaults to None (no log).
        """
        self._params = trainable_parameters(model)
        device = next(iter(self._params.values())).device
        reference = {n: t.to(device, torch.float32) for n, t in (reference or {}).items()}
        self.accumulator = ACCUMULATORS[self.method](
            self._params, previous=previous, reference=reference, alpha=self.alpha,
            score_interval=self.score_interval)
        if resumed:
            self._resume()
        if previous is not None:
            weights = self.accumulator.penalty_weights(previous, self.normalize)
            weights = {n: w.to(device, torch.float32) for n, w in weights.items()
                       if n in reference}
            self.penalty = ParameterPenaltyLoss(weights, reference, loss_weight=self.loss_weight)
            check_penalty_stable(
                optimizer, self.loss_weight,
                max((float(w.max()) for w in weights.values() if w.numel()), default=0.0),
                self.method)
            new = [n for n in self._params if n not in weights]
            if logger is not None:
                logger.info(
                    f'{self.method}: penalising {len(weights)} parameter tensors '
                    f'({sum(w.numel() for w in weights.values())} values) towards {source}, '
                    f'weight {self.loss_weight}; not penalised (new at this step): {new}')
        model.set_regularizer(self.penalty)
        self._handle = optimizer.register_step_pre_hook(self._before_step)

    def _resume(self) -> None:
        state = self._resumed_state
        if not isinstance(state, Mapping) or state.get('method') != self.method:
            raise ValueError(
                f"resumed checkpoint has no '{IMPORTANCE_KEY}' of method '{self.method}' "
                f"(found {state.get('method') if isinstance(state, Mapping) else None}): it was "
                'written without this hook, so the importances of the steps done are lost. '
                'Train the step again without --resume (tools/train.py ... --force).')
        self.accumulator.load_state_dict(state['accumulator'])
        print_log(f'{self.method}: importance accumulation resumed after '
                  f'{self.accumulator.updates} optimizer steps', logger='current')

    @torch.no_grad()
    def _before_step(self, optimizer, args, kwargs) -> None:
        """Feed the accumulator the task-loss gradients at the parameters before the update."""
        grads = {}
        for name, param in self._params.items():
            if param.grad is None:
                continue
            grad = param.grad.detach()
            penalty_grad = self.penalty.gradient(name, param) if self.penalty else None
            grads[name] = grad if penalty_grad is None else grad - penalty_grad
        self.accumulator.update(grads, self._params)

    def state(self) -> Dict[str, Any]:
        """What a checkpoint stores under :data:`IMPORTANCE_KEY`, on the CPU: ``method``, the
        raw ``importance`` if the step ended now (read by the next step) and the
        ``accumulator`` state (read by ``--resume``), plus the settings."""
        params = {n: p.detach() for n, p in self._params.items()}
        return to_cpu(dict(method=self.method, alpha=self.alpha,
                           score_interval=self.score_interval, normalize=self.normalize,
                           importance=self.accumulator.importance(params),
                           accumulator=self.accumulator.state_dict()))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.accumulator is not None:
            checkpoint[IMPORTANCE_KEY] = self.state()

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
