import math

import pytest
import torch

from mmseg.registry import MODELS
from mmincseg.models.losses.lwf_mc_loss import LwFMCKDLoss, OneHotBCELoss, lwf_mc_kd, one_hot_bce


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _bce(logit, target):
    p = _sigmoid(logit)
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_one_hot_bce_hand_values():
    # two pixels, three channels; pixel 0 is class 2, pixel 1 is ignored, pixel 2 is class 0
    logits = torch.tensor([[1., -2., 0.5], [3., 3., 3.], [0., 1., -1.]]).t().reshape(1, 3, 1, 3)
    labels = torch.tensor([[[2, 255, 0]]])
    pixel0 = _bce(1., 0) + _bce(-2., 0) + _bce(0.5, 1)  # summed over the channels
    pixel2 = _bce(0., 1) + _bce(1., 0) + _bce(-1., 0)
    loss = one_hot_bce(logits, labels)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx((pixel0 + pixel2) / 2, rel=1e-6)  # ignored pixel left out
    # mmseg's sigmoid CE averages over the channels too: ours is C times it
    mmseg_bce = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True, avg_non_ignore=True))
    torch.testing.assert_close(loss, 3 * mmseg_bce(logits, labels, ignore_index=255))


def test_one_hot_bce_all_ignored_and_bad_labels():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = one_hot_bce(logits, torch.full((1, 2, 2), 255))
    loss.backward()
    assert loss.item() == 0 and (logits.grad == 0).all()
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 3\)'):
        one_hot_bce(logits, torch.full((1, 2, 2), 3))
    with pytest.raises(ValueError, match='must be'):
        one_hot_bce(logits, torch.zeros(1, 3, 3, dtype=torch.long))


def test_lwf_mc_kd_hand_values():
    old_logits = torch.tensor([0., math.log(3.)]).view(1, 2, 1, 1)  # sigmoid: 0.5, 0.75
    logits = torch.tensor([1., -1., 9.]).view(1, 3, 1, 1)  # the new channel 2 is not distilled
    expected = _bce(1., 0.5) + _bce(-1., 0.75)  # sum over the two old channels
    assert lwf_mc_kd(logits, old_logits).item() == pytest.approx(expected, rel=1e-6)
    module = LwFMCKDLoss()
    assert module.loss_weight == 10.0 and module.loss_name == 'loss_kd'
    assert module(logits, old_logits).item() == pytest.approx(10 * expected, rel=1e-6)


def test_lwf_mc_kd_is_mibs_normalisation_and_masks_pixels():
    logits = torch.randn(2, 6, 3, 3, requires_grad=True)
    old_logits = torch.randn(2, 4, 3, 3)
    # MiB: n_cl_old * BCEWithLogitsLoss(mean) on the old channels
    mib = 4 * torch.nn.BCEWithLogitsLoss()(logits[:, :4], torch.sigmoid(old_logits))
    torch.testing.assert_close(lwf_mc_kd(logits, old_logits), mib)
    lwf_mc_kd(logits, old_logits).backward()
    assert (logits.grad[:, 4:] == 0).all() and (logits.grad[:, :4] != 0).all()
    mask = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    mask[0, 0, 1, 2] = True
    one = lwf_mc_kd(logits[:1, :, 1:2, 2:3], old_logits[:1, :, 1:2, 2:3])
    torch.testing.assert_close(lwf_mc_kd(logits, old_logits, valid_mask=mask), one)


def test_modules_as_head_loss_and_under_autocast():
    loss = OneHotBCELoss(loss_weight=2.0)
    assert loss.loss_name == 'loss_bce'
    logits = torch.randn(2, 4, 3, 3)
    labels = torch.randint(0, 4, (2, 3, 3))
    value = loss(logits, labels, weight=None, ignore_index=255, avg_factor=None)
    torch.testing.assert_close(value, 2 * one_hot_bce(logits, labels))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = loss(logits.bfloat16(), labels)
        kd = lwf_mc_kd(logits.bfloat16(), logits[:, :2].bfloat16())
    assert low.dtype == kd.dtype == torch.float32
    extreme = torch.tensor([1e4, -1e4]).view(1, 2, 1, 1).requires_grad_(True)
    out = lwf_mc_kd(extreme, -extreme.detach()) + one_hot_bce(extreme, torch.tensor([[[1]]]))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(extreme.grad).all()
