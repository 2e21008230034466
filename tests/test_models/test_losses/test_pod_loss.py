import math

import pytest
import torch
from mmseg.registry import MODELS

from mmincseg.models.losses.pod_loss import (LocalPODLoss, collapse_new_logits, local_pod,
                                             pod_distillation, pod_level_distance)


def _loop_pod(x, scales):
    """PLOP's region loop on a square map: slices ``[i*k:(i+1)*k, j*k:(j+1)*k]``, k = W // s."""
    parts = []
    for s in scales:
        k = x.shape[-1] // s
        for i in range(s):
            for j in range(s):
                region = x[..., i * k:(i + 1) * k, j * k:(j + 1) * k]
                parts += [region.mean(dim=3).flatten(1), region.mean(dim=2).flatten(1)]
    return torch.cat(parts, dim=1)


def test_identical_features_give_zero_and_different_positive():
    x = torch.randn(2, 3, 8, 8)
    assert pod_level_distance(x, x.clone()).item() == 0
    assert pod_level_distance(x, x + 0.1).item() > 0


def test_hand_value_on_a_2x2_map():
    new = torch.tensor([[1., 2.], [3., 4.]]).view(1, 1, 2, 2)
    old = torch.zeros(1, 1, 2, 2)
    # squared: [[1, 4], [9, 16]]
    # scale 1 (one 2x2 region): row means 2.5, 12.5; column means (1+9)/2 = 5, (4+16)/2 = 10
    # scale 2 (four 1x1 regions): each cell once as its row mean and once as its column mean
    expected = math.sqrt(2.5**2 + 12.5**2 + 5**2 + 10**2 + 2 * (1 + 16 + 81 + 256))
    got = pod_level_distance(new, old, scales=(1, 2))
    assert got.item() == pytest.approx(expected)
    # the teacher's role and the student's are symmetric
    assert pod_level_distance(old, new, scales=(1, 2)).item() == pytest.approx(expected)


def test_embedding_norm_is_that_of_plops_region_loop():
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    ours = torch.linalg.vector_norm(local_pod(x) - local_pod(y), dim=1)
    loop = torch.linalg.vector_norm(_loop_pod(x, (1, 2, 4)) - _loop_pod(y, (1, 2, 4)), dim=1)
    torch.testing.assert_close(ours, loop)
    # 10 x 10 at scale 4: regions of 2 cells, the last 2 rows/columns left out as PLOP does
    x10 = torch.randn(1, 2, 10, 10)
    torch.testing.assert_close(local_pod(x10, (4, )).norm(), _loop_pod(x10, (4, )).norm())


def test_non_square_and_small_maps():
    x = torch.randn(2, 4, 6, 10)
    emb = local_pod(x, (1, 2, 4))
    # n_h * n_w * (k_h + k_w) per scale: 1*1*(6+10) + 2*2*(3+5) + 4*4*(1+2) = 16 + 32 + 48
    assert emb.shape == (2, 4 * (16 + 32 + 48))
    tiny = torch.randn(1, 2, 1, 2)  # shorter than the scale: one-cell regions, no NaN
    assert torch.isfinite(local_pod(tiny, (1, 2, 4))).all()


def test_padding_is_cropped_away():
    image = torch.randn(1, 3, 5, 6)
    old_image = torch.randn(1, 3, 5, 6)
    padded = torch.zeros(1, 3, 8, 8)
    old_padded = torch.full((1, 3, 8, 8), 7.0)  # padding that differs between the models
    padded[..., :5, :6], old_padded[..., :5, :6] = image, old_image
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[..., :5, :6] = True
    got = pod_level_distance(padded, old_padded, valid_mask=mask)
    torch.testing.assert_close(got, pod_level_distance(image, old_image))
    # a sample without valid cells is left out of the batch mean
    both = pod_level_distance(torch.cat([padded, padded]), torch.cat([old_padded, old_padded]),
                              valid_mask=torch.cat([mask, torch.zeros_like(mask)]))
    torch.testing.assert_close(both, got)


def test_gradient_is_finite_at_zero_distance():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    pod_level_distance(x, x.detach().clone()).backward()
    assert torch.isfinite(x.grad).all()


def test_levels_are_averaged_with_their_weights():
    feats = [torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 6)]
    old = [f + torch.randn_like(f) for f in feats]
    d = [pod_level_distance(f, o) for f, o in zip(feats, old)]
    got = pod_distillation(feats, old, level_weights=[1.0, 3.0])
    torch.testing.assert_close(got, (d[0] + 3 * d[1]) / 2)
    with pytest.raises(ValueError, match='same shape'):
        pod_distillation([feats[0]], [feats[1]])


def test_collapse_new_logits_adds_them_to_background():
    logits = torch.arange(5.).view(1, 5, 1, 1)  # bg 0, old 1 2, new 3 4
    got = collapse_new_logits(logits, 3)
    assert got.flatten().tolist() == [0 + 3 + 4, 1, 2]


def test_module_is_plops_formula():
    loss = MODELS.build(dict(type='LocalPODLoss'))
    assert isinstance(loss, LocalPODLoss) and loss.loss_name == 'loss_pod'
    assert (loss.loss_weight, loss.logits_weight, loss.scales) == (0.01, 0.0005, (1, 2, 4))
    feats = [torch.randn(2, 3, 8, 8), torch.randn(2, 4, 4, 4)]
    old = [f + 1 for f in feats]
    logits, old_logits = torch.randn(2, 7, 8, 8), torch.randn(2, 5, 8, 8)
    out = loss(feats, old, logits, old_logits, num_classes=7, num_new_classes=2)
    schedule = math.sqrt(7 / 2)
    d_feats = [pod_level_distance(f, o) for f, o in zip(feats, old)]
    d_logits = pod_level_distance(collapse_new_logits(logits, 5), old_logits)
    # PLOP: sum over the L = 3 levels of factor * schedule * d_l, divided by L
    torch.testing.assert_close(out['loss_pod'], schedule * 0.01 * sum(d_feats) / 3)
    torch.testing.assert_close(out['loss_pod_logits'], schedule * 0.0005 * d_logits / 3)
    no_logits = loss(feats, old, num_classes=7, num_new_classes=2)
    assert set(no_logits) == {'loss_pod'}
    torch.testing.assert_close(no_logits['loss_pod'], schedule * 0.01 * sum(d_feats) / 2)
    with pytest.raises(ValueError, match='num_new_classes'):
        loss(feats, old)
    with pytest.raises(ValueError, match="prepro='square'"):
        LocalPODLoss(prepro='square')


def test_low_precision_inputs_give_float32():
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    reference = pod_level_distance(x, y)
    low = pod_level_distance(x.bfloat16(), y.bfloat16())
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, reference, rtol=2e-2, atol=2e-2)
