import logging
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmincseg.datasets import IncrementalVOCDataset, select_step_images
from mmincseg.datasets.incremental_voc import (read_mask_classes, train_label_map,
                                               val_label_map)

# Hand-made masks: name -> classes drawn in it (plus a void pixel).
MASKS = {
    'a': [1, 2],        # old classes only
    'b': [3, 16],       # old + new (15-5 step 1)
    'c': [17],          # new only
    'd': [],            # background only
    'e': [5, 20, 16],
}


def make_voc(root, masks=MASKS, labels_file=None):
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for name, classes in masks.items():
        mask = np.zeros((8, 12), np.uint8)
        for i, c in enumerate(classes):
            mask[i, :] = c
        mask[-1, -1] = 255
        Image.fromarray(mask).save(osp.join(root, 'SegmentationClass', name + '.png'))
        Image.fromarray(np.full((8, 12, 3), 100, np.uint8)).save(
            osp.join(root, 'JPEGImages', name + '.jpg'))
    for split in ('train', 'val'):
        with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'), 'w') as f:
            f.write('\n'.join(masks) + '\n')
    if labels_file:
        with open(osp.join(root, 'ImageSets/Segmentation/cls_labels.txt'), 'w') as f:
            f.write(labels_file)
    return root


def build(root, task='15-5', step=1, setting='overlap', subset='train', **kw):
    return IncrementalVOCDataset(
        task=task, step=step, setting=setting, subset=subset, data_root=root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt', cache_dir=osp.join(root, 'cache'),
        pipeline=[dict(type='LoadAnnotations')], **kw)


def names(ds):
    return [osp.basename(ds.get_data_info(i)['img_path'])[0] for i in range(len(ds))]


def test_selection_overlap_vs_disjoint():
    classes = [MASKS[k] for k in MASKS]
    assert select_step_images(classes, '15-5', 1, 'overlap') == [1, 2, 4]
    assert select_step_images(classes, '15-5', 0, 'overlap') == [0, 1, 4]
    # disjoint step 0 drops images with a future class (16..20)
    assert select_step_images(classes, '15-5', 0, 'disjoint') == [0]
    # 15-1 step 1 learns 16: disjoint drops 'e' (has 20, a future class)
    assert select_step_images(classes, '15-1', 1, 'overlap') == [1, 4]
    assert select_step_images(classes, '15-1', 1, 'disjoint') == [1]


def test_train_remaps_other_classes_to_background(tmp_path):
    ds = build(make_voc(str(tmp_path)))
    assert names(ds) == ['b', 'c', 'e']
    assert ds.metainfo['classes'][-1] == 'tvmonitor' and len(ds.metainfo['classes']) == 21
    sample = ds[0]  # 'b': rows of class 3 (old -> 0) and 16 (new, kept)
    seg = sample['gt_seg_map']
    assert set(np.unique(seg)) == {0, 16, 255}
    assert (seg[0] == 0).all() and (seg[1] == 16).all() and seg[-1, -1] == 255
    assert ds.get_data_info(2)['img_labels'] == [16, 20]


def test_val_keeps_seen_and_ignores_future(tmp_path):
    ds = build(make_voc(str(tmp_path)), step=0, subset='val')
    assert len(ds) == len(MASKS)  # all val images
    assert len(ds.metainfo['classes']) == 16
    seg = ds[4]['gt_seg_map']  # 'e': 5 kept, 20 and 16 not learned yet -> 255
    assert seg[0, 0] == 5 and seg[1, 0] == 255 and seg[2, 0] == 255


def test_label_maps():
    assert train_label_map('15-5', 1)[3] == 0 and train_label_map('15-5', 1)[17] == 17
    assert train_label_map('15-5', 0)[17] == 0
    assert val_label_map('15-1', 1)[16] == 16 and val_label_map('15-1', 1)[17] == 255


def test_image_labels_from_file_override_masks(tmp_path):
    root = make_voc(str(tmp_path), labels_file='c 17 18\n')
    ds = build(root)
    infos = {names(ds)[i]: ds.get_data_info(i)['img_labels'] for i in range(len(ds))}
    assert infos['c'] == [17, 18]  # from the labels file
    assert infos['b'] == [16]      # derived from the mask (restricted to the step's classes)


def test_mask_values_out_of_range_name_the_file(tmp_path):
    root = make_voc(str(tmp_path))
    bad = osp.join(root, 'SegmentationClass', 'c.png')
    Image.fromarray(np.full((8, 12), 42, np.uint8)).save(bad)
    with pytest.raises(ValueError, match=r'c\.png has label values \[42\]'):
        build(root)


def test_corrupt_mask_names_the_file(tmp_path):
    root = make_voc(str(tmp_path))
    with open(osp.join(root, 'SegmentationClass', 'b.png'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n truncated')
    with pytest.raises(ValueError, match=r'cannot read mask .*b\.png'):
        build(root)


def test_step_without_images_is_an_error(tmp_path):
    root = make_voc(str(tmp_path), masks={'a': [1], 'b': [2]})
    with pytest.raises(ValueError, match=r'selects no images.*pottedplant'):
        build(root)


def test_missing_split_file(tmp_path):
    os.makedirs(tmp_path / 'JPEGImages')
    with pytest.raises(FileNotFoundError, match='--data-root'):
        build(str(tmp_path))


def test_index_cache_reused_and_refreshed(tmp_path):
    root = make_voc(str(tmp_path))
    build(root)
    cache_files = os.listdir(osp.join(root, 'cache'))
    assert len(cache_files) == 1
    # change a mask: the cache must notice (size/mtime) and the new classes count
    mask = np.zeros((9, 12), np.uint8)
    mask[0] = 18
    path = osp.join(root, 'SegmentationClass', 'a.png')
    Image.fromarray(mask).save(path)
    os.utime(path, ns=(1, 1))
    assert 'a' in names(build(root))
    assert read_mask_classes(path) == [18]


def test_toy_dataset_with_real_config(toy_voc):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmincseg.apis import load_step_config
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = load_step_config('configs/mib/bisenet_r18_toyvoc_15-5_step1.py', work_dir='/tmp/unused',
                           data_root=toy_voc)
    assert isinstance(cfg, Config)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert 0 < len(train) < 48 and len(val) == 16
    sample = train[0]
    labels = set(sample['data_samples'].gt_sem_seg.data.unique().tolist())
    assert labels <= {0, 16, 17, 18, 19, 20, 255}


class _ListHandler(logging.Handler):
    """Collects the messages of a logger (MMLogger does not propagate to pytest's caplog)."""

    def __init__(self, messages):
        super().__init__()
        self.messages = messages

    def emit(self, record):
        self.messages.append(record.getMessage())


VOC_STEP1 = 'configs/mib/bisenet_r101_voc_15-5_step1.py'


def test_plain_voc2012_without_sbd_trains_on_train_txt(tmp_path):
    """No SegmentationClassAug/ and no train_aug.txt: the real VOC config trains on train.txt."""
    from mmengine.logging import MMLogger
    from mmseg.registry import DATASETS

    from mmincseg.apis import load_step_config
    root = make_voc(str(tmp_path))  # plain VOC layout: SegmentationClass/, train.txt, val.txt
    cfg = load_step_config(VOC_STEP1, work_dir=str(tmp_path / 'w'), data_root=root)
    cfg.train_dataloader.dataset.cache_dir = osp.join(root, 'cache')
    logger = MMLogger.get_current_instance()
    messages = []
    handler = _ListHandler(messages)
    logger.addHandler(handler)
    try:
        ds = DATASETS.build(cfg.train_dataloader.dataset)
    finally:
        logger.removeHandler(handler)
    assert names(ds) == ['b', 'c', 'e']  # the 15-5 step-1 images of train.txt
    assert ds.get_data_info(0)['seg_map_path'].endswith(osp.join('SegmentationClass', 'b.png'))
    warning = [m for m in messages if 'train_aug.txt does not exist' in m]
    assert len(warning) == 1 and '5 images' in warning[0] and 'voc_aug.py' in warning[0]


def test_missing_sbd_and_train_txt_names_the_sbd_list(tmp_path):
    from mmseg.registry import DATASETS

    from mmincseg.apis import load_step_config
    root = make_voc(str(tmp_path))
    os.remove(osp.join(root, 'ImageSets/Segmentation/train.txt'))
    cfg = load_step_config(VOC_STEP1, work_dir=str(tmp_path / 'w'), data_root=root)
    with pytest.raises(FileNotFoundError, match=r'train_aug\.txt does not exist'):
        DATASETS.build(cfg.train_dataloader.dataset)


@pytest.mark.parametrize('full_image', [False, True])
def test_voc_evaluates_resize_512_center_crop_512(tmp_path, full_image):
    """The community's protocol by default; full images with the documented dataset base."""
    from mmengine.config import Config
    from mmseg.registry import DATASETS

    from mmincseg.apis import resolve_incremental_config
    from mmincseg.apis.config import set_data_root
    root = make_voc(str(tmp_path))  # 8 x 12 images
    cfg = Config.fromfile(VOC_STEP1)
    if full_image:
        full = Config.fromfile('configs/_base_/datasets/voc_incremental_full_image.py')
        cfg.val_dataloader = full.val_dataloader
    cfg.work_dir = str(tmp_path / 'w')
    resolve_incremental_config(set_data_root(cfg, root))
    cfg.val_dataloader.dataset.cache_dir = osp.join(root, 'cache')
    sample = DATASETS.build(cfg.val_dataloader.dataset)[1]  # 'b': rows 0 = 3, 1 = 16 (unseen)
    gt = sample['data_samples'].gt_sem_seg.data[0]
    meta = sample['data_samples'].metainfo
    if full_image:
        assert tuple(gt.shape) == (8, 12) and meta['ori_shape'] == (8, 12)
        assert sample['inputs'].shape[1:] == (512, 768)
    else:  # short side 512 -> 512 x 768, centre crop 512: predictions are scored on the crop
        assert tuple(gt.shape) == (512, 512) and meta['ori_shape'] == (512, 512)
        assert sample['inputs'].shape[1:] == (512, 512)
        # 8 rows -> 64 px each: row 0 is class 3, row 1 class 16 (seen at step 1)
        assert (gt[:64] == 3).all() and (gt[64:128] == 16).all()
