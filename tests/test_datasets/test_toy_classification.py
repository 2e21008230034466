"""The toy classification set (toy pretraining): deterministic, labelled, disjoint from toy VOC."""
import hashlib
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmincseg.datasets.toy_classification import (ToyClassificationDataset,
                                                 make_toy_classification,
                                                 toy_generator_version)
from mmincseg.datasets.toy_voc import make_toy_voc


def test_deterministic_per_seed_and_index():
    images, labels = make_toy_classification(12, image_size=32, seed=3)
    again, again_labels = make_toy_classification(12, image_size=32, seed=3)
    assert images.shape == (12, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again) and np.array_equal(labels, again_labels)
    assert labels.min() >= 0 and labels.max() < 20
    # an index range is the same images wherever it starts
    tail, tail_labels = make_toy_classification(4, image_size=32, seed=3, start_index=8)
    assert np.array_equal(tail, images[8:]) and np.array_equal(tail_labels, labels[8:])
    other, _ = make_toy_classification(12, image_size=32, seed=4)
    assert not np.array_equal(other, images)
    assert toy_generator_version().startswith('voc')


def test_labels_cover_the_classes():
    _, labels = make_toy_classification(200, image_size=32, seed=0)
    assert len(np.unique(labels)) == 20


def test_disjoint_from_the_segmentation_images(tmp_path):
    """No classification image is a (resized, cropped) toy VOC image of the same seed."""
    make_toy_voc(str(tmp_path), seed=0, num_train=16, num_val=4, num_test=0, size=64)
    images, _ = make_toy_classification(20, image_size=32, seed=0, render_size=64)

    def thumb(img: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(img).resize((8, 8), Image.BILINEAR), np.float32)

    seg = [thumb(np.asarray(Image.open(osp.join(tmp_path, 'JPEGImages', f'toy_{i:06d}.jpg'))
                            .convert('RGB')))
           for i in range(20)]
    cls = [thumb(img) for img in images]
    # the closest classification / segmentation pair is far apart (no image is shared)
    gaps = [np.abs(a - b).mean() for a in cls for b in seg]
    assert min(gaps) > 12
    assert len({hashlib.sha1(img.tobytes()).hexdigest() for img in images}) == len(images)


def test_dataset_items():
    dataset = ToyClassificationDataset(num_images=6, image_size=32, seed=1, flip_prob=0.0)
    images, labels = make_toy_classification(6, image_size=32, seed=1)
    item = dataset[2]
    assert tuple(item['inputs'].shape) == (3, 32, 32)
    assert np.array_equal(item['inputs'].permute(1, 2, 0).numpy(), images[2])
    assert item['data_samples'] == labels[2] and len(dataset) == 6
    assert len(dataset.metainfo['classes']) == 20


def test_bad_arguments():
    with pytest.raises(ValueError, match='seed'):
        make_toy_classification(2, seed=-1)
    with pytest.raises(ValueError, match='num_images'):
        make_toy_classification(0)
