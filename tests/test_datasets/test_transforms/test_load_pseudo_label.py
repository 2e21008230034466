"""LoadPseudoLabel: replaces the training mask by the image's pseudo-label, with clear errors."""
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import TRANSFORMS
from PIL import Image

import mmincseg  # noqa: F401  (registers the transform)
from mmincseg.tasks import voc_palette

CLASSES = [16, 17, 18, 19, 20]


def _write_png(path, label, palette=True):
    img = Image.fromarray(label.astype(np.uint8))
    if palette:
        img.putpalette(voc_palette())
    img.save(path)


def _results(img_path, size=(6, 8)):
    return dict(img_path=img_path, img=np.zeros((*size, 3), np.uint8),
                gt_seg_map=np.full(size, 3, np.uint8), seg_fields=['gt_seg_map'])


def _transform(folder):
    return TRANSFORMS.build(dict(type='LoadPseudoLabel', pseudo_label_dir=str(folder),
                                 classes=CLASSES))


def test_replaces_mask_by_pseudo_label(tmp_path):
    label = np.zeros((6, 8), np.uint8)
    label[1:3, 2:5] = 17
    label[4, :] = 255
    _write_png(tmp_path / 'img_001.png', label)
    out = _transform(tmp_path)(_results('/data/JPEGImages/img_001.jpg'))
    np.testing.assert_array_equal(out['gt_seg_map'], label)
    assert out['gt_seg_map'].dtype == np.uint8
    assert out['seg_fields'] == ['gt_seg_map']
    assert out['pseudo_label_path'] == osp.join(str(tmp_path), 'img_001.png')

    # grayscale PNGs work too, and the mask need not be loaded before (image size is checked)
    _write_png(tmp_path / 'img_002.png', label, palette=False)
    results = _results('img_002.jpg')
    del results['gt_seg_map']
    results['seg_fields'] = []
    out = _transform(tmp_path)(results)
    np.testing.assert_array_equal(out['gt_seg_map'], label)
    assert out['seg_fields'] == ['gt_seg_map']


def test_in_a_pipeline_after_load_annotations(toy_voc, tmp_path):
    from mmcv.transforms import Compose
    name = 'toy_000001'
    with Image.open(osp.join(toy_voc, 'SegmentationClass', name + '.png')) as img:
        size = img.size[::-1]
    label = np.full(size, 16, np.uint8)
    _write_png(tmp_path / f'{name}.png', label)
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='LoadPseudoLabel', pseudo_label_dir=str(tmp_path), classes=CLASSES),
        dict(type='PackSegInputs')
    ])
    out = pipeline(dict(img_path=osp.join(toy_voc, 'JPEGImages', name + '.jpg'),
                        seg_map_path=osp.join(toy_voc, 'SegmentationClass', name + '.png'),
                        reduce_zero_label=False, seg_fields=[]))
    assert (out['data_samples'].gt_sem_seg.data == 16).all()


def test_missing_file_names_file_and_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        _transform(tmp_path)(_results('x/img_404.jpg'))
    assert osp.join(str(tmp_path), 'img_404.png') in str(e.value)
    assert 'tools/make_pseudo_labels.py' in str(e.value)


def test_wrong_size(tmp_path):
    _write_png(tmp_path / 'img.png', np.zeros((6, 7), np.uint8))
    with pytest.raises(ValueError, match=r'has size \(6, 7\).*\(6, 8\)') as e:
        _transform(tmp_path)(_results('img.jpg'))
    assert 'img.png' in str(e.value) and 'make_pseudo_labels' in str(e.value)
    # checked against the image as well as the loaded mask
    _write_png(tmp_path / 'img.png', np.zeros((6, 8), np.uint8))
    results = _results('img.jpg')
    results['img'] = np.zeros((7, 8, 3), np.uint8)
    with pytest.raises(ValueError, match='image'):
        _transform(tmp_path)(results)


def test_wrong_classes(tmp_path):
    label = np.zeros((6, 8), np.uint8)
    label[0, 0] = 3      # an old class: a pseudo-label of another step
    label[0, 1] = 21     # not a VOC class at all
    label[0, 2] = 16
    _write_png(tmp_path / 'img.png', label)
    with pytest.raises(ValueError, match=r'class ids \[3, 21\]') as e:
        _transform(tmp_path)(_results('img.jpg'))
    assert 'img.png' in str(e.value) and 'make_pseudo_labels' in str(e.value)


def test_unreadable_file_and_generate_flag(tmp_path):
    (tmp_path / 'img.png').write_bytes(b'not a png')
    with pytest.raises(ValueError, match='cannot read pseudo-label'):
        _transform(tmp_path)(_results('img.jpg'))
    with pytest.raises(ValueError, match='not supported'):
        TRANSFORMS.build(dict(type='LoadPseudoLabel', pseudo_label_dir=str(tmp_path),
                              classes=CLASSES, generate=True))
    assert 'classes=[16, 17, 18, 19, 20]' in repr(_transform(tmp_path))
