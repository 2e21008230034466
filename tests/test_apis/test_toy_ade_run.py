"""Toy ADE20K through the real entry point: MiB 100-50 in a random class order, both steps."""
import json
import os.path as osp

import pytest

from loader_options import NO_WORKERS

pytestmark = pytest.mark.slow
CONFIG = 'configs/mib/bisenet_r18_toyade_100-50_step0.py'


def test_toy_ade_100_50_random_order_end_to_end(tmp_path):
    from mmincseg.apis import run_incremental
    from mmincseg.datasets.toy_ade import make_toy_ade
    data = str(tmp_path / 'toyade')
    make_toy_ade(data, seed=0, num_train=45, num_val=6, size=64)
    run = str(tmp_path / 'run')
    options = {'train_cfg.max_epochs': 1, 'train_dataloader.batch_size': 4,
               'incremental.order': 'random:0', **NO_WORKERS}
    summary = run_incremental(CONFIG, run, data_root=data, cfg_options=options)
    assert [s['step'] for s in summary['steps']] == [0, 1]
    assert summary['num_classes'] == 151 and len(summary['order']) == 150
    assert sorted(summary['order']) == list(range(1, 151)) and summary['order'] != sorted(
        summary['order'])
    first, second = (s['classes'] for s in summary['steps'])
    assert len(first) == 101 and first[0] == 'background' and len(second) == 50
    assert not set(first) & set(second)
    assert osp.isfile(osp.join(run, 'per_class_iou.png'))
    with open(osp.join(run, 'step1', 'step_result.json')) as f:
        assert json.load(f)['order'] == 'random:0'  # the block's value; results.json resolves it
    with open(osp.join(run, 'results.json')) as f:
        assert json.load(f)['order'] == summary['order']
