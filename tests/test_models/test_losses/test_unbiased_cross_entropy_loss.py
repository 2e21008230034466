import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmincseg.models.losses.unbiased_cross_entropy_loss import (UnbiasedCrossEntropyLoss,
                                                                unbiased_cross_entropy)


def _lse(*values):
    return math.log(sum(math.exp(v) for v in values))


def _random_case(seed, num_channels=5, shape=(2, 3, 4)):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape[0], num_channels, *shape[1:], generator=gen) * 3
    labels = torch.randint(0, num_channels, shape, generator=gen)
    labels[torch.rand(shape, generator=gen) < 0.2] = 255
    return logits, labels


def test_hand_computed_pixels():
    # one image, 1x3 pixels, 3 channels; old channels = {0 (bg), 1}, new channel = 2
    logits = torch.tensor([1., 2., 3.]).view(1, 3, 1, 1).repeat(1, 1, 1, 3)
    labels = torch.tensor([[[0, 1, 2]]])
    background = -(_lse(1, 2) - _lse(1, 2, 3))  # bg and old-class label: merged background
    new = -(3 - _lse(1, 2, 3))
    expected = (2 * background + new) / 3
    loss = unbiased_cross_entropy(logits, labels, old_classes=2)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # ignored pixels leave the mean
    labels_ignored = torch.tensor([[[255, 1, 2]]])
    loss = unbiased_cross_entropy(logits, labels_ignored, old_classes=2)
    assert loss.item() == pytest.approx((background + new) / 2, rel=1e-6)


@pytest.mark.parametrize('old_classes', [0, 1])
def test_plain_cross_entropy_without_old_classes(old_classes):
    logits, labels = _random_case(0)
    expected = F.cross_entropy(logits, labels, ignore_index=255)
    loss = unbiased_cross_entropy(logits, labels, old_classes=old_classes)
    torch.testing.assert_close(loss, expected)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), num_channels=st.integers(2, 7), data=st.data())
def test_equals_cross_entropy_on_merged_background(seed, num_channels, data):
    old = data.draw(st.integers(1, num_channels))
    logits, labels = _random_case(seed, num_channels)
    merged_logits = torch.cat(
        [torch.logsumexp(logits[:, :old], dim=1, keepdim=True), logits[:, old:]], dim=1)
    merged_labels = torch.where(labels == 255, labels,
                                torch.where(labels < old, 0, labels - old + 1))
    expected = F.cross_entropy(merged_logits, merged_labels, ignore_index=255)
    torch.testing.assert_close(unbiased_cross_entropy(logits, labels, old), expected)
    # old-class labels behave exactly as background labels
    to_background = torch.where((labels < old), torch.zeros_like(labels), labels)
    torch.testing.assert_close(
        unbiased_cross_entropy(logits, to_background, old),
        unbiased_cross_entropy(logits, labels, old))


def test_all_ignored_is_zero_with_zero_grad():
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    labels = torch.full((2, 3, 3), 255)
    loss = unbiased_cross_entropy(logits, labels, old_classes=2)
    assert loss.item() == 0
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad == 0).all()


def test_custom_ignore_index():
    logits, labels = _random_case(1)
    labels[labels == 255] = -1
    expected = F.cross_entropy(logits, labels, ignore_index=-1)
    torch.testing.assert_close(unbiased_cross_entropy(logits, labels, 1, ignore_index=-1), expected)


def test_extreme_logits_are_finite():
    logits = (torch.randint(0, 2, (2, 5, 4, 4)).float() * 2 - 1) * 1e4
    logits.requires_grad_(True)
    labels = torch.randint(0, 5, (2, 4, 4))
    loss = unbiased_cross_entropy(logits, labels, old_classes=3)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_inputs_and_autocast(dtype):
    logits, labels = _random_case(2)
    reference = unbiased_cross_entropy(logits, labels, 2)
    low = logits.to(dtype)
    loss = unbiased_cross_entropy(low, labels, 2)
    assert loss.dtype == torch.float32
    # computed in float32: identical to the float32 loss of the rounded logits
    torch.testing.assert_close(loss, unbiased_cross_entropy(low.float(), labels, 2))
    torch.testing.assert_close(loss, reference, rtol=2e-2, atol=2e-2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = unbiased_cross_entropy(logits, labels, 2)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference)


def test_gradient_flows():
    logits = torch.randn(1, 4, 2, 2, requires_grad=True)
    labels = torch.tensor([[[0, 1], [3, 255]]])
    unbiased_cross_entropy(logits, labels, old_classes=2).backward()
    grad = logits.grad
    assert (grad[..., 1, 1] == 0).all()  # ignored pixel
    assert (grad[:, :, 0, 0] != 0).all()  # background pixel pulls all channels
    # at a background pixel, the old channels 0 and 1 are pushed up together
    assert (grad[0, :2, 0, 0] < 0).all() and (grad[0, 2:, 0, 0] > 0).all()
    assert grad[0, 3, 1, 0] < 0  # new-class pixel pushes its own channel up


def test_pixel_weight():
    logits, labels = _random_case(3)
    weight = torch.rand(labels.shape)
    valid = labels != 255
    per_pixel = F.cross_entropy(logits, labels, ignore_index=255, reduction='none')
    expected = (per_pixel * weight).sum() / valid.sum()
    torch.testing.assert_close(unbiased_cross_entropy(logits, labels, 1, weight=weight), expected)


def test_errors():
    logits, labels = _random_case(4, num_channels=3)
    with pytest.raises(ValueError, match='old_classes=4'):
        unbiased_cross_entropy(logits, labels, old_classes=4)
    with pytest.raises(ValueError, match='labels of shape'):
        unbiased_cross_entropy(logits, labels[:, :2], old_classes=1)
    with pytest.raises(ValueError, match='weight'):
        unbiased_cross_entropy(logits, labels, 1, weight=torch.ones(3))


def test_module_wrapper_and_registry():
    from mmseg.registry import MODELS
    loss_module = MODELS.build(
        dict(type='UnbiasedCrossEntropyLoss', old_classes=2, loss_weight=0.5, loss_name='loss_uce'))
    assert isinstance(loss_module, UnbiasedCrossEntropyLoss)
    assert loss_module.loss_name == 'loss_uce'
    assert UnbiasedCrossEntropyLoss().loss_name == 'loss_ce'
    logits, labels = _random_case(5)
    # BaseDecodeHead.loss_by_feat call signature
    loss = loss_module(logits, labels, weight=None, ignore_index=255)
    torch.testing.assert_close(loss, 0.5 * unbiased_cross_entropy(logits, labels, 2))
    loss_module.old_classes = 3  # the incremental hook may update it
    torch.testing.assert_close(loss_module(logits, labels, ignore_index=255),
                               0.5 * unbiased_cross_entropy(logits, labels, 3))
    with pytest.raises(ValueError):
        UnbiasedCrossEntropyLoss(old_classes=-1)


def test_in_mmseg_decode_head(seg_samples):
    from mmseg.models.decode_heads import FCNHead
    head = FCNHead(in_channels=4, channels=4, num_convs=1, num_classes=5,
                   loss_decode=dict(type='UnbiasedCrossEntropyLoss', old_classes=3))
    logits, labels = _random_case(6, num_channels=5, shape=(2, 4, 4))
    losses = head.loss_by_feat(logits, seg_samples(labels))
    torch.testing.assert_close(losses['loss_ce'], unbiased_cross_entropy(logits, labels, 3))


def _autograd_reference(logits, labels, old, weight=None):
    """The textbook formula through autograd: two logsumexp and a gather."""
    old = max(old, 1)
    valid = labels != 255
    target = torch.where(valid & (labels >= old), labels, torch.zeros_like(labels))
    background = torch.logsumexp(logits[:, :old], dim=1)
    own = logits.gather(1, target.unsqueeze(1)).squeeze(1)
    nll = torch.logsumexp(logits, dim=1) - torch.where(target == 0, background, own)
    if weight is not None:
        nll = nll * weight
    return torch.where(valid, nll, torch.zeros_like(nll)).sum() / valid.sum().clamp(min=1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), num_channels=st.integers(1, 7), data=st.data())
def test_fused_gradient_equals_autograd_of_the_formula(seed, num_channels, data):
    old = data.draw(st.integers(0, num_channels))
    use_weight = data.draw(st.booleans())
    logits, labels = _random_case(seed, num_channels)
    weight = torch.rand(labels.shape, generator=torch.Generator().manual_seed(seed)) \
        if use_weight else None
    fused_in = logits.clone().requires_grad_(True)
    ref_in = logits.clone().requires_grad_(True)
    loss = unbiased_cross_entropy(fused_in, labels, old, weight=weight)
    expected = _autograd_reference(ref_in, labels, old, weight)
    (loss * 1.7).backward()
    (expected * 1.7).backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(fused_in.grad, ref_in.grad)


def test_fused_gradient_matches_finite_differences():
    # the loss runs in float32; central differences of the float64 formula are the reference
    logits, labels = _random_case(5, num_channels=6)
    x = logits.double()
    for old in (0, 3, 6):
        x32 = x.float().requires_grad_(True)
        unbiased_cross_entropy(x32, labels, old).backward()
        flat, eps = x.reshape(-1), 1e-4
        for i in range(0, flat.numel(), 7):
            plus, minus = flat.clone(), flat.clone()
            plus[i] += eps
            minus[i] -= eps
            numeric = (_autograd_reference(plus.view_as(x), labels, old) -
                       _autograd_reference(minus.view_as(x), labels, old)) / (2 * eps)
            assert x32.grad.reshape(-1)[i].item() == pytest.approx(numeric.item(), abs=1e-5)


def test_extreme_logits_keep_the_exact_background_term():
    # the old channels lie 1e4 below a new one: a single shared max would underflow exp() of every
    # old channel and lose the background term; the fused loss keeps it exact
    logits = torch.tensor([0., -1., 1e4]).view(1, 3, 1, 1)
    labels = torch.zeros(1, 1, 1, dtype=torch.long)
    loss = unbiased_cross_entropy(logits, labels, old_classes=2)
    expected = 1e4 - _lse(0, -1)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
