"""WILSON end to end: step 0 on true masks, step 1 from image-level labels, one training run each
through the real step hook (no pseudo-label files)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from PIL import Image

from mmincseg.apis import run_incremental
from loader_options import NO_WORKERS

CONFIG = 'configs/wilson/bisenet_r18_toyvoc_15-5_step0.py'


@pytest.mark.slow
def test_wilson_run_end_to_end(toy_voc, tmp_path, repo_root):
    work = str(tmp_path / 'run')
    # one epoch per step, no localizer-only warm-up, so the segmentor's WILSON loss runs too
    options = dict(NO_WORKERS, **{'train_cfg.max_epochs': 1,
                                  'model.weak_localizer.warmup_epochs': 0})
    summary = run_incremental(CONFIG, work, data_root=toy_voc, cfg_options=options)
    assert [s['step'] for s in summary['steps']] == [0, 1]
    assert summary['method'] == 'wilson' and summary['labels'] == 'image'
    step1 = osp.join(work, 'step1')
    assert not osp.exists(osp.join(step1, 'pseudo_labels')) and not osp.exists(
        osp.join(step1, 'seam'))
    dumped = Config.fromfile(osp.join(step1, osp.basename(CONFIG)))
    assert 'LoadAnnotations' not in str(dumped.train_dataloader.dataset.pipeline)
    assert dumped.model.weak_localizer.warmup_epochs == 0
    logs = [f for _, _, files in os.walk(step1) for f in files if f.endswith('.log')]
    text = ''.join(open(osp.join(root, f)).read() for root, _, files in os.walk(step1)
                   for f in files if f.endswith('.log'))
    assert logs and 'decode.loss_wilson_seg' in text and 'loss_loc_prior' in text
    assert 0 <= summary['steps'][1]['mIoU'] <= 100
    # the online pseudo-labels of step 1, measured on its training images after it trained
    with open(osp.join(step1, 'pseudo_label_metrics.json')) as f:
        metrics = json.load(f)
    assert metrics['source'] == 'wilson_localizer' and metrics['step'] == 1
    assert list(metrics['per_class']) == ['background', 'pottedplant', 'sheep', 'sofa', 'train',
                                          'tvmonitor']
    assert metrics['classes'] == [0, 16, 17, 18, 19, 20] and metrics['num_images'] > 0
    assert 0 <= metrics['mIoU'] <= 100 and 0 <= metrics['ignored_fraction'] <= 1
    assert summary['steps'][1]['pseudo_label_mIoU'] == metrics['mIoU']

    # WILSON's Figure 1 from the finished step, by the tool (plan from the run directory)
    out = str(tmp_path / 'figure')
    done = subprocess.run(
        [sys.executable, 'tools/visualize_localizer.py', CONFIG, '--work-dir', work, '--step', '1',
         '--out', out, '--num', '2', '--data-root', toy_voc, '--device', 'cpu'],
        cwd=repo_root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    files = sorted(os.listdir(out))
    assert len(files) == 2 and all(f.endswith('_localizer.png') for f in files)
    with Image.open(osp.join(out, files[0])) as img:
        assert img.width > 3 * img.height // 2  # image | target(s) | pseudo-label | true mask
    bad = subprocess.run(
        [sys.executable, 'tools/visualize_localizer.py', CONFIG, '--work-dir', work, '--step', '0',
         '--out', out, '--data-root', toy_voc], cwd=repo_root, capture_output=True, text=True)
    assert bad.returncode != 0 and 'no WILSON step' in bad.stderr
