import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmincseg.models.losses.lwf_kd_loss import LwFKDLoss, lwf_kd


def _lse(*values):
    return math.log(sum(math.exp(v) for v in values))


def test_hand_computed_pixel():
    old_logits = torch.tensor([0., math.log(3.)]).view(1, 2, 1, 1)  # teacher p = (0.25, 0.75)
    logits = torch.tensor([1., 2., 7.]).view(1, 3, 1, 1)  # the new channel 2 is not distilled
    expected = -(0.25 * (1 - _lse(1, 2)) + 0.75 * (2 - _lse(1, 2))) / 2  # mean over 2 channels
    loss = lwf_kd(logits, old_logits)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_per_pixel_mean_over_old_channels():
    logits = torch.randn(2, 6, 3, 3)
    old_logits = torch.randn(2, 4, 3, 3)
    p = torch.softmax(old_logits * 0.5, 1)
    expected = -(p * torch.log_softmax(logits[:, :4], 1)).mean(1).mean()
    torch.testing.assert_close(lwf_kd(logits, old_logits, alpha=0.5), expected)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), num_old=st.integers(1, 5), num_new=st.integers(0, 3),
       shift=st.floats(-5, 5))
def test_minimal_for_teacher_equivalent_student(seed, num_old, num_new, shift):
    gen = torch.Generator().manual_seed(seed)
    old_logits = torch.randn(1, num_old, 2, 2, generator=gen) * 4
    random_student = torch.randn(1, num_old + num_new, 2, 2, generator=gen) * 4
    # same old-channel distribution (logits up to a constant), arbitrary new channels
    equivalent = torch.cat([old_logits + shift, random_student[:, num_old:]], dim=1)
    best = lwf_kd(equivalent, old_logits)
    assert best <= lwf_kd(random_student, old_logits) + 1e-5


def test_gradient_only_on_old_channels():
    logits = torch.randn(2, 5, 2, 2, requires_grad=True)
    lwf_kd(logits, torch.randn(2, 3, 2, 2)).backward()
    assert (logits.grad[:, 3:] == 0).all()
    assert (logits.grad[:, :3].abs() > 0).any()


def test_extreme_logits_and_low_precision():
    gen = torch.Generator().manual_seed(0)
    logits = ((torch.randint(0, 2, (2, 6, 3, 3), generator=gen) * 2 - 1) * 1e4).float()
    old_logits = ((torch.randint(0, 2, (2, 4, 3, 3), generator=gen) * 2 - 1) * 1e4).float()
    logits.requires_grad_(True)
    loss = lwf_kd(logits, old_logits)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()

    logits, old_logits = torch.randn(2, 5, 4, 4) * 3, torch.randn(2, 3, 4, 4) * 3
    reference = lwf_kd(logits, old_logits)
    for dtype in (torch.float16, torch.bfloat16):
        loss = lwf_kd(logits.to(dtype), old_logits.to(dtype))
        assert loss.dtype == torch.float32
        torch.testing.assert_close(loss, reference, rtol=2e-2, atol=2e-2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = lwf_kd(logits, old_logits)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference)


def test_shape_errors():
    with pytest.raises(ValueError, match='resize'):
        lwf_kd(torch.randn(1, 4, 8, 8), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match='lwf_kd'):
        lwf_kd(torch.randn(1, 2, 8, 8), torch.randn(1, 3, 8, 8))


def test_module_wrapper_and_registry():
    from mmseg.registry import MODELS
    default = LwFKDLoss()
    assert default.loss_weight == 1.0 and default.loss_name == 'loss_kd'
    module = MODELS.build(dict(type='LwFKDLoss', alpha=2.0, loss_weight=100.0))
    logits, old_logits = torch.randn(1, 4, 2, 2), torch.randn(1, 3, 2, 2)
    torch.testing.assert_close(module(logits, old_logits),
                               100.0 * lwf_kd(logits, old_logits, alpha=2.0))


def test_valid_mask_leaves_out_padding_value_and_gradient():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 4, 4, generator=gen) * 3
    old_logits = torch.randn(2, 3, 4, 4, generator=gen) * 3
    reference_logits = logits.clone().requires_grad_(True)
    reference = lwf_kd(reference_logits, old_logits, alpha=0.5)
    reference.backward()

    padded = (torch.randn(2, 5, 7, 5, generator=gen) * 50)
    padded[:, :, :4, :4] = logits
    padded.requires_grad_(True)
    padded_old = torch.randn(2, 3, 7, 5, generator=gen) * 50
    padded_old[:, :, :4, :4] = old_logits
    mask = torch.zeros(2, 7, 5, dtype=torch.bool)
    mask[:, :4, :4] = True
    loss = lwf_kd(padded, padded_old, alpha=0.5, valid_mask=mask)
    loss.backward()
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(padded.grad[:, :, :4, :4], reference_logits.grad)
    assert (padded.grad[:, :, 4:] == 0).all() and (padded.grad[:, :, :, 4:] == 0).all()

    # per-sample extents: the mean over the valid pixels of the batch
    mask = torch.zeros(2, 1, 7, 5)
    mask[0, :, :4, :4] = 1
    mask[1, :, :2, :3] = 1
    first = lwf_kd(logits[:1], old_logits[:1])
    second = lwf_kd(logits[1:, :, :2, :3], old_logits[1:, :, :2, :3])
    torch.testing.assert_close(lwf_kd(padded.detach(), padded_old, valid_mask=mask),
                               (first * 16 + second * 6) / 22)


def test_all_ones_mask_is_todays_loss():
    logits, old_logits = torch.randn(2, 5, 3, 4), torch.randn(2, 3, 3, 4)
    torch.testing.assert_close(lwf_kd(logits, old_logits, valid_mask=torch.ones(2, 1, 3, 4)),
                               lwf_kd(logits, old_logits))
    with pytest.raises(ValueError, match='lwf_kd: valid_mask'):
        lwf_kd(logits, old_logits, valid_mask=torch.ones(1, 1, 3, 4))
    mask = torch.rand(2, 3, 4) > 0.5
    torch.testing.assert_close(LwFKDLoss(loss_weight=7.0)(logits, old_logits, valid_mask=mask),
                               7.0 * lwf_kd(logits, old_logits, valid_mask=mask))
