import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmincseg.models.seam.inference import cams_to_pseudo_label, infer_cams

CLASS_IDS = [0, 16, 17, 18]


def _cams():
    """Scores of channels (bg, 16, 17, 18) on a 2x3 image."""
    cams = np.zeros((4, 2, 3), dtype=np.float32)
    cams[1] = [[0.9, 0.1, 0.30], [0.0, 0.20, 0.5]]
    cams[2] = [[0.2, 0.8, 0.25], [0.0, 0.22, 0.6]]
    cams[3] = [[1.0, 1.0, 1.00], [1.0, 1.00, 1.0]]
    cams[0] = 1.0  # the background channel is never used: background is the constant alpha
    return cams


def test_pseudo_label_alpha_and_restriction_to_labels():
    label = cams_to_pseudo_label(_cams(), CLASS_IDS, img_labels=[16, 17], bg_alpha=0.26)
    assert label.dtype == np.uint8 and label.shape == (2, 3)
    # 18 scores 1 everywhere but is not in the image: never predicted.
    np.testing.assert_array_equal(label, [[16, 17, 16], [0, 0, 17]])
    label = cams_to_pseudo_label(_cams(), CLASS_IDS, img_labels=[16, 17], bg_alpha=0.55)
    np.testing.assert_array_equal(label, [[16, 17, 0], [0, 0, 17]])
    label = cams_to_pseudo_label(_cams(), CLASS_IDS, img_labels=[16], bg_alpha=0.26)
    np.testing.assert_array_equal(label, [[16, 0, 16], [0, 0, 16]])
    assert set(np.unique(label)) <= {0, 16}


def test_pseudo_label_ignores_unknown_and_missing_labels():
    # 3 and 255 are not classes of this model: ignored.
    label = cams_to_pseudo_label(_cams(), CLASS_IDS, img_labels=[3, 17, 255])
    np.testing.assert_array_equal(label, [[0, 17, 0], [0, 0, 17]])
    assert (cams_to_pseudo_label(_cams(), CLASS_IDS, img_labels=[3]) == 0).all()
    assert (cams_to_pseudo_label(_cams(), CLASS_IDS, img_labels=[]) == 0).all()
    # None: every foreground channel is allowed.
    assert (cams_to_pseudo_label(_cams(), CLASS_IDS, img_labels=None) == 18).all()


def test_pseudo_label_ignore_band_and_tensor_input():
    label = cams_to_pseudo_label(torch.from_numpy(_cams()), CLASS_IDS, [16, 17], bg_alpha=0.55,
                                 ignore_below=0.21)
    np.testing.assert_array_equal(label, [[16, 17, 255], [0, 255, 17]])
    with pytest.raises(ValueError, match='ignore_below'):
        cams_to_pseudo_label(_cams(), CLASS_IDS, [16], bg_alpha=0.3, ignore_below=0.4)
    with pytest.raises(ValueError, match='len\\(class_ids\\)'):
        cams_to_pseudo_label(_cams(), CLASS_IDS[:3], [16])


def test_pseudo_label_covering_too_much_is_ignored():
    # classes 16 + 17 label 4 of the 6 pixels (0.67) at alpha 0.26
    label = cams_to_pseudo_label(_cams(), CLASS_IDS, [16, 17], bg_alpha=0.26, max_foreground=0.7)
    np.testing.assert_array_equal(label, [[16, 17, 16], [0, 0, 17]])
    label = cams_to_pseudo_label(_cams(), CLASS_IDS, [16, 17], bg_alpha=0.26, max_foreground=0.6)
    np.testing.assert_array_equal(label, [[255, 255, 255], [0, 0, 255]])  # background kept
    # a CAM high everywhere (class 18): nothing is learned from the image
    assert (cams_to_pseudo_label(_cams(), CLASS_IDS, [18], max_foreground=0.9) == 255).all()
    with pytest.raises(ValueError, match='max_foreground'):
        cams_to_pseudo_label(_cams(), CLASS_IDS, [16], max_foreground=0)


def test_adaptive_alpha_cuts_a_plateau_at_its_otsu_threshold():
    # one class (16): a peak (0.9-1.0) on 1/4 of the image over a wide plateau (0.4-0.5)
    rng = np.random.default_rng(0)
    cams = np.zeros((2, 20, 20), dtype=np.float32)
    cams[1] = rng.uniform(0.4, 0.5, (20, 20))
    cams[1, :10, :10] = rng.uniform(0.9, 1.0, (10, 10))
    constant = cams_to_pseudo_label(cams, [0, 16], [16], bg_alpha=0.26)
    assert (constant == 16).all()  # the plateau passes SEAM's constant alpha
    adaptive = cams_to_pseudo_label(cams, [0, 16], [16], bg_alpha=0.26, adaptive_alpha=True)
    assert (adaptive[:10, :10] == 16).all() and (adaptive == 16).sum() == 100
    # the threshold is never lowered: a map whose Otsu cut (about 0.15) lies below alpha
    low = np.zeros((2, 20, 20), dtype=np.float32)
    low[1] = np.where(np.arange(20)[None, :] < 10, 0.1, 0.2)
    low[1, 0, 0] = 1.0
    np.testing.assert_array_equal(
        cams_to_pseudo_label(low, [0, 16], [16], bg_alpha=0.26, adaptive_alpha=True),
        cams_to_pseudo_label(low, [0, 16], [16], bg_alpha=0.26))
    # applied before the max_foreground check: the plateau map is no longer refused
    refused = cams_to_pseudo_label(cams, [0, 16], [16], max_foreground=0.6)
    assert (refused == 255).all()
    kept = cams_to_pseudo_label(cams, [0, 16], [16], max_foreground=0.6, adaptive_alpha=True)
    np.testing.assert_array_equal(kept, adaptive)


class _FakeCAMNet(nn.Module):
    """CAM = the first image channel pooled by 4, the same for every class (flip-equivariant)."""

    class_ids = [0, 16, 17]

    def __init__(self, expect_batch):
        super().__init__()
        self.expect_batch = expect_batch
        self.calls = []

    def forward(self, x, mode='tensor'):
        assert mode == 'tensor' and x.size(0) == self.expect_batch
        self.calls.append(tuple(x.shape[-2:]))
        cam = F.avg_pool2d(x[:, :1], 4, ceil_mode=True).repeat(1, 3, 1, 1)
        return -cam, cam


def test_infer_cams_flip_batching_labels_and_normalisation():
    torch.manual_seed(0)
    img = torch.rand(3, 32, 24)
    flipped_model, plain_model = _FakeCAMNet(expect_batch=2), _FakeCAMNet(expect_batch=1)
    cams = infer_cams(flipped_model, img, scales=(0.5, 1.0, 1.5), flip=True, img_labels=[17, 9])
    plain = infer_cams(plain_model, img[None], scales=(0.5, 1.0, 1.5), flip=False,
                       img_labels=[17])
    assert flipped_model.calls == [(16, 12), (32, 24), (48, 36)]
    assert cams.shape == (3, 32, 24)
    assert (cams[0] == 0).all() and (cams[1] == 0).all()  # background and unlabelled class 16
    assert cams[2].max().item() == pytest.approx(1.0, abs=1e-4)
    assert cams.min() >= 0
    # The flipped copy is flipped back before summing, so an equivariant net gives the same map.
    assert torch.allclose(cams, plain, atol=1e-5)
    # use_pcm=False takes the raw CAM (negative here, so zero after ReLU).
    raw = infer_cams(_FakeCAMNet(expect_batch=2), img, scales=(1.0, ), use_pcm=False)
    assert (raw == 0).all()


def test_infer_cams_rejects_batches():
    with pytest.raises(ValueError, match='one image'):
        infer_cams(_FakeCAMNet(expect_batch=2), torch.rand(2, 3, 8, 8))
