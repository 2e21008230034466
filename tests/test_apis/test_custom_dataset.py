"""A user's dataset given by config alone (configs/examples/bisenet_r18_custom_2-1_step0.py:
its own classes, split and class order), run end to end on tiny generated data."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from loader_options import NO_WORKERS

pytestmark = pytest.mark.slow
CONFIG = 'configs/examples/bisenet_r18_custom_2-1_step0.py'


def make_custom_dataset(root: str, num_train: int = 24, num_val: int = 6) -> str:
    """img/{train,val}/*.jpg + ann/{train,val}/*.png with label values 0..4 (the toy VOC's
    renderer drawing its classes 1..4)."""
    from mmincseg.datasets.toy_voc import render_toy_sample
    for split, count in (('train', num_train), ('val', num_val)):
        for sub in ('img', 'ann'):
            os.makedirs(osp.join(root, sub, split), exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([7, i, split == 'val'])
            classes = [1 + i % 4] + [int(c) for c in rng.integers(1, 5, int(rng.integers(0, 2)))]
            image, label, _ = render_toy_sample(rng, 64, classes)
            Image.fromarray(image).save(osp.join(root, 'img', split, f'{split}{i:03d}.jpg'))
            Image.fromarray(label).save(osp.join(root, 'ann', split, f'{split}{i:03d}.png'))
    return root


def test_config_only_dataset_with_its_split_and_order_end_to_end(tmp_path):
    from mmincseg.apis import run_incremental
    from mmincseg.apis.train import test_step
    from mmincseg.utils.checkpoint import recorded_checkpoint
    data = make_custom_dataset(str(tmp_path / 'mydata'))
    run = str(tmp_path / 'run')
    # batch 4 of 24 / fewer step images: a one-image remainder joins the batch before
    fast = {'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 4, **NO_WORKERS}
    summary = run_incremental(CONFIG, run, data_root=data, cfg_options=fast)
    # '2-1' of 4 classes in the order triangle, circle | star | square
    assert [s['classes'] for s in summary['steps']] == [
        ['background', 'triangle', 'circle'], ['star'], ['square']]
    assert summary['order'] == [3, 1, 4, 2] and summary['num_classes'] == 5
    assert set(summary['steps'][-1]['per_class']) == {'background', 'circle', 'square',
                                                      'triangle', 'star'}
    assert osp.isfile(osp.join(run, 'per_class_iou.png'))
    with open(osp.join(run, 'step2', 'step_result.json')) as f:
        assert json.load(f)['order'] == [3, 1, 4, 2]
    # predictions come back in the dataset's label values, whatever the channel order
    out = str(tmp_path / 'out')
    metrics = test_step(CONFIG, recorded_checkpoint(osp.join(run, 'step2')),
                        work_dir=str(tmp_path / 'test'), data_root=data, out=out,
                        cfg_options={'incremental.step': 2, **NO_WORKERS})
    assert metrics['mIoU'] == pytest.approx(summary['steps'][-1]['mIoU'], abs=0.006)
    values = set()
    for name in os.listdir(out):
        values |= set(np.unique(np.asarray(Image.open(osp.join(out, name)))).tolist())
    assert values <= {0, 1, 2, 3, 4}
