import math
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from mmincseg.evaluation.incremental_iou_metric import IncrementalIoUMetric
from mmincseg.tasks import class_names, classes_seen

# 2x4 maps; 255 is ignored (the prediction 5 under it does not count)
LABEL = torch.tensor([[0, 0, 1, 1], [16, 16, 255, 17]])
PRED = torch.tensor([[0, 1, 1, 1], [16, 0, 5, 16]])
# by hand over the 7 valid pixels: class 0: I=1, U=3; class 1: I=2, U=3; class 16: I=1, U=3;
# class 17: I=0, U=1; every other class has no pixel (NaN); 4 of 7 pixels correct.
IOU = {0: 1 / 3, 1: 2 / 3, 16: 1 / 3, 17: 0.0}


def _sample(pred, label, img_path='img.jpg'):
    return dict(pred_sem_seg=dict(data=pred[None]), gt_sem_seg=dict(data=label[None]),
                img_path=img_path)


def _metric(task, step, **kwargs):
    metric = IncrementalIoUMetric(task=task, step=step, **kwargs)
    metric.dataset_meta = dict(classes=tuple(class_names(classes_seen(task, step))))
    return metric


def _percent(*values):
    return round(float(np.mean(values)) * 100, 2)


def test_groups_at_a_later_step():
    # 15-1 step 2: step 0 = 0..15, step 1 = {16}, step 2 = {17}
    metric = _metric('15-1', 2)
    # two batches: the areas accumulate (the second image halves are split across batches)
    metric.process({}, [_sample(PRED[:, :2], LABEL[:, :2])])
    metric.process({}, [_sample(PRED[:, 2:], LABEL[:, 2:])])
    results = metric.compute_metrics(metric.results)
    assert results['aAcc'] == round(4 / 7 * 100, 2)
    assert results['mIoU'] == _percent(*IOU.values())  # 33.33
    assert results['mIoU_old'] == _percent(IOU[0], IOU[1], IOU[16])  # 44.44
    assert results['mIoU_new'] == _percent(IOU[17])  # 0.0
    assert results['mIoU_base'] == _percent(IOU[0], IOU[1])  # 50.0
    assert results['mIoU_novel'] == _percent(IOU[16], IOU[17])  # 16.67
    assert (results['mIoU'], results['mIoU_old'], results['mIoU_new'], results['mIoU_base'],
            results['mIoU_novel']) == (33.33, 44.44, 0.0, 50.0, 16.67)
    assert results['IoU.background'] == 33.33
    assert results['IoU.aeroplane'] == 66.67
    assert results['IoU.pottedplant'] == 33.33
    assert results['IoU.sheep'] == 0.0
    assert math.isnan(results['IoU.boat'])  # no pixel in labels and predictions
    assert math.isnan(results['IoU.bus'])  # predicted only on an ignored pixel
    per_class = [k for k in results if k.startswith('IoU.')]
    assert per_class == [f'IoU.{name}' for name in class_names(classes_seen('15-1', 2))]
    assert all(isinstance(v, float) for v in results.values())


def test_step_zero_has_no_novel_classes():
    metric = _metric('15-5', 0)
    label = torch.tensor([[0, 0, 1, 2]])
    pred = torch.tensor([[0, 1, 1, 2]])
    metric.process({}, [_sample(pred, label)])
    results = metric.compute_metrics(metric.results)
    # class 0: I=1, U=2; class 1: I=1, U=2; class 2: I=1, U=1
    assert results['mIoU'] == _percent(0.5, 0.5, 1.0)
    assert results['mIoU_old'] == results['mIoU_base'] == results['mIoU']
    assert results['mIoU_new'] == _percent(0.5, 1.0)  # step-0 classes without background
    assert math.isnan(results['mIoU_novel'])
    assert len([k for k in results if k.startswith('IoU.')]) == 16


def test_class_count_mismatch_is_a_clear_error():
    metric = IncrementalIoUMetric(task='15-5', step=1)
    with pytest.raises(ValueError, match=r"16 classes.*'15-5' has seen 21 classes"):
        metric.dataset_meta = dict(classes=tuple(class_names(classes_seen('15-5', 0))))
    metric = IncrementalIoUMetric(task='15-5', step=1)
    with pytest.raises(ValueError, match="no 'classes'"):
        metric.process({}, [_sample(PRED, LABEL)])
    with pytest.raises(ValueError, match='step 2'):
        IncrementalIoUMetric(task='15-5', step=2)


def test_registry_and_prediction_pngs(tmp_path):
    from mmseg.registry import METRICS
    metric = METRICS.build(dict(type='IncrementalIoUMetric', task='15-5', step=1,
                                output_dir=str(tmp_path)))
    assert isinstance(metric, IncrementalIoUMetric)
    metric.dataset_meta = dict(classes=tuple(class_names(classes_seen('15-5', 1))))
    metric.process({}, [_sample(PRED, LABEL, img_path='/data/JPEGImages/2007_000033.jpg')])
    png = np.array(Image.open(osp.join(tmp_path, '2007_000033.png')))
    np.testing.assert_array_equal(png, PRED.numpy())
    results = metric.compute_metrics(metric.results)
    # 15-5 step 1: old = 0..15, new = 16..20
    assert results['mIoU_old'] == results['mIoU_base'] == 50.0
    assert results['mIoU_new'] == results['mIoU_novel'] == 16.67


def test_evaluate_through_base_metric(tmp_path):
    metric = _metric('19-1', 1)
    metric.process({}, [_sample(PRED, LABEL)])
    results = metric.evaluate(size=1)
    assert results['mIoU'] == 33.33 and results['mIoU_new'] != results['mIoU_new']  # NaN: no tv


# ------------------------------------------------------------------------- class orders
# Classes 1..15 learned backwards, then 16, 17, ...: the step-2 classes of 15-1 are the same
# set as in the identity order, their channels are not.
BACKWARDS = list(range(15, 0, -1)) + list(range(16, 21))


def _to_channels(ids: torch.Tensor, order, task='15-1', step=2) -> torch.Tensor:
    """What the dataset does with a mask of class ids: each seen class to its channel."""
    from mmincseg.datasets.incremental import val_label_map
    from mmincseg.tasks import get_split
    mapping = val_label_map(get_split(task, order=order), step)
    out = ids.clone()
    for class_id, channel in mapping.items():
        out[ids == class_id] = channel
    return out


def _ordered_metric(order, **kwargs):
    from mmincseg.tasks import get_split
    metric = IncrementalIoUMetric(task='15-1', step=2, order=order, **kwargs)
    metric.dataset_meta = dict(
        classes=tuple(class_names(get_split('15-1', order=order).classes_seen(2))))
    return metric


def test_channel_mapping_round_trip():
    from mmincseg.datasets.incremental import train_label_map, val_label_map
    from mmincseg.tasks import get_split
    split = get_split('15-1', order=BACKWARDS)
    for step in range(split.num_steps):
        val = val_label_map(split, step)
        for class_id in split.classes_seen(step):
            assert split.channels[val[class_id]] == class_id
        train = train_label_map(split, step)
        assert sorted(train[c] for c in split.classes_of_step(step)) == list(
            range(len(split.old_classes(step)), len(split.classes_seen(step))))


@pytest.mark.parametrize('order', [None, list(range(1, 21)), BACKWARDS])
def test_metric_speaks_class_ids_in_any_order(order, tmp_path):
    """The same predictions in class ids give the same per-class IoUs and the same PNGs of
    class ids whatever the channel order (the identity order equals no order at all)."""
    reference = _metric('15-1', 2, output_dir=str(tmp_path / 'ref'))
    reference.process({}, [_sample(PRED, LABEL, 'a.jpg')])
    expected = reference.compute_metrics(reference.results)
    metric = _ordered_metric(order, output_dir=str(tmp_path / 'ordered'))
    pred, label = _to_channels(PRED, order), _to_channels(LABEL, order)
    if order == BACKWARDS:
        assert not torch.equal(pred, PRED)  # the channels really differ
    metric.process({}, [_sample(pred, label, 'a.jpg')])
    results = metric.compute_metrics(metric.results)
    for key in ('aAcc', 'mIoU', 'mIoU_old', 'mIoU_new', 'mIoU_base', 'mIoU_novel'):
        assert results[key] == expected[key], key
    iou = {k: v for k, v in results.items() if k.startswith('IoU.')}
    ref = {k: v for k, v in expected.items() if k.startswith('IoU.')}
    assert iou.keys() == ref.keys()
    assert all(iou[k] == ref[k] or (math.isnan(iou[k]) and math.isnan(ref[k])) for k in ref)
    written = np.asarray(Image.open(tmp_path / 'ordered' / 'a.png'))
    np.testing.assert_array_equal(written, np.asarray(Image.open(tmp_path / 'ref' / 'a.png')))
    np.testing.assert_array_equal(written, PRED.numpy())  # class ids, not channels


def test_dataset_without_background_leaves_it_out():
    """ADE20K as MiB reads it: label 0 is ignored in evaluation, so background has no pixels
    and is no part of any mean (its predictions still cost the classes they cover)."""
    from mmincseg.tasks import NUM_ADE20K_CLASSES, get_split
    metric = IncrementalIoUMetric(task='100-50', step=1, num_classes=NUM_ADE20K_CLASSES)
    names = ['background'] + [f'c{i}' for i in range(1, 151)]
    metric.dataset_meta = dict(classes=tuple(names), zero_is_void=True)
    label = torch.tensor([[1, 1, 120, 120], [255, 255, 255, 255]])
    pred = torch.tensor([[1, 0, 120, 120], [0, 0, 1, 1]])
    metric.process({}, [_sample(pred, label)])
    results = metric.compute_metrics(metric.results)
    assert 'IoU.background' not in results
    assert results['IoU.c1'] == 50.0 and results['IoU.c120'] == 100.0
    assert results['mIoU_new'] == 100.0  # 120 is a step-1 class
    assert results['mIoU_old'] == results['mIoU_base'] == 50.0  # class 1, without background
    assert results['mIoU'] == 75.0
    assert get_split('100-50', NUM_ADE20K_CLASSES).classes_of_step(1)[0] == 101
