import pytest
import torch

from mmincseg.models.seam.pcm import PixelCorrelationModule, pcm_cam_input


def test_pcm_cam_input_normalises_without_grad():
    torch.manual_seed(0)
    cam = torch.randn(2, 4, 5, 6, requires_grad=True)
    out = pcm_cam_input(cam, suppress_non_max=False)
    assert not out.requires_grad
    assert out.shape == cam.shape
    assert out.min() >= 0 and out.max() <= 1
    fg_peak = out[:, 1:].flatten(2).max(dim=2)[0]
    positive = torch.relu(cam[:, 1:]).flatten(2).max(dim=2)[0] > 0
    assert torch.allclose(fg_peak[positive], torch.ones_like(fg_peak[positive]), atol=1e-4)
    assert torch.allclose(out[:, 0], 1 - out[:, 1:].max(dim=1)[0])


def _inputs(n=2, size=(6, 7), in_channels=(8, 16)):
    h, w = size
    feats = [torch.randn(n, in_channels[0], h, w), torch.randn(n, in_channels[1], h, w)]
    img = torch.randn(n, 3, h * 8, w * 8)
    cam = torch.randn(n, 5, h, w)
    return cam, feats, img


def test_pcm_shapes_and_affinity_columns():
    torch.manual_seed(0)
    pcm = PixelCorrelationModule(in_channels=(8, 16), proj_channels=(4, 6), embed_channels=10)
    cam, feats, img = _inputs()
    refined = pcm(cam, feats, img)
    assert refined.shape == cam.shape
    emb = pcm.embedding(feats, img, cam.shape[-2:])
    assert emb.shape == (2, 10, 42)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2, 42), atol=1e-3)
    aff = pcm.affinity(feats, img, cam.shape[-2:])
    assert aff.shape == (2, 42, 42)
    assert (aff >= 0).all()
    assert torch.allclose(aff.sum(dim=1), torch.ones(2, 42), atol=1e-4)
    # Refined CAM = normalised CAM x affinity: a convex mix of CAM values per column.
    expected = torch.bmm(pcm_cam_input(cam).flatten(2), aff).view_as(cam)
    assert torch.allclose(refined, expected, atol=1e-5)
    assert refined.min() >= 0 and refined.max() <= 1 + 1e-5


def test_pcm_resizes_features_of_other_sizes():
    pcm = PixelCorrelationModule(in_channels=(8, 16), proj_channels=(4, 6), embed_channels=10)
    cam, feats, img = _inputs()
    feats[0] = torch.randn(2, 8, 12, 14)
    assert pcm(cam, feats, img).shape == cam.shape


def test_pcm_identical_pixels_average_the_cam():
    pcm = PixelCorrelationModule(in_channels=(8, 16), proj_channels=(4, 6), embed_channels=10)
    # Every pixel has the same embedding, so every affinity is equal: the refined CAM is the mean.
    feats = [torch.ones(1, 8, 4, 4), torch.ones(1, 16, 4, 4)]
    img = torch.ones(1, 3, 32, 32)
    cam = torch.randn(1, 3, 4, 4)
    refined = pcm(cam, feats, img)
    mean = pcm_cam_input(cam).mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(refined, mean.expand_as(refined), atol=1e-4)


def test_pcm_gradients_only_reach_its_own_layers():
    pcm = PixelCorrelationModule(in_channels=(8, 16), proj_channels=(4, 6), embed_channels=10)
    cam, feats, img = _inputs()
    cam.requires_grad_(True)
    for f in feats:
        f.requires_grad_(True)
    pcm(cam, feats, img).pow(2).sum().backward()
    assert cam.grad is None
    assert all(f.grad is None for f in feats)
    assert pcm.embed.weight.grad is not None and pcm.embed.weight.grad.abs().sum() > 0
    assert all(p.weight.grad is not None for p in pcm.projections)


def test_pcm_rejects_mismatched_config():
    with pytest.raises(ValueError, match='same length'):
        PixelCorrelationModule(in_channels=(8, 16), proj_channels=(4, ))
    pcm = PixelCorrelationModule(in_channels=(8, 16), proj_channels=(4, 6))
    cam, feats, img = _inputs()
    with pytest.raises(ValueError, match='expects 2 feature maps'):
        pcm(cam, feats[:1], img)
