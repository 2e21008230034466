"""WILSON's target mixing, prior and losses on hand-made logits."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmincseg.models.wilson import (image_weights, label_mask, localizer_cls_loss,
                                    localizer_prior_loss, ngwp_scores, segmentation_targets,
                                    soft_pseudo_labels, wilson_seg_loss)


def test_label_mask_background_on_old_off_new_by_label():
    mask = label_mask(torch.tensor([[1., 0.], [0., 1.]]), n_old=2)
    assert mask.tolist() == [[1, 0, 1, 0], [1, 0, 0, 1]]


def test_soft_pseudo_labels_mix_hard_and_soft_by_alpha():
    # one pixel, channels bg, old, new-a, new-b; logits log(p) so softmax = p
    p = torch.tensor([0.2, 0.3, 0.4, 0.1])
    logits = p.log().view(1, 4, 1, 1)
    mask = torch.tensor([[1., 0., 1., 0.]])  # new-b absent, old never labelled
    out = soft_pseudo_labels(logits, mask, alpha=0.5).flatten()
    # masked softmax [0.2, 0, 0.4, 0]; arg-max new-a -> 0.5 * onehot + 0.5 * p
    assert torch.allclose(out, torch.tensor([0.1, 0.0, 0.7, 0.0]))
    assert torch.allclose(soft_pseudo_labels(logits, mask, alpha=1.0).flatten(),
                          torch.tensor([0., 0., 1., 0.]))
    assert torch.allclose(soft_pseudo_labels(logits, mask, alpha=0.0).flatten(),
                          torch.tensor([0.2, 0., 0.4, 0.]))
    with pytest.raises(ValueError, match='alpha'):
        soft_pseudo_labels(logits, mask, alpha=1.5)


def test_segmentation_targets_old_sigmoid_new_pseudo_background_min():
    old_logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1)  # sigmoid: 0.5, 0.75
    pseudo = torch.tensor([0.3, 0.0, 0.6, 0.1]).view(1, 4, 1, 1)
    target = segmentation_targets(old_logits, pseudo).flatten()
    assert torch.allclose(target, torch.tensor([0.3, 0.75, 0.6, 0.1]))
    pseudo[0, 0] = 0.9  # the old model's background is smaller now
    assert segmentation_targets(old_logits, pseudo)[0, 0].item() == pytest.approx(0.5)


def test_image_weights_need_mass_on_exactly_the_labelled_new_classes():
    pseudo = torch.zeros(2, 4, 1, 2)
    pseudo[0, 2] = 0.5  # image 0: mass on new-a only, labelled new-a -> 1
    pseudo[1, 2] = 0.5  # image 1: mass on new-a, labelled new-a and new-b -> 0
    labels = torch.tensor([[1., 0.], [1., 1.]])
    assert image_weights(pseudo, labels).tolist() == [1.0, 0.0]


def test_ngwp_scores_by_hand():
    logits = torch.tensor([[[[0.0, 0.0]], [[math.log(3.0), 0.0]]]])  # (1, 2, 1, 2)
    m1 = torch.tensor([0.75, 0.5])  # softmax of channel 1 at the two pixels
    pooled = (logits[0, 1, 0] * m1).sum() / (1 + m1.sum())
    mean = m1.mean()
    expected = pooled + (1 - mean) ** 3 * torch.log(0.01 + mean)
    assert ngwp_scores(logits)[0, 1].item() == pytest.approx(expected.item(), rel=1e-5)


def test_localizer_losses():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    old = torch.randn(2, 2, 3, 3)
    prior = localizer_prior_loss(logits, old)
    assert prior.item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits[:, :2], torch.sigmoid(old)).item())
    # minimal (the entropy of the target) when the localizer matches the old logits
    same = logits.detach().clone()
    same[:, :2] = old
    p = torch.sigmoid(old)
    entropy = -(p * p.log() + (1 - p) * (1 - p).log()).mean()
    assert localizer_prior_loss(same, old).item() == pytest.approx(entropy.item(), rel=1e-5)
    labels = torch.tensor([[1., 0.], [0., 1.]])
    cls = localizer_cls_loss(logits, labels)
    assert cls.item() == pytest.approx(F.binary_cross_entropy_with_logits(
        ngwp_scores(logits)[:, 2:], labels).item())
    (cls + prior).backward()
    assert logits.grad.abs().sum() > 0


def test_wilson_seg_loss_sums_channels_means_pixels_weights_images():
    logits = torch.zeros(2, 3, 1, 2)  # BCE of logit 0 = log 2 whatever the target
    targets = torch.rand(2, 3, 1, 2)
    weights = torch.tensor([1., 0.])
    loss = wilson_seg_loss(logits, targets, weights)
    assert loss.item() == pytest.approx(3 * math.log(2) / (1 + 1e-5))
    assert wilson_seg_loss(logits, targets, torch.zeros(2)).item() == 0


def test_a_one_class_step_is_warned_about(caplog):
    """WILSON has no negative image on a one-class step (15-1, 10-1): the localizer says so."""
    import logging

    from mmengine.logging import MMLogger

    from mmincseg.models.wilson import WilsonLocalizer
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING):
            WilsonLocalizer(in_channels=8, num_classes=17, num_old=16, channels=8)
        assert 'one-class step' in caplog.text
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            WilsonLocalizer(in_channels=8, num_classes=21, num_old=16, channels=8)
        assert 'one-class step' not in caplog.text
    finally:
        logger.removeHandler(caplog.handler)
