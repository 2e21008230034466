"""The incremental step on any mmseg dataset: ADE20K (label 0 as MiB reads it), a dataset given
by config only, class orders, pickling to workers."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
from PIL import Image

from mmincseg import tasks
from mmincseg.datasets import build_incremental_dataset, dataset_class_names

# name -> ADE label values drawn in rows (0 is ADE's "other", never a class)
ADE_MASKS = {
    'ADE_train_0001': [0, 1, 2],       # step-0 classes of 100-50
    'ADE_train_0002': [5, 120],        # step 0 + a step-1 class
    'ADE_train_0003': [0, 150],        # step-1 class only
    'ADE_train_0004': [0],             # nothing but "other"
}


def make_ade(root, split='training', masks=ADE_MASKS):
    """ADEChallengeData2016's layout: images/<split>/*.jpg, annotations/<split>/*.png."""
    for sub in ('images', 'annotations'):
        os.makedirs(osp.join(root, sub, split), exist_ok=True)
    for name, values in masks.items():
        mask = np.zeros((6, 10), np.uint8)
        for i, v in enumerate(values):
            mask[i, :] = v
        Image.fromarray(mask).save(osp.join(root, 'annotations', split, name + '.png'))
        Image.fromarray(np.full((6, 10, 3), 90, np.uint8)).save(
            osp.join(root, 'images', split, name + '.jpg'))
    return root


def build_ade(root, task='100-50', step=0, subset='train', pipeline=None, **kw):
    split = 'training' if subset == 'train' else 'validation'
    return build_incremental_dataset(
        base_type='ADE20KDataset', task=task, step=step, subset=subset, data_root=root,
        data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
        cache_dir=osp.join(root, 'cache'),
        pipeline=pipeline or [dict(type='LoadAnnotations', reduce_zero_label=True)], **kw)


def names(ds):
    return [osp.basename(ds.get_data_info(i)['img_path'])[:-4] for i in range(len(ds))]


def test_ade20k_has_150_classes_and_background():
    names_ = dataset_class_names(dict(type='IncrementalDataset', base_type='ADE20KDataset'))
    assert len(names_) == tasks.NUM_ADE20K_CLASSES
    assert names_[:3] == ('background', 'wall', 'building') and names_[150] == 'flag'


def test_ade20k_zero_label_is_background_in_training(tmp_path):
    """MiB: ADE's label 0 trains as background; mmseg's reduce_zero_label is turned off (the
    pipeline's LoadAnnotations(reduce_zero_label=True) of mmseg's ADE configs still works)."""
    ds = build_ade(make_ade(str(tmp_path)))
    assert type(ds).__name__ == 'IncrementalADE20KDataset'
    assert names(ds) == ['ADE_train_0001', 'ADE_train_0002']  # images with a class of 1..100
    assert len(ds.metainfo['classes']) == 101 and ds.metainfo['classes'][1] == 'wall'
    seg = ds[0]['gt_seg_map']
    assert seg[0].tolist() == [0] * 10 and seg[1].tolist() == [1] * 10  # 0 -> background
    assert ds[1]['gt_seg_map'][1].tolist() == [0] * 10  # 120 (a future class) -> background
    assert ds.get_data_info(1)['img_labels'] == [5]
    step1 = build_ade(str(tmp_path), step=1)
    assert names(step1) == ['ADE_train_0002', 'ADE_train_0003']
    seg = step1[1]['gt_seg_map']
    assert seg[0].tolist() == [0] * 10 and seg[1].tolist() == [150] * 10


def test_ade20k_zero_label_is_ignored_in_evaluation(tmp_path):
    root = make_ade(str(tmp_path), 'validation', {'ADE_val_0001': [0, 7, 140]})
    ds = build_ade(root, subset='val', test_mode=True)
    seg = ds[0]['gt_seg_map']
    assert seg[0].tolist() == [255] * 10  # "other": no class, not evaluated (MiB)
    assert seg[1].tolist() == [7] * 10 and seg[2].tolist() == [255] * 10  # 140 unseen at step 0
    assert ds.metainfo['zero_is_void'] is True


def test_class_order_maps_labels_to_channels(tmp_path):
    """Channel k is the k-th class learned: labels become channels, img_labels stay class ids."""
    root = make_ade(str(tmp_path))
    order = list(range(150, 0, -1))  # 150 is learned first
    ds = build_ade(root, order=order)
    assert names(ds) == ['ADE_train_0002', 'ADE_train_0003']  # classes 51..150 at step 0
    assert ds.metainfo['classes'][:3] == ('background', 'flag', 'clock')
    seg = ds[1]['gt_seg_map']  # ADE_train_0003: rows 0 and 150
    assert seg[1].tolist() == [1] * 10  # class 150 -> channel 1
    assert ds.get_data_info(1)['img_labels'] == [150]
    seg = ds[0]['gt_seg_map']  # ADE_train_0002: 5 is a step-1 class now, 120 is channel 31
    assert seg[0].tolist() == [0] * 10 and seg[1].tolist() == [31] * 10


def test_identity_order_equals_no_order(tmp_path):
    root = make_ade(str(tmp_path))
    plain, identity = build_ade(root), build_ade(root, order=list(range(1, 151)))
    assert names(plain) == names(identity)
    for i in range(len(plain)):
        np.testing.assert_array_equal(plain[i]['gt_seg_map'], identity[i]['gt_seg_map'])


def test_dataset_pickles_to_workers(tmp_path):
    ds = build_ade(make_ade(str(tmp_path)))
    clone = pickle.loads(pickle.dumps(ds))
    assert type(clone) is type(ds) and len(clone) == len(ds)
    np.testing.assert_array_equal(clone[0]['gt_seg_map'], ds[0]['gt_seg_map'])


def make_custom(root):
    """A user's dataset: img/*.png + ann/*.png, label values 0 (background) .. 4."""
    masks = {'x1': [1, 2], 'x2': [3], 'x3': [4, 1], 'x4': [2, 4]}
    for sub in ('img', 'ann'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for name, values in masks.items():
        mask = np.zeros((5, 5), np.uint8)
        for i, v in enumerate(values):
            mask[i] = v
        Image.fromarray(mask).save(osp.join(root, 'ann', name + '.png'))
        Image.fromarray(np.full((5, 5, 3), 50, np.uint8)).save(osp.join(root, 'img', name + '.png'))
    return root


def test_a_dataset_given_by_config_only(tmp_path):
    root = make_custom(str(tmp_path))
    cfg = dict(type='IncrementalDataset', metainfo=dict(classes=('bg', 'cat', 'dog', 'cow', 'owl')),
               data_root=root, data_prefix=dict(img_path='img', seg_map_path='ann'),
               img_suffix='.png', cache_dir=osp.join(root, 'cache'),
               pipeline=[dict(type='LoadAnnotations')])
    assert dataset_class_names(cfg) == ('bg', 'cat', 'dog', 'cow', 'owl')
    from mmseg.registry import DATASETS
    ds = DATASETS.build(dict(cfg, task='2-1', step=1, order=[4, 3, 2, 1], setting='disjoint'))
    # order: owl, cow learned at step 0, dog at step 1, cat at step 2 (a future class)
    assert ds.metainfo['classes'] == ('bg', 'owl', 'cow', 'dog')
    assert names(ds) == ['x4']  # has dog, no cat (disjoint drops x1)
    assert ds[0]['gt_seg_map'][0].tolist() == [3] * 5  # dog -> channel 3
    assert ds[0]['gt_seg_map'][1].tolist() == [0] * 5  # owl (old) -> background


def test_bad_dataset_configs_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"base_type='NoSuchDataset'.*registered"):
        build_incremental_dataset(base_type='NoSuchDataset', task='15-5', step=0)
    with pytest.raises(ValueError, match=r'names no classes.*metainfo=dict\(classes='):
        build_incremental_dataset(task='15-5', step=0, data_root=str(tmp_path))
    root = make_custom(str(tmp_path))
    with pytest.raises(ValueError, match=r"split '15-5'.*does not cover the 4 classes"):
        build_incremental_dataset(task='15-5', step=0, data_root=root,
                                  metainfo=dict(classes=('bg', 'a', 'b', 'c', 'd')))
    with pytest.raises(ValueError, match=r'x3\.png has label values \[4\].*4 label values'):
        build_incremental_dataset(task='2-1', step=0, data_root=root, img_suffix='.png',
                                  data_prefix=dict(img_path='img', seg_map_path='ann'),
                                  cache_dir=osp.join(root, 'cache'),
                                  metainfo=dict(classes=('bg', 'a', 'b', 'c')))


def test_toy_ade20k_layout_and_determinism(tmp_path):
    from mmincseg.datasets.toy_ade import make_toy_ade, toy_ade_styles
    styles = toy_ade_styles()
    assert len(styles) == 150 and len({(s[0], s[1], tuple(s[2])) for s in styles.values()}) == 150
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    make_toy_ade(a, seed=1, num_train=6, num_val=2, size=48)
    make_toy_ade(b, seed=1, num_train=6, num_val=2, size=48)
    files = sorted(os.listdir(osp.join(a, 'annotations', 'training')))
    assert files[0] == 'ADE_train_00000001.png' and len(files) == 6
    for name in files:
        with open(osp.join(a, 'annotations', 'training', name), 'rb') as f1, \
                open(osp.join(b, 'annotations', 'training', name), 'rb') as f2:
            assert f1.read() == f2.read()
    mask = np.asarray(Image.open(osp.join(a, 'annotations', 'training', files[0])))
    assert mask.max() <= 150 and 255 not in mask  # ADE's values: 0 ("other") and 1..150
    ds = build_ade(a, task='100-50', step=0, subset='val', test_mode=True)
    assert len(ds) == 2  # the real ADE20K loader reads the toy
