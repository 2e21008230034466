import math

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from mmincseg.models.seam import SEAMNet  # noqa: F401  (registers SEAMNet)

CLASS_IDS = [0, 16, 17, 18, 19, 20]
R18 = dict(
    type='ResNetV1c',
    depth=18,
    out_indices=(1, 2, 3),
    strides=(1, 2, 1, 1),
    dilations=(1, 1, 2, 4),
    norm_cfg=dict(type='BN', requires_grad=True),
    contract_dilation=True)


def _model(**kwargs):
    cfg = dict(type='SEAMNet', backbone=R18, class_ids=CLASS_IDS,
               test_cfg=dict(scales=(0.5, 1.0), flip=True))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _batch(labels, size=(64, 64), metainfo=None):
    inputs = [torch.randint(0, 256, (3, *size), dtype=torch.uint8) for _ in labels]
    samples = [SegDataSample(metainfo=dict(img_labels=list(lab), **(metainfo or {})))
               for lab in labels]
    return dict(inputs=inputs, data_samples=samples)


def test_build_infers_channels_and_tensor_mode():
    model = _model()
    assert model.in_channels == 512
    assert model.pcm.in_channels == (128, 256)
    assert model.classifier.bias is None and model.classifier.out_channels == 6
    cam, refined = model(torch.randn(2, 3, 64, 48), mode='tensor')
    assert cam.shape == refined.shape == (2, 6, 8, 6)  # output stride 8


def test_bad_config_errors():
    with pytest.raises(ValueError, match='start with background'):
        _model(class_ids=[16, 17])
    with pytest.raises(ValueError, match='distinct'):
        _model(class_ids=[0, 16, 16])
    with pytest.raises(ValueError, match='out of range'):
        _model(pcm_indices=(0, 5))
    with pytest.raises(ValueError, match='unknown keys'):
        _model(test_cfg=dict(scale=(1.0, )))
    with pytest.raises(ValueError, match='mode'):
        _model()(torch.randn(1, 3, 32, 32), mode='logits')


def test_image_labels_map_voc_ids_to_channels():
    model = _model()
    samples = [SegDataSample(metainfo=dict(img_labels=[3, 16, 20])),
               SegDataSample(metainfo=dict(img_labels=[]))]
    labels = model.image_labels(samples)
    assert labels.tolist() == [[1, 1, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0]]  # 3 is not a step class
    with pytest.raises(KeyError, match='img_labels'):
        model.image_labels([SegDataSample()])


@pytest.mark.parametrize('transform', [None, dict(scale_factor=0.5, flip=True)])
def test_two_training_iterations(transform):
    torch.manual_seed(0)
    model = _model(transform=transform)
    model.train()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    watched = {name: p.detach().clone() for name, p in model.named_parameters()
               if name in ('classifier.weight', 'pcm.embed.weight', 'pcm.projections.0.weight',
                           'backbone.layer4.0.conv1.weight')}
    for _ in range(2):
        log_vars = model.train_step(_batch([[16, 18], [20, 3]]), optim_wrapper)
        assert {'loss', 'loss_cls', 'loss_er', 'loss_ecr'} <= set(log_vars)
        assert all(math.isfinite(float(torch.as_tensor(v).detach())) for v in log_vars.values())
        assert log_vars['loss_cls'].item() > 0 and log_vars['loss_ecr'].item() > 0
    for name, before in watched.items():
        assert not torch.equal(before, dict(model.named_parameters())[name]), name


def test_loss_weights_scale_the_terms():
    torch.manual_seed(0)
    model = _model()
    data = model.data_preprocessor(_batch([[17], [19, 20]]), training=True)
    torch.manual_seed(1)
    base = model(**data, mode='loss')
    model.loss_er_weight, model.loss_ecr_weight, model.loss_cls_weight = 2.0, 0.0, 0.5
    torch.manual_seed(1)
    scaled = model(**data, mode='loss')
    assert torch.allclose(scaled['loss_er'], 2 * base['loss_er'])
    assert scaled['loss_ecr'].item() == 0
    assert torch.allclose(scaled['loss_cls'], 0.5 * base['loss_cls'])
    with pytest.raises(KeyError, match='img_labels'):
        model(data['inputs'], [SegDataSample(), SegDataSample()], mode='loss')


def test_predict_pseudo_labels():
    torch.manual_seed(0)
    model = _model()
    model.eval()
    outputs = model.test_step(_batch([[17, 20], [3, 16]], size=(48, 64)))
    assert len(outputs) == 2
    for out, allowed in zip(outputs, ({0, 17, 20}, {0, 16})):
        pred = out.pred_sem_seg.data
        assert pred.shape == (1, 48, 64)
        assert set(pred.unique().tolist()) <= allowed
    # Padding from the preprocessor is removed and the label is resized to ori_shape.
    sample = SegDataSample(metainfo=dict(img_labels=[18], ori_shape=(50, 70),
                                         padding_size=[0, 4, 0, 8]))
    out = model(torch.randn(1, 3, 56, 68), [sample], mode='predict')[0]
    assert out.pred_sem_seg.data.shape == (1, 50, 70)
    assert set(out.pred_sem_seg.data.unique().tolist()) <= {0, 18}
    # Without data samples every class of the model may appear.
    out = model(torch.randn(1, 3, 32, 40), mode='predict')[0]
    assert out.pred_sem_seg.data.shape == (1, 32, 40)
    assert set(out.pred_sem_seg.data.unique().tolist()) <= set(CLASS_IDS)


def _with_negatives(data, maps):
    from mmengine.structures import PixelData
    for sample, seg in zip(data['data_samples'], maps):
        sample.gt_sem_seg = PixelData(data=seg[None].long())
    return data


def test_negative_loss_reads_old_class_pixels_of_gt_sem_seg():
    torch.manual_seed(0)
    model = _model(loss_negative_weight=2.0)
    negative = torch.full((64, 64), 255)
    negative[:32] = 7                    # an old class on the top half of image 0
    unknown = torch.full((64, 64), 255)  # image 1: nothing known
    data = model.data_preprocessor(
        _with_negatives(_batch([[16], [17]]), [negative, unknown]), training=True)
    mask = model.negative_pixels(data['data_samples'], (64, 64))
    assert mask[0, :32].all() and not mask[0, 32:].any() and not mask[1].any()
    torch.manual_seed(1)
    losses = model(**data, mode='loss')
    assert losses['loss_negative'].item() > 0
    model.loss_negative_weight = 1.0
    torch.manual_seed(1)
    assert torch.allclose(model(**data, mode='loss')['loss_negative'],
                          losses['loss_negative'] / 2)
    data = model.data_preprocessor(
        _with_negatives(_batch([[16], [17]]), [unknown, unknown]), training=True)
    assert model(**data, mode='loss')['loss_negative'].item() == 0  # no region: no loss


def test_negative_loss_errors_and_default_off():
    assert 'loss_negative' not in _model()(
        **_model().data_preprocessor(_batch([[16]]), training=True), mode='loss')
    with pytest.raises(ValueError, match='loss_negative_weight'):
        _model(loss_negative_weight=-1.0)
    model = _model(loss_negative_weight=1.0)
    with pytest.raises(KeyError, match='incremental.seam.negatives'):
        model(**model.data_preprocessor(_batch([[16]]), training=True), mode='loss')
