import math

import pytest
import torch

from mmincseg.models.utils.pseudo_label import (EntropyHistogram, classif_adaptive_factor,
                                                entropy_pseudo_labels, histogram_median,
                                                scaled_entropy)


def _one_hot_logits(classes, num_old=3, confidence=10.0):
    """(1, C_old, H, W) logits: ``confidence`` on the given class per pixel, None = uniform."""
    h, w = len(classes), len(classes[0])
    logits = torch.zeros(1, num_old, h, w)
    for i, row in enumerate(classes):
        for j, c in enumerate(row):
            if c is not None:
                logits[0, c, i, j] = confidence
    return logits


def test_scaled_entropy_is_plops():
    uniform = torch.full((1, 3, 1, 1), 1 / 3)
    # -sum p log p = log 3, divided by C_old * log C_old * log C_t = 3 * log 3 * log 4
    assert scaled_entropy(uniform, 4).item() == pytest.approx(1 / (3 * math.log(4)), rel=1e-6)
    sure = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert abs(scaled_entropy(sure, 4).item()) < 1e-7


def test_only_confident_background_pixels_take_the_teachers_class():
    labels = torch.tensor([[[0, 0, 0], [3, 255, 0]]])  # C_old = 3 (bg, 1, 2), new class 3
    old_logits = _one_hot_logits([[2, None, 0], [1, 2, 1]])
    # class 1 trusts nothing: its pixel (1, 2) is uncertain
    thresholds = torch.tensor([0.01, 0.0, 0.01, 0.01])
    out, trusted, background = entropy_pseudo_labels(labels, old_logits, thresholds, 4)
    assert out.tolist() == [[[2, 255, 0], [3, 255, 255]]]
    assert trusted.tolist() == [[[True, False, True], [False, False, False]]]
    assert background.tolist() == [[[True, True, True], [False, False, True]]]
    assert labels.tolist() == [[[0, 0, 0], [3, 255, 0]]]  # the input is left alone
    with pytest.raises(ValueError, match='size of the labels'):
        entropy_pseudo_labels(labels, old_logits[..., :2], thresholds, 4)


def test_adaptive_factor_is_the_trusted_share_of_background():
    trusted = torch.tensor([[[True, False, True], [False, False, False]],
                            [[False, False, False], [False, False, False]]])
    background = torch.tensor([[[True, True, True], [False, False, True]],
                               [[False, False, False], [False, False, False]]])
    factor = classif_adaptive_factor(trusted, background)
    # image 0: 2 trusted of 4 background pixels; image 1: no background at all -> 0 (PLOP's)
    torch.testing.assert_close(factor, torch.tensor([2 / (4 + 1e-6), 0.0]))
    torch.testing.assert_close(classif_adaptive_factor(trusted, background, 0.25),
                               torch.tensor([2 / (4 + 1e-6), 0.25]))


def test_histogram_medians():
    counts = torch.zeros(100)
    counts[0] = 10
    # everything in the first bin: 0.01 * (5 / 10) for both rules
    assert histogram_median(counts, 'plop') == pytest.approx(0.005)
    assert histogram_median(counts, 'exact') == pytest.approx(0.005)
    counts = torch.zeros(100)
    counts[:3] = torch.tensor([2., 3., 5.])  # half = 5
    # exact: the cumulative count reaches 5 at the end of bin 1 -> 0.02
    assert histogram_median(counts, 'exact') == pytest.approx(0.02)
    # PLOP's loop: running sum 0 (+ index 0) -> 0 (+ index 1) -> 1; stops in bin 2 since
    # 1 <= 5 <= 1 + 5: 0.02 + (5 - 1) / 5 * 0.01
    assert histogram_median(counts, 'plop') == pytest.approx(0.028)
    assert histogram_median(torch.zeros(100)) == 0.0
    with pytest.raises(ValueError, match="median='mean'"):
        histogram_median(counts, 'mean')


def test_histogram_counts_background_pixels_by_teacher_class():
    labels = torch.tensor([[[0, 0, 0], [3, 255, 0]]])
    old_logits = _one_hot_logits([[2, None, 0], [1, 2, 1]])
    hist = EntropyHistogram(num_classes=4, num_bins=100)
    hist.update(old_logits, labels)
    # pixels labelled 0: (0,0) class 2, (0,1) uniform -> argmax 0 at u = 0.24, (0,2) class 0,
    # (1,2) class 1; the confident ones have u < 0.01 (first bin)
    assert hist.counts.sum().item() == 4
    assert hist.counts[2, 0] == 1 and hist.counts[1, 0] == 1 and hist.counts[0, 0] == 1
    assert hist.counts[0, int(100 / (3 * math.log(4)))] == 1
    thresholds = hist.thresholds(floor=0.001)
    assert thresholds.shape == (4, ) and thresholds[3] == pytest.approx(0.001)  # never predicted
    assert (thresholds >= 0.001).all()
