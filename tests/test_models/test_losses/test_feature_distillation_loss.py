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
