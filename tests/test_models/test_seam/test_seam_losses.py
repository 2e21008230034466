import pytest
import torch
import torch.nn.functional as F

from mmincseg.models.seam.equivariance import EquivariantTransform
from mmincseg.models.seam.losses import (background_from_foreground, cam_cls_loss,
                                         equivariant_cross_reg_loss, equivariant_reg_loss,
                                         mask_cams, max_norm, negative_region_loss,
                                         topk_l1_loss)


def test_max_norm():
    cams = torch.tensor([[[[-1.0, 2.0], [4.0, 1.0]], [[0.0, 0.0], [-3.0, 0.0]]]])
    out = max_norm(cams)
    assert torch.allclose(out[0, 0], torch.tensor([[0.0, 0.5], [1.0, 0.25]]), atol=1e-4)
    assert (out[0, 1] == 0).all()  # an all-negative channel stays zero, no division by zero


def test_background_from_foreground_and_mask():
    cams = torch.rand(2, 4, 3, 3)
    out = background_from_foreground(cams)
    assert torch.equal(out[:, 1:], cams[:, 1:])
    assert torch.allclose(out[:, 0], 1 - cams[:, 1:].max(dim=1)[0])
    labels = torch.tensor([[1.0, 0, 1, 0], [1.0, 1, 0, 0]])
    masked = mask_cams(cams, labels)
    assert (masked[0, 1] == 0).all() and torch.equal(masked[0, 2], cams[0, 2])
    with pytest.raises(ValueError, match='do not match'):
        mask_cams(cams, labels[:, :3])


def _identity_net(x):
    """An exactly equivariant 'CAM network': it returns its input."""
    return x


def _shifting_net(x):
    """Not equivariant to rescaling: shifts the map by two pixels whatever its size."""
    return torch.roll(x, shifts=2, dims=-1)


@pytest.mark.parametrize('flip', [False, True])
def test_er_zero_for_equivariant_map_positive_otherwise(flip):
    torch.manual_seed(0)
    transform = EquivariantTransform(scale_factor=0.3, flip=flip)
    img = torch.rand(2, 3, 40, 30)
    for net, zero in ((_identity_net, True), (_shifting_net, False)):
        of_transformed = net(transform.apply_to_image(img))  # F(A(I))
        transformed = transform.apply_to_map(net(img), of_transformed.shape[-2:])  # A(F(I))
        loss = equivariant_reg_loss(transformed, of_transformed)
        if zero:
            assert loss.item() == pytest.approx(0.0, abs=1e-6)
        else:
            assert loss.item() > 1e-3


def test_topk_l1_is_mean_of_largest_differences():
    target = torch.arange(10, dtype=torch.float32).view(1, 1, 2, 5) / 10
    pred = torch.zeros_like(target)
    assert topk_l1_loss(pred, target, 0.2).item() == pytest.approx(0.85)  # (0.9 + 0.8) / 2
    assert topk_l1_loss(pred, target, 1.0).item() == pytest.approx(0.45)
    assert topk_l1_loss(pred, target, 0.01).item() == pytest.approx(0.9)  # at least one element
    with pytest.raises(ValueError, match='top_ratio'):
        topk_l1_loss(pred, target, 0.0)
    with pytest.raises(ValueError, match='same shape'):
        topk_l1_loss(pred, target[..., :3])


def test_ecr_zero_when_cross_terms_agree_positive_otherwise():
    torch.manual_seed(0)
    cam_a, cam_b = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    assert equivariant_cross_reg_loss(cam_b, cam_b, cam_a, cam_a).item() == 0
    loss = equivariant_cross_reg_loss(cam_a, cam_b, cam_b, cam_a)
    expected = topk_l1_loss(cam_a, cam_b) + topk_l1_loss(cam_b, cam_a)
    assert loss.item() > 0 and torch.allclose(loss, expected)
    # Each term focuses on the largest errors: the top-20% mean is at least the plain mean.
    assert topk_l1_loss(cam_a, cam_b) >= (cam_a - cam_b).abs().mean()


def test_cam_cls_loss():
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    good = torch.tensor([5.0, -5.0, 5.0]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    bad = -good
    assert cam_cls_loss(good, labels) < 0.01 < cam_cls_loss(bad, labels)
    cams = torch.randn(2, 3, 4, 4, requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    loss = cam_cls_loss(cams, labels)
    expected = F.multilabel_soft_margin_loss(cams.mean(dim=(2, 3)), labels)
    assert torch.allclose(loss, expected)
    loss.backward()
    # Gradient descent raises the CAMs of present classes and lowers the absent ones.
    grad = cams.grad.mean(dim=(2, 3))
    assert ((grad < 0) == labels.bool()).all()
    with pytest.raises(ValueError, match='do not match'):
        cam_cls_loss(cams, labels[:, :2])


def test_negative_region_loss_pools_the_region_as_a_negative_image():
    cams = torch.zeros(2, 2, 4, 4, requires_grad=True)
    with torch.no_grad():
        cams[0, 0, :2] = 3.0   # class 0 scores 3 on image 0's top half
        cams[0, 1] = -1.0      # class 1 scores -1 everywhere on image 0
    negative = torch.zeros(2, 8, 8, dtype=torch.bool)
    negative[0, :4] = True     # image 0: top half negative (at 2x the CAM resolution)
    loss = negative_region_loss(cams, negative)
    expected = (F.softplus(torch.tensor(3.0)) + F.softplus(torch.tensor(-1.0))) / 2
    assert torch.allclose(loss, expected)  # image 1 has no negative region: left out
    loss.backward()
    assert cams.grad[0, :, :2].gt(0).all() and cams.grad[0, :, 2:].eq(0).all()
    assert cams.grad[1].eq(0).all()


def test_negative_region_loss_cells_half_covered_and_empty_region():
    cams = torch.zeros(1, 1, 2, 2)
    cams[0, 0, 0, 0], cams[0, 0, 0, 1] = 2.0, 10.0
    negative = torch.zeros(1, 4, 4)
    negative[0, :2, :2] = 1        # CAM cell (0, 0) fully negative
    negative[0, 0, 2] = 1          # cell (0, 1) a quarter negative: not counted
    assert torch.allclose(negative_region_loss(cams, negative), F.softplus(torch.tensor(2.0)))
    empty = negative_region_loss(cams.requires_grad_(), torch.zeros(1, 4, 4))
    assert empty.item() == 0 and empty.requires_grad
    with pytest.raises(ValueError, match='does not match cams'):
        negative_region_loss(cams, torch.zeros(2, 4, 4))
