import pytest
import torch
import torch.nn.functional as F

from mmincseg.models.losses.feature_distillation_loss import (FeatureDistillationLoss,
                                                              feature_distillation)


def test_single_tensor_is_mse():
    features = torch.tensor([[1., 2.], [3., 4.]]).view(1, 1, 2, 2)
    old_features = torch.zeros(1, 1, 2, 2)
    loss = feature_distillation(features, old_features)
    assert loss.item() == pytest.approx((1 + 4 + 9 + 16) / 4)
    assert feature_distillation(features, features.clone()).item() == 0


def test_sequence_is_mean_over_levels():
    features = (torch.ones(1, 2, 4, 4), torch.full((1, 3, 2, 2), 3.))
    old_features = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 2, 2)]
    assert feature_distillation(features, old_features).item() == pytest.approx((1 + 9) / 2)


def test_gradient_and_precision():
    features = torch.randn(2, 8, 4, 4, requires_grad=True)
    old_features = torch.randn(2, 8, 4, 4)
    loss = feature_distillation(features, old_features)
    loss.backward()
    expected_grad = 2 * (features - old_features).detach() / features.numel()
    torch.testing.assert_close(features.grad, expected_grad)
    reference = F.mse_loss(features.detach(), old_features)
    for dtype in (torch.float16, torch.bfloat16):
        low = feature_distillation(features.detach().to(dtype), old_features.to(dtype))
        assert low.dtype == torch.float32
        torch.testing.assert_close(low, reference, rtol=2e-2, atol=2e-2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = feature_distillation(features.detach(), old_features)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, reference)


def test_errors():
    with pytest.raises(ValueError, match='same shape'):
        feature_distillation(torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2))
    with pytest.raises(ValueError, match='2 student and 1 teacher'):
        feature_distillation([torch.randn(1), torch.randn(1)], [torch.randn(1)])
    with pytest.raises(ValueError):
        feature_distillation([], [])


def test_module_wrapper_and_registry():
    from mmseg.registry import MODELS
    default = FeatureDistillationLoss()
    assert default.loss_name == 'loss_feat_kd' and default.loss_weight == 1.0
    module = MODELS.build(dict(type='FeatureDistillationLoss', loss_weight=100.0))
    features, old_features = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    torch.testing.assert_close(module(features, old_features),
                               100.0 * F.mse_loss(features, old_features))


def test_valid_mask_leaves_out_padding_value_and_gradient():
    gen = torch.Generator().manual_seed(0)
    features = [torch.randn(2, 4, 4, 4, generator=gen), torch.randn(2, 3, 2, 2, generator=gen)]
    old_features = [torch.randn_like(f) for f in features]
    leaves = [f.clone().requires_grad_(True) for f in features]
    reference = feature_distillation(leaves, old_features)
    reference.backward()

    padded, padded_old, masks = [], [], []
    for f, old in zip(features, old_features):
        n, c, h, w = f.shape
        big = torch.randn(n, c, h + 2, w + 1, generator=gen) * 50
        big_old = torch.randn(n, c, h + 2, w + 1, generator=gen) * 50
        big[:, :, :h, :w], big_old[:, :, :h, :w] = f, old
        mask = torch.zeros(n, 1, h + 2, w + 1, dtype=torch.bool)
        mask[:, :, :h, :w] = True
        padded.append(big.requires_grad_(True))
        padded_old.append(big_old)
        masks.append(mask)
    loss = feature_distillation(padded, padded_old, valid_mask=masks)
    loss.backward()
    torch.testing.assert_close(loss, reference)
    for big, leaf in zip(padded, leaves):
        h, w = leaf.shape[2:]
        torch.testing.assert_close(big.grad[:, :, :h, :w], leaf.grad)
        assert (big.grad[:, :, h:] == 0).all() and (big.grad[:, :, :, w:] == 0).all()


def test_valid_mask_per_sample_all_ones_and_errors():
    features, old_features = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    plain = feature_distillation(features, old_features)
    torch.testing.assert_close(
        feature_distillation(features, old_features, valid_mask=torch.ones(2, 4, 5)), plain)
    mask = torch.zeros(2, 1, 4, 5)
    mask[0] = 1
    mask[1, :, :2, :3] = 1
    expected = ((features[0] - old_features[0]).square().sum()
                + (features[1, :, :2, :3] - old_features[1, :, :2, :3]).square().sum()) / (3 * 26)
    torch.testing.assert_close(feature_distillation(features, old_features, valid_mask=mask),
                               expected)
    # a level without a mask is the plain MSE
    two = feature_distillation([features, features], [old_features, old_features],
                               valid_mask=[mask, None])
    torch.testing.assert_close(two, (expected + plain) / 2)
    with pytest.raises(ValueError, match='1 valid_mask for 2'):
        feature_distillation([features, features], [old_features, old_features],
                             valid_mask=mask)
    with pytest.raises(ValueError, match='valid_mask'):
        feature_distillation(features, old_features, valid_mask=torch.ones(2, 1, 2, 2))
    torch.testing.assert_close(
        FeatureDistillationLoss(loss_weight=100.0)(features, old_features, valid_mask=mask),
        100.0 * expected)
