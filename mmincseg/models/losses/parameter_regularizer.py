"""Parameter-importance regularizers of MiB's baselines: EWC, PI (path integral, a.k.a.
synaptic intelligence) and RW (Riemannian walk), as MiB's code computes them.

Every step (step 0 included) accumulates an importance per parameter element from the
task-loss gradients ``g`` of its optimizer steps; step t+1 penalises moving away from step t's
weights ``theta*`` by ``loss_weight * sum_i w_i (theta_i - theta*_i)^2`` (:func:`parameter_penalty`)
with ``w`` the previous step's importance, min-max normalised per parameter tensor
(:func:`min_max_normalize`, MiB's ``normalize_fn``):

- **EWC** (weight 500): ``w = norm(F)``, ``F`` the Fisher diagonal as an exponential moving
  average of squared gradients, ``F <- alpha g^2 + (1 - alpha) F`` (alpha 0.9) at every optimizer
  step (:func:`fisher_update`). ``F`` starts from the previous step's (raw) ``F``, and from ones
  for parameters it does not have.
- **PI** (weight 500): ``w = norm(s)``; ``P += g_k (theta_{k-1} - theta_k)`` at every optimizer step
  (:func:`path_integral_update`: MiB pairs the gradient at ``theta_k`` with the move that led to
  it), and at the end of the step ``s = max(P / ((theta - theta_start)^2 + 1e-20), 0) + s_prev``
  (:func:`path_integral_importance`; the importances of the steps add up).
- **RW** (weight 100): ``w = norm(F) + norm(s)``; ``F`` as EWC, and every ``score_interval`` (10)
  optimizer steps ``S += g_k (theta_{k-10} - theta_k) / (0.5 F (theta_k - theta_{k-10})^2 + 1e-8)``
  (:func:`riemannian_score_update`, ``F`` as before this step's Fisher update), at the end
  ``s = (max(S, 0) + s_prev) / 2`` (:func:`riemannian_walk_importance`).

Parameters that a step adds (the new step's classifier: ``classifiers.<t>.*``, one tensor per
step, so no old tensor ever grows) are not penalised at that step, as in MiB, whose penalty runs
over the previous model's parameter names only; they get an importance of their own for the
next step. A parameter of the same name and another shape is an error.

The accumulators (:class:`EWCImportance`, :class:`PathIntegralImportance`,
:class:`RiemannianWalkImportance`) hold tensors only; ``ParameterImportanceHook`` feeds them the
gradients, saves their state in checkpoints and builds the :class:`ParameterPenaltyLoss`.
"""
from typing import ClassVar, Dict, Mapping, Optional, Tuple, Type

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .base import WeightedLoss

#: MiB's epsilons: min-max normalisation and RW's denominator; PI's denominator.
NORMALIZE_EPS = 1e-8
PI_EPS = 1e-20

NamedTensors = Mapping[str, Tensor]


def min_max_normalize(importance: Tensor) -> Tensor:
    """``(w - min w) / (max w - min w + 1e-8)`` over one tensor (MiB's ``normalize_fn``).

    A constant tensor (a single-element one, say) becomes zeros: it is not penalised.

    Args:
        importance (Tensor): Importance of one parameter tensor, any shape.

    Returns:
        Tensor: Same shape, values in [0, 1).
    """
    low, high = importance.min(), importance.max()
    return (importance - low) / (high - low + NORMALIZE_EPS)


def fisher_update(fisher: Tensor, grad: Tensor, alpha: float = 0.9) -> Tensor:
    """EWC's / RW's online Fisher diagonal: ``alpha * grad^2 + (1 - alpha) * fisher``.

    Args:
        fisher (Tensor): Current estimate, the parameter's shape.
        grad (Tensor): Task-loss gradient of this optimizer step, the same shape.
        alpha (float): Weight of the new squared gradient. Defaults to 0.9 (MiB's ``reg_alpha``).

    Returns:
        Tensor: The new estimate.
    """
    return alpha * grad.pow(2) + (1 - alpha) * fisher


def path_integral_update(path: Tensor, grad: Tensor, previous: Tensor, current: Tensor) -> Tensor:
    """PI's running path integral: ``path + grad * (previous - current)``.

    ``-grad . (theta_k - theta_{k-1})``: the loss decrease credited to each element along the
    last move, with the gradient taken at the move's end ``theta_k`` (MiB's choice).

    Args:
        path (Tensor): Integral so far, the parameter's shape.
        grad (Tensor): Task-loss gradient at ``current``.
        previous (Tensor): The parameter at the previous optimizer step.
        current (Tensor): The parameter now (before this optimizer step moves it).

    Returns:
        Tensor: The new integral.
    """
    return path + grad * (previous - current)


def path_integral_importance(path: Tensor, current: Tensor, start: Tensor,
                             previous_importance: Optional[Tensor] = None) -> Tensor:
    """PI's importance at the end of a step: ``max(path / ((current - start)^2 + 1e-20), 0)``,
    plus the previous steps' (raw) importance when there is one (MiB adds them).

    Args:
        path (Tensor): The step's path integral (:func:`path_integral_update`).
        current (Tensor): The parameter now.
        start (Tensor): The parameter at the start of the step (the previous step's weights).
        previous_importance (Tensor, optional): The previous step's raw importance.

    Returns:
        Tensor: Non-negative importance, the parameter's shape.
    """
    importance = (path / ((current - start).pow(2) + PI_EPS)).clamp(min=0)
    if previous_importance is not None:
        importance = importance + previous_importance
    return importance


def riemannian_score_update(score: Tensor, grad: Tensor, previous: Tensor, current: Tensor,
                            fisher: Tensor) -> Tensor:
    """RW's running score: ``score + grad (previous - current) /
    (0.5 fisher (current - previous)^2 + 1e-8)``: the loss decrease of a move divided by its
    length in the Fisher (KL) metric.

    Args:
        score (Tensor): Score so far, the parameter's shape.
        grad (Tensor): Task-loss gradient at ``current``.
        previous (Tensor): The parameter ``score_interval`` optimizer steps ago.
        current (Tensor): The parameter now.
        fisher (Tensor): The Fisher estimate before this optimizer step's update.

    Returns:
        Tensor: The new score.
    """
    distance = 0.5 * fisher * (current - previous).pow(2) + NORMALIZE_EPS
    return score + grad * (previous - current) / distance


def riemannian_walk_importance(score: Tensor,
                               previous_importance: Optional[Tensor] = None) -> Tensor:
    """RW's importance at the end of a step: ``max(score, 0)``, averaged with the previous
    steps' (raw) importance when there is one (``0.5 * (s + s_prev)``, as MiB).

    Args:
        score (Tensor): The step's score (:func:`riemannian_score_update`).
        previous_importance (Tensor, optional): The previous step's raw importance.

    Returns:
        Tensor: Non-negative importance, the parameter's shape.
    """
    importance = score.clamp(min=0)
    if previous_importance is not None:
        importance = 0.5 * (importance + previous_importance)
    return importance


def parameter_penalty(params: NamedTensors, weights: NamedTensors,
                      reference: NamedTensors) -> Tensor:
    """``sum_n sum_i weights_n,i (params_n,i - reference_n,i)^2`` over the names of ``weights``.

    Args:
        params (Mapping[str, Tensor]): Current parameters by name (a model's
            ``named_parameters()``); may hold more names than ``weights`` (new ones: not
            penalised).
        weights (Mapping[str, Tensor]): Per-element weights of the penalised parameters.
        reference (Mapping[str, Tensor]): Their values to stay close to, same shapes.

    Returns:
        Tensor: Scalar float32 penalty (0 without weights).

    Raises:
        KeyError: a weighted name is not among ``params`` or ``reference``.
    """
    total = None
    for name, weight in weights.items():
        if name not in params or name not in reference:
            raise KeyError(f'parameter_penalty: {name!r} has a weight but is not among the '
                           f'{"parameters" if name not in params else "reference values"}; '
                           'the importance was computed for another model')
        term = (weight * (params[name].float() - reference[name]).pow(2)).sum()
        total = term if total is None else total + term
    if total is None:
        device = next(iter(params.values())).device if params else None
        return torch.zeros((), dtype=torch.float32, device=device)
    return total


@MODELS.register_module()
class ParameterPenaltyLoss(WeightedLoss):
    """``loss_weight * parameter_penalty(params, weights, reference)``: EWC/PI/RW's term.

    The segmentor holds it outside its module tree (``set_regularizer``) and adds it to its
    losses as ``loss_name``; ``ParameterImportanceHook`` builds it at steps > 0. Weights and
    reference are plain tensors (no buffers: they are never in a state dict).

    Args:
        weights (Mapping[str, Tensor], optional): Per-element weights by parameter name (the
            normalised previous importance). Defaults to None (no penalty).
        reference (Mapping[str, Tensor], optional): The previous step's parameters by name.
        loss_weight (float): Multiplier (MiB: EWC 500, PI 500, RW 100). Defaults to 1.0.
        loss_name (str): Name of the loss item. Defaults to 'loss_reg'.
    """

    def __init__(self, weights: Optional[NamedTensors] = None,
                 reference: Optional[NamedTensors] = None, loss_weight: float = 1.0,
                 loss_name: str = 'loss_reg') -> None:
        super().__init__(loss_weight, loss_name)
        self.weights: Dict[str, Tensor] = dict(weights or {})
        self.reference: Dict[str, Tensor] = dict(reference or {})

    def forward(self, params: NamedTensors) -> Tensor:
        """Compute the weighted penalty.

        Args:
            params (Mapping[str, Tensor]): The model's parameters by name.

        Returns:
            Tensor: Scalar penalty times ``loss_weight``.
        """
        return self.loss_weight * parameter_penalty(params, self.weights, self.reference)

    @torch.no_grad()
    def gradient(self, name: str, param: Tensor) -> Optional[Tensor]:
        """d(forward) / d(param): ``2 loss_weight w (param - reference)``; None when ``name``
        is not penalised. The hook subtracts it to recover the task-loss gradient."""
        if name not in self.weights:
            return None
        return 2 * self.loss_weight * self.weights[name] * (param - self.reference[name])

    def extra_repr(self) -> str:
        return f'penalised={len(self.weights)}, loss_weight={self.loss_weight}'


class ImportanceAccumulator:
    """What one method accumulates over a step: per-element tensors by parameter name.

    Args:
        params (Mapping[str, Tensor]): The trainable parameters by name, at the start of the step.
        previous (Mapping[str, Mapping[str, Tensor]], optional): The previous step's
            :meth:`importance` (raw), None at step 0.
        reference (Mapping[str, Tensor], optional): The previous step's parameters by name (the
            start of the step for the parameters it had).
        alpha (float): Weight of the new squared gradient in the Fisher EMA. Defaults to 0.9.
        score_interval (int): RW's optimizer steps between score updates. Defaults to 10.
    """

    #: ``incremental.method`` of the accumulator.
    method: ClassVar[str] = ''
    #: Keys of :meth:`importance`, the state carried to the next step.
    carries: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, params: NamedTensors,
                 previous: Optional[Mapping[str, NamedTensors]] = None,
                 reference: Optional[NamedTensors] = None, alpha: float = 0.9,
                 score_interval: int = 10) -> None:
        self.previous = {k: dict(v) for k, v in (previous or {}).items()}
        self.reference = dict(reference or {})
        self.alpha = alpha
        self.score_interval = score_interval
        self.updates = 0

    def _fisher_start(self, params: NamedTensors) -> Dict[str, Tensor]:
        """The previous step's raw Fisher where it has the parameter, else ones (MiB)."""
        old = self.previous.get('fisher', {})
        return {n: old[n].to(p.device, torch.float32).clone() if n in old else
                torch.ones_like(p, dtype=torch.float32) for n, p in params.items()}

    def update(self, grads: NamedTensors, params: NamedTensors) -> None:
        """Account for one optimizer step: ``grads`` (task loss) at ``params`` (before the step).

        Args:
            grads (Mapping[str, Tensor]): Gradients of the parameters that have one.
            params (Mapping[str, Tensor]): Every trainable parameter by name.
        """
        raise NotImplementedError

    def importance(self, params: NamedTensors) -> Dict[str, Dict[str, Tensor]]:
        """The raw importance if the step ended at ``params``: ``{key: {name: tensor}}`` for
        each key of :attr:`carries` (what the next step reads)."""
        raise NotImplementedError

    def state_dict(self) -> Dict[str, object]:
        """Everything :meth:`load_state_dict` needs to continue the step exactly (``--resume``)."""
        raise NotImplementedError

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Continue from :meth:`state_dict` (tensors moved to the current ones' devices)."""
        raise NotImplementedError

    @staticmethod
    def penalty_weights(previous: Mapping[str, NamedTensors],
                        normalize: bool = True) -> Dict[str, Tensor]:
        """Per-element penalty weights of the next step from :meth:`importance`."""
        raise NotImplementedError

    @staticmethod
    def _load(mine: Dict[str, Tensor], saved: NamedTensors) -> None:
        """Put ``saved`` tensors into ``mine``, each on the device of the one it replaces."""
        for name, value in saved.items():
            mine[name] = value.to(mine[name].device) if name in mine else value


def _normalized(importance: NamedTensors, normalize: bool) -> Dict[str, Tensor]:
    return {n: min_max_normalize(w) if normalize else w for n, w in importance.items()}


class EWCImportance(ImportanceAccumulator):
    """EWC: the online Fisher diagonal (:func:`fisher_update` every optimizer step)."""

    method = 'ewc'
    carries = ('fisher', )

    def __init__(self, params: NamedTensors, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.fisher = self._fisher_start(params)

    @torch.no_grad()
    def update(self, grads: NamedTensors, params: NamedTensors) -> None:
        for name, grad in grads.items():
            self.fisher[name] = fisher_update(self.fisher[name], grad.float(), self.alpha)
        self.updates += 1

    def importance(self, params: NamedTensors) -> Dict[str, Dict[str, Tensor]]:
        return {'fisher': dict(self.fisher)}

    def state_dict(self) -> Dict[str, object]:
        return {'updates': self.updates, 'fisher': dict(self.fisher)}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.updates = int(state['updates'])
        self._load(self.fisher, state['fisher'])

    @staticmethod
    def penalty_weights(previous: Mapping[str, NamedTensors],
                        normalize: bool = True) -> Dict[str, Tensor]:
        return _normalized(previous['fisher'], normalize)


class PathIntegralImportance(ImportanceAccumulator):
    """PI: the path integral of ``-g . d theta`` (:func:`path_integral_update` every optimizer
    step), divided by the squared distance travelled at the end."""

    method = 'pi'
    carries = ('score', )

    def __init__(self, params: NamedTensors, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.path = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
        self.last: Dict[str, Tensor] = {}  # the parameters at the previous optimizer step
        # where the step started: the previous step's weights, or (new/step 0) the values now
        self.start = {n: self.reference[n].to(p.device, torch.float32) if n in self.reference else
                      p.detach().float().clone() for n, p in params.items()}

    @torch.no_grad()
    def update(self, grads: NamedTensors, params: NamedTensors) -> None:
        for name, grad in grads.items():
            if name in self.last:
                self.path[name] = path_integral_update(self.path[name], grad.float(),
                                                       self.last[name], params[name].float())
        self.last = {n: params[n].detach().float().clone() for n in grads}
        self.updates += 1

    @torch.no_grad()
    def importance(self, params: NamedTensors) -> Dict[str, Dict[str, Tensor]]:
        old = self.previous.get('score', {})
        return {'score': {
            n: path_integral_importance(self.path[n], params[n].detach().float(), self.start[n],
                                        old[n].to(self.path[n].device) if n in old else None)
            for n in self.path}}

    def state_dict(self) -> Dict[str, object]:
        own_start = {n: s for n, s in self.start.items() if n not in self.reference}
        return {'updates': self.updates, 'path': dict(self.path), 'last': dict(self.last),
                'start': own_start}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.updates = int(state['updates'])
        self._load(self.path, state['path'])
        self._load(self.start, state['start'])
        self.last = {n: t.to(self.path[n].device) for n, t in state['last'].items()}

    @staticmethod
    def penalty_weights(previous: Mapping[str, NamedTensors],
                        normalize: bool = True) -> Dict[str, Tensor]:
        return _normalized(previous['score'], normalize)


class RiemannianWalkImportance(ImportanceAccumulator):
    """RW: the Fisher of EWC plus a score of the loss decrease per Fisher distance, updated
    every ``score_interval`` optimizer steps (:func:`riemannian_score_update`)."""

    method = 'rw'
    carries = ('fisher', 'score')

    def __init__(self, params: NamedTensors, **kwargs) -> None:
        super().__init__(params, **kwargs)
        if self.score_interval < 1:
            raise ValueError(f'RW: score_interval must be >= 1, got {self.score_interval}')
        self.fisher = self._fisher_start(params)
        self.score = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
        self.last: Dict[str, Tensor] = {}  # the parameters at the last score update

    @torch.no_grad()
    def update(self, grads: NamedTensors, params: NamedTensors) -> None:
        if self.updates % self.score_interval == 0:
            for name, grad in grads.items():
                if name in self.last:
                    self.score[name] = riemannian_score_update(
                        self.score[name], grad.float(), self.last[name], params[name].float(),
                        self.fisher[name])
            self.last = {n: params[n].detach().float().clone() for n in grads}
        self.updates += 1
        for name, grad in grads.items():
            self.fisher[name] = fisher_update(self.fisher[name], grad.float(), self.alpha)

    @torch.no_grad()
    def importance(self, params: NamedTensors) -> Dict[str, Dict[str, Tensor]]:
        old = self.previous.get('score', {})
        return {'fisher': dict(self.fisher), 'score': {
            n: riemannian_walk_importance(s, old[n].to(s.device) if n in old else None)
            for n, s in self.score.items()}}

    def state_dict(self) -> Dict[str, object]:
        return {'updates': self.updates, 'fisher': dict(self.fisher), 'score': dict(self.score),
                'last': dict(self.last)}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.updates = int(state['updates'])
        self._load(self.fisher, state['fisher'])
        self._load(self.score, state['score'])
        self.last = {n: t.to(self.score[n].device) for n, t in state['last'].items()}

    @staticmethod
    def penalty_weights(previous: Mapping[str, NamedTensors],
                        normalize: bool = True) -> Dict[str, Tensor]:
        fisher = _normalized(previous['fisher'], normalize)
        score = _normalized(previous['score'], normalize)
        return {n: fisher[n] + score[n] for n in fisher if n in score}


#: The accumulator of each method.
ACCUMULATORS: Dict[str, Type[ImportanceAccumulator]] = {
    cls.method: cls for cls in (EWCImportance, PathIntegralImportance, RiemannianWalkImportance)
}
