"""The WILSON step's label map from its targets' arg-max (mmincseg/apis/wilson.py)."""
import numpy as np

from mmincseg.apis.wilson import hard_weak_labels


def test_hard_weak_labels_old_channels_are_background_weightless_images_unlabelled():
    channels = np.array([[0, 3, 15], [16, 20, 17]])
    assert hard_weak_labels(channels, 16, 1.0).tolist() == [[0, 0, 0], [16, 20, 17]]
    assert hard_weak_labels(channels, 16, 0.0).tolist() == [[255] * 3] * 2
    assert hard_weak_labels(channels, 16, 1.0).dtype == np.uint8
    # a one-class step (15-1 step 1: 16 old channels, channel 16 new)
    assert hard_weak_labels(np.array([[16, 5]]), 16, 0.5).tolist() == [[16, 0]]
