import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmincseg.models.losses.unbiased_kd_loss import UnbiasedKDLoss, unbiased_kd


def _lse(*values):
    return math.log(sum(math.exp(v) for v in values))


def _teacher_equivalent_student(old_logits, num_new):
    """Student logits whose merged (background + new) distribution equals the teacher's."""
    shared = old_logits[:, :1] - math.log(num_new + 1)
    return torch.cat([shared, old_logits[:, 1:], shared.expand(-1, num_new, -1, -1)], dim=1)


def test_hand_computed_pixel():
    old_logits = torch.tensor([0., math.log(3.)]).view(1, 2, 1, 1)  # teacher p = (0.25, 0.75)
    logits = torch.tensor([1., 2., 0.5]).view(1, 3, 1, 1)  # bg, old class 1, new class 2
    log_q_background = _lse(1, 0.5) - _lse(1, 2, 0.5)
    log_q_old = 2 - _lse(1, 2, 0.5)
    expected = -(0.25 * log_q_background + 0.75 * log_q_old) / 2
    loss = unbiased_kd(logits, old_logits)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # two pixels: mean over pixels
    logits2 = torch.cat([logits, torch.zeros(1, 3, 1, 1)], dim=3)
    old_logits2 = torch.cat([old_logits, torch.zeros(1, 2, 1, 1)], dim=3)
    second = -(0.5 * (_lse(0, 0) - _lse(0, 0, 0)) + 0.5 * (0 - _lse(0, 0, 0))) / 2
    assert unbiased_kd(logits2, old_logits2).item() == pytest.approx((expected + second) / 2,
                                                                     rel=1e-6)


def test_alpha_scales_teacher():
    old_logits = torch.tensor([0., math.log(3.)]).view(1, 2, 1, 1)
    logits = torch.tensor([1., 2., 0.5]).view(1, 3, 1, 1)
    p = torch.softmax(old_logits.flatten() * 2.0, 0)
    expected = -(p[0] * (_lse(1, 0.5) - _lse(1, 2, 0.5)) + p[1] * (2 - _lse(1, 2, 0.5))) / 2
    assert unbiased_kd(logits, old_logits, alpha=2.0).item() == pytest.approx(expected.item(),
                                                                              rel=1e-6)


def test_no_new_classes_is_plain_cross_entropy():
    logits = torch.randn(2, 4, 3, 3)
    old_logits = torch.randn(2, 4, 3, 3)
    expected = -(torch.softmax(old_logits, 1) * torch.log_softmax(logits, 1)).sum(1).mean() / 4
    torch.testing.assert_close(unbiased_kd(logits, old_logits), expected)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), num_old=st.integers(1, 5), num_new=st.integers(0, 3),
       alpha=st.sampled_from([0.5, 1.0, 2.0]))
def test_minimal_for_teacher_equivalent_student(seed, num_old, num_new, alpha):
    gen = torch.Generator().manual_seed(seed)
    old_logits = torch.randn(1, num_old, 2, 2, generator=gen) * 4
    random_student = torch.randn(1, num_old + num_new, 2, 2, generator=gen) * 4
    equivalent = _teacher_equivalent_student(old_logits * alpha, num_new)
    best = unbiased_kd(equivalent, old_logits, alpha=alpha)
    # the minimum is the teacher entropy / C_old (Gibbs' inequality)
    p = torch.softmax(old_logits * alpha, 1)
    entropy = -(p * torch.log_softmax(old_logits * alpha, 1)).sum(1).mean() / num_old
    torch.testing.assert_close(best, entropy, rtol=1e-4, atol=1e-5)
    assert best <= unbiased_kd(random_student, old_logits, alpha=alpha) + 1e-5


def test_gradient_flows_to_student_new_channels():
    old_logits = torch.randn(2, 3, 2, 2)
    logits = torch.randn(2, 5, 2, 2, requires_grad=True)
    unbiased_kd(logits, old_logits).backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[:, 3:].abs() > 0).all()  # new channels share the background term


def test_extreme_logits_are_finite():
    gen = torch.Generator().manual_seed(0)
    logits = ((torch.randint(0, 2, (2, 6, 3, 3), generator=gen) * 2 - 1) * 1e4).float()
    old_logits = ((torch.randint(0, 2, (2, 4, 3, 3), generator=gen) * 2 - 1) * 1e4).float()
    logits.requires_grad_(True)
    loss = unbiased_kd(logits, old_logits)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_inputs_and_autocast(dtype):
    logits = torch.randn(2, 5, 4, 4) * 3
    old_logits = torch.randn(2, 3, 4, 4) * 3
    reference = unbiased_kd(logits, old_logits)
    loss = unbiased_kd(logits.to(dtype), old_logits.to(dtype))
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference, rtol=2e-2, atol=2e-2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = unbiased_kd(logits, old_logits)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference)


def test_shape_errors():
    with pytest.raises(ValueError, match='resize'):
        unbiased_kd(torch.randn(1, 4, 8, 8), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match='batch or spatial'):
        unbiased_kd(torch.randn(2, 4, 8, 8), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match='teacher has 5 channels'):
        unbiased_kd(torch.randn(1, 4, 8, 8), torch.randn(1, 5, 8, 8))
    with pytest.raises(ValueError, match='must both be'):
        unbiased_kd(torch.randn(1, 4, 8, 8), torch.randn(4, 8, 8))


def test_module_wrapper_and_registry():
    from mmseg.registry import MODELS
    default = UnbiasedKDLoss()
    assert default.loss_weight == 10.0 and default.loss_name == 'loss_kd'
    module = MODELS.build(dict(type='UnbiasedKDLoss', alpha=2.0, loss_weight=3.0,
                               loss_name='loss_ukd'))
    assert isinstance(module, UnbiasedKDLoss) and module.loss_name == 'loss_ukd'
    logits, old_logits = torch.randn(1, 4, 2, 2), torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(module(logits, old_logits),
                               3.0 * unbiased_kd(logits, old_logits, alpha=2.0))


def _pad_with_garbage(tensor, extra_h, extra_w, gen):
    """``tensor`` (N, C, H, W) with ``extra_h`` rows and ``extra_w`` columns of large random
    values appended (what batch padding puts around an image, but worse)."""
    n, c, h, w = tensor.shape
    out = torch.randn(n, c, h + extra_h, w + extra_w, generator=gen) * 50
    out[:, :, :h, :w] = tensor
    return out


def test_valid_mask_leaves_out_padding_value_and_gradient():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 4, 4, generator=gen) * 3
    old_logits = torch.randn(2, 3, 4, 4, generator=gen) * 3
    reference_logits = logits.clone().requires_grad_(True)
    reference = unbiased_kd(reference_logits, old_logits, alpha=2.0)
    reference.backward()

    padded = _pad_with_garbage(logits, 2, 3, gen).requires_grad_(True)
    padded_old = _pad_with_garbage(old_logits, 2, 3, gen)
    mask = torch.zeros(2, 1, 6, 7, dtype=torch.bool)
    mask[:, :, :4, :4] = True
    loss = unbiased_kd(padded, padded_old, alpha=2.0, valid_mask=mask)
    loss.backward()
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(padded.grad[:, :, :4, :4], reference_logits.grad)
    assert (padded.grad[:, :, 4:] == 0).all() and (padded.grad[:, :, :, 4:] == 0).all()
    # the garbage does change the unmasked loss
    assert not torch.isclose(unbiased_kd(padded, padded_old, alpha=2.0), reference)


def test_valid_mask_is_a_mean_over_the_valid_pixels_of_every_sample():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 5, 6, generator=gen)
    old_logits = torch.randn(2, 2, 5, 6, generator=gen)
    mask = torch.zeros(2, 5, 6)  # (N, H, W) float: sample 0 keeps 4x6, sample 1 keeps 2x3
    mask[0, :4] = 1
    mask[1, :2, :3] = 1
    first = unbiased_kd(logits[:1, :, :4], old_logits[:1, :, :4])
    second = unbiased_kd(logits[1:, :, :2, :3], old_logits[1:, :, :2, :3])
    expected = (first * 24 + second * 6) / 30
    torch.testing.assert_close(unbiased_kd(logits, old_logits, valid_mask=mask), expected)


def test_all_ones_mask_is_todays_loss_and_bad_masks_are_refused():
    logits, old_logits = torch.randn(2, 5, 3, 4), torch.randn(2, 3, 3, 4)
    plain = unbiased_kd(logits, old_logits)
    torch.testing.assert_close(
        unbiased_kd(logits, old_logits, valid_mask=torch.ones(2, 1, 3, 4, dtype=torch.bool)), plain)
    torch.testing.assert_close(
        unbiased_kd(logits, old_logits, valid_mask=torch.ones(2, 3, 4)), plain)
    empty = unbiased_kd(logits, old_logits, valid_mask=torch.zeros(2, 3, 4))
    assert empty.item() == 0
    with pytest.raises(ValueError, match='valid_mask'):
        unbiased_kd(logits, old_logits, valid_mask=torch.ones(2, 1, 6, 8))
    module = UnbiasedKDLoss(loss_weight=3.0)
    mask = torch.rand(2, 1, 3, 4) > 0.5
    torch.testing.assert_close(module(logits, old_logits, valid_mask=mask),
                               3.0 * unbiased_kd(logits, old_logits, valid_mask=mask))
