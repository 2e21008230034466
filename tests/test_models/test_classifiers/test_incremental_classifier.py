import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmincseg.models import IncrementalClassifier, make_incremental


def fcn(num_classes=21, **kw):
    cfg = dict(type='FCNHead', in_channels=8, channels=4, num_convs=1, num_classes=num_classes,
               concat_input=False, norm_cfg=dict(type='BN'))
    cfg.update(kw)
    return MODELS.build(cfg)


def test_classifier_concatenates_steps_in_order():
    clf = IncrementalClassifier(8, [16, 5])
    x = torch.randn(2, 8, 3, 3)
    out = clf(x)
    assert out.shape == (2, 21, 3, 3)
    torch.testing.assert_close(out[:, 16:], clf.classifiers[1](x))
    assert clf.weight.shape == (21, 8, 1, 1) and clf.bias.shape == (21, )


@pytest.mark.parametrize('head_cfg', [
    dict(type='FCNHead', in_channels=8, channels=4, num_convs=1, concat_input=False),
    dict(type='ASPPHead', in_channels=8, channels=4, dilations=(1, 2)),
    dict(type='PSPHead', in_channels=8, channels=4, pool_scales=(1, 2)),
    dict(type='DepthwiseSeparableASPPHead', in_channels=8, channels=4, dilations=(1, 2),
         c1_in_channels=0, c1_channels=0),
])
def test_make_incremental_on_mmseg_heads(head_cfg):
    head = MODELS.build(dict(head_cfg, num_classes=21, norm_cfg=dict(type='BN')))
    make_incremental(head, [16, 5])
    assert isinstance(head.conv_seg, IncrementalClassifier)
    assert head.num_classes == head.out_channels == 21
    head.eval()
    out = head.forward([torch.randn(1, 8, 8, 8)])
    assert out.shape[1] == 21


def test_refuses_heads_it_cannot_handle():
    binary = fcn(num_classes=2, out_channels=1)
    with pytest.raises(TypeError, match='FCNHead is a binary'):
        make_incremental(binary, [2])
    with pytest.raises(TypeError, match='Linear is not an mmseg BaseDecodeHead'):
        make_incremental(nn.Linear(2, 2), [2])
    ocr = MODELS.build(dict(type='OCRHead', in_channels=8, channels=4, ocr_channels=4,
                            num_classes=21, norm_cfg=dict(type='BN')))
    with pytest.raises(TypeError, match='OCRHead is a cascade head'):
        make_incremental(ocr, [21])


def test_plain_mmseg_checkpoint_loads_as_step0():
    plain = fcn(num_classes=16)
    inc = make_incremental(fcn(num_classes=16), [16])
    inc.load_state_dict(plain.state_dict())
    torch.testing.assert_close(inc.conv_seg.classifiers[0].weight, plain.conv_seg.weight)
    # a step-1 head takes the plain step-0 weights; its new classifier stays missing
    grown = make_incremental(fcn(num_classes=21), [16, 5])
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ['conv_seg.classifiers.1.weight', 'conv_seg.classifiers.1.bias']
    assert not unexpected
