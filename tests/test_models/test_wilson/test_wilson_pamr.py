"""PAMR and the localizer's self-training on hand-made images and masks."""
import math

import pytest
import torch

from mmincseg.models.wilson import WilsonLocalizer, balanced_mask_ce, confident_masks, pamr


def test_pamr_on_a_flat_image_averages_the_eight_neighbours_by_hand():
    # flat image: every neighbour is as alike, so one step is the mean of the 8 neighbours,
    # borders replicated: a single 1 in the centre of 3x3 goes to 1/8 everywhere else, 0 there
    image = torch.full((1, 3, 3, 3), 0.5)
    mask = torch.zeros(1, 1, 3, 3)
    mask[0, 0, 1, 1] = 1
    out = pamr(image, mask, num_iter=1, dilations=(1, ))
    expected = torch.full((3, 3), 1 / 8)
    expected[1, 1] = 0
    assert torch.allclose(out[0, 0], expected)


def test_pamr_keeps_distributions_and_stops_at_colour_edges():
    torch.manual_seed(0)
    image = torch.zeros(1, 3, 8, 10)
    image[..., 5:] = 1.0  # two colour regions, left and right
    image += 0.01 * torch.randn_like(image)
    # soft masks: background everywhere, but the object's channel on the left half
    masks = torch.zeros(1, 2, 8, 10)
    masks[0, 1, :, :5] = 1
    masks[0, 0] = 1 - masks[0, 1]
    out = pamr(image, masks, num_iter=10, dilations=(1, 2, 4, 8, 12))
    assert torch.allclose(out.sum(dim=1), torch.ones(1, 8, 10), atol=1e-5)
    assert out[0, 1, :, :4].min() > 0.95 and out[0, 1, :, 6:].max() < 0.05
    # without the edge (a flat image) the same masks blur across
    flat = pamr(torch.zeros_like(image), masks, num_iter=10, dilations=(1, 2, 4, 8, 12))
    assert flat[0, 1, :, 6:].max() > 0.2
    # a normalised image (positive affine map per colour channel) gives the same refinement
    scaled = pamr(image * torch.tensor([2., 0.5, 3.])[None, :, None, None] - 1, masks)
    assert torch.allclose(scaled, out, atol=1e-5)
    with pytest.raises(ValueError, match='one size'):
        pamr(image[..., :9], masks)


def test_confident_masks_by_hand():
    # one image, bg and two classes, 4 pixels
    masks = torch.tensor([[[0.9, 0.1, 0.1, 0.5],
                           [0.1, 0.8, 0.5, 0.3],
                           [0.0, 0.1, 0.4, 0.2]]]).view(1, 3, 2, 2)
    hard = confident_masks(masks, cutoff_fg=0.6, cutoff_bg=0.7, cutoff_low=0.2)
    # cuts: bg 0.63, class 1 0.48, class 2 max(0.24, 0.2) = 0.24
    # pixel 0: bg; pixel 1: class 1; pixel 2: class 1 (0.5) and class 2 (0.4): ambiguous;
    # pixel 3: class 2 only (0.5 < 0.63, 0.3 < 0.48, 0.2 < 0.24 no) -> none
    assert hard.view(3, 4).tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    # the low cut: a channel whose maximum is tiny takes nothing
    low = confident_masks(torch.tensor([[[0.9, 0.95], [0.1, 0.05]]]).view(1, 2, 1, 2))
    assert low[0, 1].sum() == 0


def test_balanced_mask_ce_by_hand():
    logits = torch.zeros(2, 3, 1, 4)  # uniform: CE log 3 per assigned pixel
    hard = torch.zeros(2, 3, 1, 4)
    hard[0, 0, 0, :3] = 1  # image 0: 3 background pixels, 1 pixel of class 2, none unassigned
    hard[0, 2, 0, 3] = 1
    hard[1, 0, 0, :2] = 1  # image 1: only background, but labelled with class 2: not counted
    labels = torch.tensor([[0., 1.], [0., 1.]])
    loss = balanced_mask_ce(logits, hard, labels)
    # image 0: weights bg (4 - 3) / 5, class 2 (4 - 1) / 5 -> mean over 4 pixels; image 1: 0
    expected = (3 * 0.2 + 0.6) * math.log(3) / 4 / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    hard[1, 2, 0, 3] = 1  # now image 1 holds its class as well
    counted = balanced_mask_ce(logits, hard, labels)
    # image 1: 3 pixels, bg weight 1/4 (2 px), class 2 weight 2/4 (1 px), 1 unassigned
    assert counted.item() == pytest.approx(
        expected + (2 * 0.25 + 0.5) * math.log(3) / 4 / 2, rel=1e-5)


def test_localizer_self_trains_only_with_images():
    torch.manual_seed(0)
    loc = WilsonLocalizer(in_channels=4, num_classes=4, num_old=2, channels=8)
    feat = torch.randn(2, 4, 6, 6)
    old = torch.randn(2, 2, 6, 6)
    labels = torch.tensor([[1., 0.], [1., 1.]])
    assert set(loc.loss(feat, old, labels)) == {'loss_loc_cls', 'loss_loc_prior'}
    images = torch.randn(2, 3, 24, 24)
    losses = loc.loss(feat, old, labels, images=images)
    assert 'loss_loc_self' in losses and torch.isfinite(losses['loss_loc_self'])
    refined = loc.refined_masks(feat, images, labels)
    assert refined.shape == (2, 4, 6, 6)
    assert refined[:, 1].abs().sum() == 0 and refined[0, 3].abs().sum() == 0  # old / unlabelled
    off = WilsonLocalizer(in_channels=4, num_classes=4, num_old=2, channels=8,
                          self_train_weight=0)
    assert 'loss_loc_self' not in off.loss(feat, old, labels, images=images)
    # without affinity the masks are the eval-mode softmax, label-masked
    raw = WilsonLocalizer(in_channels=4, num_classes=4, num_old=2, channels=8, affinity=False)
    raw.load_state_dict(loc.state_dict())
    raw.eval()
    probs = raw(feat).softmax(dim=1)
    probs[:, 1] = 0
    probs[0, 3] = 0
    assert torch.allclose(raw.refined_masks(feat, images, labels), probs, atol=1e-6)
