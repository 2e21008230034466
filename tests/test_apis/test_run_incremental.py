"""Chaining steps: summary files, skipping finished steps, sharing step 0, per-step metrics."""
import glob
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config

from mmincseg.apis import run_incremental
from loader_options import NO_WORKERS

pytestmark = pytest.mark.slow
FAST = {'train_cfg.max_epochs': 1, **NO_WORKERS}


def test_run_writes_summary_skips_finished_and_shares_step0(toy_voc, tmp_path):
    ft_dir = str(tmp_path / 'ft')
    summary = run_incremental('configs/ft/bisenet_r18_toyvoc_15-5_step0.py', ft_dir,
                              data_root=toy_voc, cfg_options=dict(FAST))
    assert [s['step'] for s in summary['steps']] == [0, 1]
    with open(osp.join(ft_dir, 'results.json')) as f:
        saved = json.load(f)
    assert saved == summary
    assert set(saved) == {'task', 'method', 'setting', 'labels', 'steps'}
    last = saved['steps'][1]
    assert set(last) >= {'step', 'classes', 'mIoU', 'mIoU_old', 'mIoU_new', 'mIoU_base',
                         'mIoU_novel', 'per_class', 'train_seconds'}
    assert last['classes'] == ['pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor']
    assert len(last['per_class']) == 21
    assert osp.isfile(osp.join(ft_dir, 'miou_per_step.png'))
    assert '| 1 |' in open(osp.join(ft_dir, 'results.md')).read()
    # each step's visualizer writes into its own log dir (mmseg names every one 'visualizer',
    # and one process trains both steps): step 1 neither adds to step 0's vis_data nor
    # overwrites its config.py
    for t in (0, 1):
        (log_dir, ) = glob.glob(osp.join(ft_dir, f'step{t}', '2*', ''))
        vis = osp.join(log_dir, 'vis_data')
        assert sorted(f for f in os.listdir(vis) if f.endswith('.json')) == [
            f'{osp.basename(osp.dirname(log_dir))}.json', 'scalars.json'], t
        assert Config.fromfile(osp.join(vis, 'config.py')).incremental.step == t

    # the toy's held-out test split is evaluated after training and is what the summary reports
    with open(osp.join(ft_dir, 'step1', 'step_result.json')) as f:
        record = json.load(f)
    assert record['metrics']['mIoU'] == pytest.approx(last['val']['mIoU'], abs=0.006)
    assert record['test_metrics']['mIoU'] == pytest.approx(last['mIoU'], abs=0.006)
    assert last['split'] == 'test'
    from mmincseg.apis.train import test_step
    from mmincseg.utils.checkpoint import recorded_checkpoint
    again = test_step('configs/ft/bisenet_r18_toyvoc_15-5_step0.py',
                      recorded_checkpoint(osp.join(ft_dir, 'step1')),
                      work_dir=str(tmp_path / 'retest'), data_root=toy_voc,
                      cfg_options={'incremental.step': 1, **NO_WORKERS})
    assert again['mIoU'] == pytest.approx(record['test_metrics']['mIoU'])

    # a second run skips both finished steps (nothing retrained, files untouched)
    mtime = osp.getmtime(osp.join(ft_dir, 'step1', 'step_result.json'))
    run_incremental('configs/ft/bisenet_r18_toyvoc_15-5_step0.py', ft_dir, data_root=toy_voc,
                    cfg_options=dict(FAST))
    assert osp.getmtime(osp.join(ft_dir, 'step1', 'step_result.json')) == mtime

    # MiB reuses FT's step 0 and trains only step 1
    mib_dir = str(tmp_path / 'mib')
    mib = run_incremental('configs/mib/bisenet_r18_toyvoc_15-5_step0.py', mib_dir,
                          data_root=toy_voc, cfg_options=dict(FAST),
                          step0=osp.join(ft_dir, 'step0'))
    assert mib['steps'][0] == summary['steps'][0]
    assert not osp.exists(osp.join(mib_dir, 'step0', 'vis_data'))
    assert mib['steps'][1]['mIoU'] is not None


def test_bad_steps_argument(tmp_path):
    with pytest.raises(ValueError, match=r'--steps \[7\] are not steps'):
        run_incremental('configs/ft/bisenet_r18_toyvoc_15-5_step0.py', str(tmp_path), steps=[7])
