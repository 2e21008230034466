import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mmincseg.models.classifiers.novel_init import init_novel_classifier


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), num_old=st.integers(1, 6), num_new=st.integers(0, 5),
       in_channels=st.integers(1, 8), conv=st.booleans())
def test_probabilities_are_preserved(seed, num_old, num_new, in_channels, conv):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(num_old, in_channels, generator=gen)
    bias = torch.randn(num_old, generator=gen)
    features = torch.randn(2, in_channels, 3, 3, generator=gen) * 3
    if conv:
        weight = weight[..., None, None]
    new_weight, new_bias = init_novel_classifier(weight, bias, num_new)
    assert new_weight.shape == (num_old + num_new, ) + weight.shape[1:]
    assert new_bias.shape == (num_old + num_new, )

    weight4d = weight.view(num_old, in_channels, 1, 1)
    old_prob = torch.softmax(F.conv2d(features, weight4d, bias), dim=1)
    grown = F.conv2d(features, new_weight.view(num_old + num_new, in_channels, 1, 1), new_bias)
    new_prob = torch.softmax(grown, dim=1)
    torch.testing.assert_close(new_prob[:, 1:num_old], old_prob[:, 1:])
    shared = torch.cat([new_prob[:, :1], new_prob[:, num_old:]], dim=1)
    torch.testing.assert_close(shared.sum(1), old_prob[:, 0])
    expected = (old_prob[:, :1] / (num_new + 1)).expand_as(shared)
    torch.testing.assert_close(shared, expected)


def test_rows_and_biases():
    weight = torch.arange(6.).view(3, 2, 1, 1)
    bias = torch.tensor([1., 2., 3.])
    new_weight, new_bias = init_novel_classifier(weight, bias, 2)
    for row in (3, 4):
        torch.testing.assert_close(new_weight[row], weight[0])
    torch.testing.assert_close(new_weight[:3], weight)
    shared = 1 - math.log(3)
    torch.testing.assert_close(new_bias, torch.tensor([shared, 2., 3., shared, shared]))
    # inputs untouched, outputs are new storage
    torch.testing.assert_close(bias, torch.tensor([1., 2., 3.]))
    new_weight[3] += 1
    torch.testing.assert_close(new_weight[4], weight[0])


def test_parameters_dtype_and_no_new():
    conv = torch.nn.Conv2d(4, 3, 1).to(torch.float64)
    new_weight, new_bias = init_novel_classifier(conv.weight, conv.bias, 0)
    assert new_weight.dtype == torch.float64 and not new_weight.requires_grad
    torch.testing.assert_close(new_weight, conv.weight.detach())
    torch.testing.assert_close(new_bias, conv.bias.detach())
    assert new_weight.data_ptr() != conv.weight.data_ptr()


def test_errors():
    weight, bias = torch.randn(3, 4, 1, 1), torch.randn(3)
    with pytest.raises(ValueError, match='no bias'):
        init_novel_classifier(weight, None, 2)
    with pytest.raises(ValueError, match='num_new'):
        init_novel_classifier(weight, bias, -1)
    with pytest.raises(ValueError, match='bias of shape'):
        init_novel_classifier(weight, torch.randn(4), 1)
    with pytest.raises(ValueError, match='weight must have a shape'):
        init_novel_classifier(torch.randn(3, 4, 3, 3), bias, 1)


def test_exported_from_models_package():
    from mmincseg.models import init_novel_classifier as exported
    assert exported is init_novel_classifier
