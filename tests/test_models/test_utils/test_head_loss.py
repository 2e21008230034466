import pytest
import torch
from mmseg.models.decode_heads import FCNHead, STDCHead
from mmseg.models.losses import accuracy

from mmincseg.models.utils import head_loss_by_feat, pixel_accuracy


def _case(seed=0, num_classes=6, size=32):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, size // 4, size // 4, generator=gen)
    labels = torch.randint(0, num_classes, (2, size, size), generator=gen)
    labels[torch.rand(labels.shape, generator=gen) < 0.2] = 255
    return logits, labels


def test_pixel_accuracy_equals_mmseg_accuracy():
    for seed in range(5):
        logits, labels = _case(seed)
        logits = torch.nn.functional.interpolate(logits, size=labels.shape[1:])
        expected = accuracy(logits, labels, ignore_index=255)
        got = pixel_accuracy(logits, labels, 255)
        assert got.shape == expected.shape == (1, )
        torch.testing.assert_close(got, expected)


def test_pixel_accuracy_all_ignored_is_zero():
    logits = torch.randn(1, 3, 2, 2)
    assert pixel_accuracy(logits, torch.full((1, 2, 2), 255), 255).item() == 0


@pytest.mark.parametrize('loss_decode', [
    dict(type='CrossEntropyLoss', loss_weight=1.0),
    [dict(type='UnbiasedCrossEntropyLoss', old_classes=4, loss_weight=0.7),
     dict(type='CrossEntropyLoss', loss_name='loss_ce', loss_weight=0.3)],  # summed by name
])
@pytest.mark.parametrize('sampler', [None, dict(type='OHEMPixelSampler', thresh=0.7,
                                                  min_kept=100)])
def test_same_losses_as_mmseg_loss_by_feat(loss_decode, sampler, seg_samples):
    import mmincseg  # noqa: F401  (registers UnbiasedCrossEntropyLoss)
    head = FCNHead(in_channels=8, channels=8, num_classes=6, num_convs=1,
                   loss_decode=loss_decode, sampler=sampler)
    logits, labels = _case(1)
    samples = seg_samples(labels)
    leaf_a = logits.clone().requires_grad_(True)
    leaf_b = logits.clone().requires_grad_(True)
    expected = head.loss_by_feat(leaf_a, samples)
    got = head_loss_by_feat(head, leaf_b, samples)
    assert set(got) == set(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
    sum(v for k, v in expected.items() if 'loss' in k).backward()
    sum(v for k, v in got.items() if 'loss' in k).backward()
    torch.testing.assert_close(leaf_b.grad, leaf_a.grad)


def test_heads_with_their_own_loss_by_feat_keep_it(seg_samples):
    head = STDCHead(in_channels=8, channels=8, num_classes=2, num_convs=1, boundary_threshold=0.1,
                    loss_decode=[dict(type='CrossEntropyLoss', loss_name='loss_ce',
                                      use_sigmoid=True, loss_weight=1.0),
                                 dict(type='DiceLoss', loss_name='loss_dice', loss_weight=1.0)])
    logits = torch.randn(2, 1, 8, 8)
    labels = torch.randint(0, 2, (2, 32, 32))
    got = head_loss_by_feat(head, logits, seg_samples(labels))
    expected = head.loss_by_feat(logits, seg_samples(labels))
    assert set(got) == set(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
