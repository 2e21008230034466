"""Bad input fails loudly, naming the culprit and the fix, without traceback soup.

Already covered elsewhere (not repeated here): unknown split and step out of range
(tests/test_tasks.py, tests/test_apis/test_config.py, tests/test_tools/test_train_test_cli.py),
a config without `incremental` (test_config.py), missing / other-split previous-step checkpoint
(tests/test_engine/test_incremental_step_hook.py), mask values outside {0..20, 255}, corrupt
masks and a step that selects no images (tests/test_datasets/test_incremental_voc.py),
pseudo-labels of the wrong size or classes (tests/test_datasets/test_transforms/
test_load_pseudo_label.py), SEAM checkpoints of other classes (tests/test_apis/
test_seam_pipeline.py).
"""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmseg.registry import DATASETS
from PIL import Image
from reliability_utils import FAST, STEP_CONFIG, run_cli

from mmincseg.apis import load_step_config
from mmincseg.apis import test_step as evaluate_step
from mmincseg.datasets.transforms import CheckSegSample


@pytest.fixture
def bad_voc(toy_voc, tmp_path):
    """A private copy of the toy VOC to damage."""
    root = str(tmp_path / 'voc')
    shutil.copytree(toy_voc, root)
    return root


def dataset(root, subset='train', step=0):
    cfg = load_step_config(STEP_CONFIG.format(step), work_dir='w', data_root=root)
    loader = cfg.train_dataloader if subset == 'train' else cfg.val_dataloader
    return DATASETS.build(loader.dataset)


def first_sample(root, subset='train'):
    ds = dataset(root, subset)
    info = ds.get_data_info(0)
    return osp.splitext(osp.basename(info['img_path']))[0], info


def test_corrupt_and_truncated_images_name_the_file(bad_voc):
    name, info = first_sample(bad_voc)
    with open(info['img_path'], 'rb') as f:
        data = f.read()
    for damaged in (data[:len(data) // 2], b'not an image at all'):
        with open(info['img_path'], 'wb') as f:
            f.write(damaged)
        ds = dataset(bad_voc)
        with pytest.raises(ValueError, match=rf"cannot load sample '{name}'.*{name}\.jpg.*"
                                             'failed to load image.*re-extract it') as e:
            ds[0]
        assert 'split list' in str(e.value)


def test_missing_image_fails_when_the_dataset_is_built(bad_voc):
    name, info = first_sample(bad_voc, 'val')
    os.remove(info['img_path'])
    with pytest.raises(FileNotFoundError, match=rf"1 image\(s\) listed in .*val\.txt do not "
                                                rf"exist.*{name}\.jpg.*--data-root"):
        dataset(bad_voc, 'val')


@pytest.mark.parametrize('subset', ['train', 'val'])
def test_image_and_mask_of_different_sizes(bad_voc, subset):
    # train: mask checked right after loading; val: the image is resized before the mask loads
    name, info = first_sample(bad_voc, subset)
    with Image.open(info['img_path']) as img:
        width, height = img.size
        img.convert('RGB').resize((width + 7, height)).save(info['img_path'])
    ds = dataset(bad_voc, subset)
    with pytest.raises(ValueError, match=rf'mask .*{name}\.png has size \({height}, {width}\) '
                                         rf'\(h, w\) but its image .*{name}\.jpg has size '
                                         rf'\({height}, {width + 7}\)'):
        ds[0]


def test_check_seg_sample_transform():
    check = CheckSegSample()
    ok = dict(img_path='a.jpg', seg_map_path='a.png', ori_shape=(4, 5),
              gt_seg_map=np.zeros((4, 5), np.uint8))
    assert check(dict(ok)) is not None
    assert check(dict(img_path='a.jpg', ori_shape=(4, 5))) is not None  # no mask loaded: skip
    with pytest.raises(ValueError, match=r'a\.png of image a\.jpg has shape \(4, 5, 3\)'):
        check(dict(ok, gt_seg_map=np.zeros((4, 5, 3), np.uint8)))
    with pytest.raises(ValueError, match=r'a\.png has size \(4, 5\).*a\.jpg has size \(4, 6\)'):
        check(dict(ok, ori_shape=(4, 6)))
    with pytest.raises(KeyError, match='after LoadImageFromFile'):
        check(dict(gt_seg_map=np.zeros((4, 5), np.uint8)))


def test_checkpoint_of_another_step_is_refused_by_test(toy_voc, tmp_path):
    # the classifier of a step-0 checkpoint (16 classes) given to the step-1 config
    checkpoint = str(tmp_path / 'step0.pth')
    torch.save({'state_dict': {'decode_head.conv_seg.classifiers.0.weight':
                               torch.zeros(16, 4, 1, 1)}}, checkpoint)
    with pytest.raises(ValueError, match=r'does not fit this step.*\[16\].*expects \[16, 5\]'):
        evaluate_step(STEP_CONFIG.format(1), checkpoint, work_dir='w', data_root=toy_voc)


@pytest.mark.slow
def test_cli_truncated_image_inside_a_worker_is_one_line(repo_root, bad_voc, tmp_path):
    """Through tools/train.py with the config's 2 data-loader workers."""
    name, info = first_sample(bad_voc)
    with open(info['img_path'], 'r+b') as f:
        f.truncate(os.path.getsize(info['img_path']) // 3)
    proc = run_cli(repo_root, 'tools/train.py', STEP_CONFIG.format(0), '--work-dir',
                   str(tmp_path / 'run'), '--data-root', bad_voc, '--cfg-options',
                   'train_cfg.max_epochs=1', check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot load sample '{name}'"), proc.stderr[-3000:]
    assert 'failed to load image' in last and 'DataLoader worker' not in last
    assert 'Traceback' not in proc.stderr


@pytest.mark.slow
def test_cli_previous_checkpoint_of_another_split(repo_root, step0_dir, toy_voc, tmp_path):
    # a 15-5 step 0 (16 classes) is fine as the teacher of 15-1 step 1 but not of 15-1 step 2
    proc = run_cli(repo_root, 'tools/train.py', 'configs/mib/bisenet_r18_toyvoc_15-1_step0.py',
                   '--work-dir', str(tmp_path / 'run'), '--data-root', toy_voc, '--cfg-options',
                   *FAST, 'incremental.step=2', f'incremental.prev_checkpoint={step0_dir}',
                   check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert 'does not fit the step-1 model' in last or 'does not match the previous step' in last
    assert 'prev_checkpoint' in last, last


@pytest.mark.parametrize('content', [b'<html>404 Not Found</html>', b'truncated'])
def test_previous_checkpoint_that_is_not_a_checkpoint_names_the_file(tmp_path, content):
    """A truncated download or the wrong file: the error names it and the fix, not pickle's
    'invalid load key'."""
    from mmincseg.engine.hooks.incremental_step_hook import read_checkpoint
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': {'w': torch.zeros(3)}}, good)
    bad = str(tmp_path / 'epoch_30.pth')
    with open(good, 'rb') as f:
        data = f.read()
    with open(bad, 'wb') as f:
        f.write(content if content != b'truncated' else data[:len(data) // 2])
    with pytest.raises(ValueError, match=r'epoch_30\.pth is not a readable checkpoint.*'
                                         r'incremental\.prev_checkpoint'):
        read_checkpoint(bad)
    assert set(read_checkpoint(good)['state_dict']) == {'w'}


@pytest.mark.slow
def test_cli_previous_checkpoint_not_a_checkpoint(repo_root, toy_voc, tmp_path):
    bad = tmp_path / 'step0.pth'
    bad.write_bytes(b'<html>404 Not Found</html>')
    proc = run_cli(repo_root, 'tools/train.py', STEP_CONFIG.format(1), '--work-dir',
                   str(tmp_path / 'run'), '--data-root', toy_voc, '--cfg-options', *FAST,
                   f'incremental.prev_checkpoint={bad}', check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert f'{bad} is not a readable checkpoint' in last and 'prev_checkpoint' in last, last
