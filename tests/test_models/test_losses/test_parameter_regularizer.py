"""EWC / PI / RW importances on a two-scalar model against values computed by hand.

The model: scalars w, b from (0, 0), task loss L = (w - 1)^2 + 0.5 (b - 2)^2, so
g = (2 (w - 1), b - 2); plain SGD with lr 0.25 gives
    step 0: theta (0, 0)          g (-2, -2)
    step 1: theta (0.5, 0.5)      g (-1, -1.5)
    step 2: theta (0.75, 0.875)   g (-0.5, -1.125)
    end:    theta (0.875, 1.15625)
"""
import pytest
import torch

from mmincseg.engine.hooks.parameter_importance_hook import ParameterImportanceHook
from mmincseg.models.losses.parameter_regularizer import (
    EWCImportance, ParameterPenaltyLoss, PathIntegralImportance, RiemannianWalkImportance,
    min_max_normalize, parameter_penalty)

THETAS = [(0., 0.), (0.5, 0.5), (0.75, 0.875)]
GRADS = [(-2., -2.), (-1., -1.5), (-0.5, -1.125)]
END = (0.875, 1.15625)


def named(pair):
    return {'w': torch.tensor(pair[0]), 'b': torch.tensor(pair[1])}


def run(accumulator):
    for theta, grad in zip(THETAS, GRADS):
        accumulator.update(named(grad), named(theta))
    return accumulator.importance(named(END))


def close(tensors, expected):
    assert set(tensors) == set(expected)
    for name, value in expected.items():
        assert tensors[name].item() == pytest.approx(value, rel=1e-6), name


def test_ewc_fisher_is_an_ema_of_squared_gradients_from_ones():
    acc = EWCImportance(named(THETAS[0]))
    fisher_w = 0.9 * 0.25 + 0.1 * (0.9 * 1 + 0.1 * (0.9 * 4 + 0.1 * 1))
    fisher_b = 0.9 * 1.125**2 + 0.1 * (0.9 * 1.5**2 + 0.1 * (0.9 * 4 + 0.1 * 1))
    close(run(acc)['fisher'], {'w': fisher_w, 'b': fisher_b})
    assert fisher_w == pytest.approx(0.352) and fisher_b == pytest.approx(1.3785625)
    assert acc.updates == 3


def test_pi_path_integral_over_distance_travelled():
    acc = PathIntegralImportance(named(THETAS[0]))
    # step 0 has no previous point; then g_k * (theta_{k-1} - theta_k)
    path_w = -1 * (0 - 0.5) + -0.5 * (0.5 - 0.75)
    path_b = -1.5 * (0 - 0.5) + -1.125 * (0.5 - 0.875)
    assert (path_w, path_b) == pytest.approx((0.625, 1.171875))
    close(run(acc)['score'], {'w': path_w / END[0]**2, 'b': path_b / END[1]**2})


def test_rw_score_every_interval_with_the_fisher_before_the_update():
    acc = RiemannianWalkImportance(named(THETAS[0]), score_interval=2)
    importance = run(acc)
    # score updated at optimizer steps 0 (sets the point) and 2 (from step 0's point), with the
    # Fisher after steps 0 and 1: (1.27, 2.395)
    fisher_w, fisher_b = 0.9 * 1 + 0.1 * 3.7, 0.9 * 2.25 + 0.1 * 3.7
    score_w = -0.5 * (0 - 0.75) / (0.5 * fisher_w * 0.75**2 + 1e-8)
    score_b = -1.125 * (0 - 0.875) / (0.5 * fisher_b * 0.875**2 + 1e-8)
    close(importance['score'], {'w': score_w, 'b': score_b})
    close(importance['fisher'], {'w': 0.352, 'b': 1.3785625})


def test_negative_scores_are_clamped():
    acc = PathIntegralImportance(named((0., 0.)))
    acc.update(named((1., 1.)), named((0., 0.)))
    acc.update(named((1., -1.)), named((1., 1.)))  # w moved up the gradient: negative path
    close(acc.importance(named((1., 1.)))['score'], {'w': 0., 'b': 1.})
    rw = RiemannianWalkImportance(named((0., 0.)), score_interval=1)
    rw.update(named((1., 1.)), named((0., 0.)))
    rw.update(named((1., -1.)), named((1., 1.)))
    score = rw.importance(named((1., 1.)))['score']
    assert score['w'].item() == 0 and score['b'].item() == pytest.approx(1 / (0.5 * 1.0 + 1e-8))


def test_second_step_starts_from_the_previous_importance():
    previous = {'fisher': {'w': torch.tensor(0.352)}, 'score': {'w': torch.tensor(4.0)}}
    params = {'w': torch.tensor(0.875), 'new': torch.tensor(0.)}  # 'new': this step's classifier
    ewc = EWCImportance(params, previous=previous)
    close(ewc.fisher, {'w': 0.352, 'new': 1.0})  # raw previous Fisher, ones for new tensors
    pi = PathIntegralImportance(params, previous=previous, reference={'w': torch.tensor(0.5)})
    close(pi.start, {'w': 0.5, 'new': 0.})  # old: the previous weights; new: their start
    pi.update({'w': torch.tensor(-1.), 'new': torch.tensor(-1.)}, params)
    pi.update({'w': torch.tensor(-1.), 'new': torch.tensor(-1.)},
              {'w': torch.tensor(1.), 'new': torch.tensor(0.5)})
    close(pi.importance({'w': torch.tensor(1.), 'new': torch.tensor(0.5)})['score'],
          {'w': 0.125 / 0.25 + 4.0, 'new': 0.5 / 0.25})  # PI adds the steps' importances
    rw = RiemannianWalkImportance(params, previous=previous)
    rw.score = {'w': torch.tensor(2.0), 'new': torch.tensor(-3.)}
    close(rw.importance(params)['score'], {'w': 0.5 * (2.0 + 4.0), 'new': 0.})  # RW averages


def test_min_max_normalize_and_penalty_weights():
    torch.testing.assert_close(min_max_normalize(torch.tensor([1., 3., 5.])),
                               torch.tensor([0., 2., 4.]) / (4 + 1e-8))
    assert min_max_normalize(torch.tensor([7.])).item() == 0  # MiB: one value -> no penalty
    previous = {'fisher': {'w': torch.tensor([1., 3., 5.])},
                'score': {'w': torch.tensor([0., 10., 5.])}}
    norm_f = torch.tensor([0., 0.5, 1.])
    norm_s = torch.tensor([0., 1., 0.5])
    torch.testing.assert_close(EWCImportance.penalty_weights(previous)['w'], norm_f)
    torch.testing.assert_close(PathIntegralImportance.penalty_weights(previous)['w'], norm_s)
    torch.testing.assert_close(RiemannianWalkImportance.penalty_weights(previous)['w'],
                               norm_f + norm_s)
    torch.testing.assert_close(EWCImportance.penalty_weights(previous, normalize=False)['w'],
                               previous['fisher']['w'])


def test_penalty_by_hand_and_its_gradient():
    weights = {'w': torch.tensor([0., 0.5, 1.])}
    reference = {'w': torch.tensor([1., 1., 1.])}
    w = torch.tensor([2., 3., 0.5], requires_grad=True)
    params = {'w': w, 'new': torch.ones(4, requires_grad=True)}  # new: not penalised
    # 0 * 1^2 + 0.5 * 2^2 + 1 * 0.5^2
    assert parameter_penalty(params, weights, reference).item() == pytest.approx(2.25)
    loss = ParameterPenaltyLoss(weights, reference, loss_weight=500.)
    assert loss.loss_name == 'loss_reg'
    value = loss(params)
    assert value.item() == pytest.approx(500 * 2.25)
    value.backward()
    torch.testing.assert_close(w.grad, loss.gradient('w', w.detach()))
    assert params['new'].grad is None and loss.gradient('new', params['new']) is None
    with pytest.raises(KeyError, match="'w' has a weight but is not among the parameters"):
        parameter_penalty({'other': w}, weights, reference)


def test_hook_feeds_task_gradients_without_the_penalty():
    """The optimizer pre-hook subtracts the penalty's gradient from the summed one."""
    model = torch.nn.Linear(2, 1)
    params = dict(model.named_parameters())
    reference = {n: p.detach() + 0.3 for n, p in params.items()}
    weights = {n: torch.rand_like(p) for n, p in params.items()}
    hook = ParameterImportanceHook('ewc', loss_weight=500.)
    hook._params = params
    hook.penalty = ParameterPenaltyLoss(weights, reference, loss_weight=500.)
    hook.accumulator = EWCImportance(params)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    optimizer.register_step_pre_hook(hook._before_step)
    x = torch.tensor([[1., 2.]])
    task = model(x).pow(2).sum()
    task_grads = torch.autograd.grad(task, list(params.values()), retain_graph=True)
    (task + hook.penalty(params)).backward()
    optimizer.step()
    for (name, _), grad in zip(params.items(), task_grads):
        torch.testing.assert_close(hook.accumulator.fisher[name], 0.9 * grad**2 + 0.1,
                                   rtol=1e-5, atol=1e-5)
