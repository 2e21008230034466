"""tools/train.py and tools/test.py through subprocesses, as a user runs them."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from loader_options import NO_WORKERS_CLI

pytestmark = pytest.mark.slow
CONFIG = 'configs/ft/bisenet_r18_toyvoc_15-5_step0.py'
FAST = ['train_cfg.max_epochs=1', *NO_WORKERS_CLI]


def run(repo_root, *args, check=True):
    proc = subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def test_train_then_test_gives_the_same_numbers(repo_root, toy_voc, tmp_path):
    work = str(tmp_path / 'run')
    run(repo_root, 'tools/train.py', CONFIG, '--work-dir', work, '--data-root', toy_voc,
        '--cfg-options', *FAST)
    with open(osp.join(work, 'step0', 'step_result.json')) as f:
        result = json.load(f)
    assert result['step'] == 0 and result['metrics']['mIoU'] is not None

    with open(osp.join(work, 'step0', 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    out = str(tmp_path / 'preds')
    metrics_file = str(tmp_path / 'metrics.json')
    run(repo_root, 'tools/test.py', CONFIG, ckpt, '--work-dir', work, '--data-root', toy_voc,
        '--out', out, '--json', metrics_file, '--cfg-options', *FAST)
    with open(metrics_file) as f:
        metrics = json.load(f)
    # tools/test.py evaluates the test split, which the step evaluated after training too
    for key in ('mIoU', 'mIoU_old', 'mIoU_new', 'aAcc', 'IoU.background'):
        assert metrics[key] == pytest.approx(result['test_metrics'][key], abs=1e-6), key

    # one PNG of class indices per test image, at the image's original size
    with open(osp.join(toy_voc, 'ImageSets/Segmentation/test.txt')) as f:
        names = f.read().split()
    assert sorted(os.listdir(out)) == sorted(n + '.png' for n in names)
    for name in names[:3]:
        pred = np.asarray(Image.open(osp.join(out, name + '.png')))
        img = Image.open(osp.join(toy_voc, 'JPEGImages', name + '.jpg'))
        assert pred.shape == (img.height, img.width) and pred.max() <= 15

    # a finished step is not overwritten without --force
    proc = run(repo_root, 'tools/train.py', CONFIG, '--work-dir', work, '--data-root', toy_voc,
               check=False)
    assert proc.returncode != 0 and 'holds a finished step' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_cli_errors_are_one_clear_line(repo_root, tmp_path):
    proc = run(repo_root, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path),
               '--cfg-options', 'incremental.task=15-4', check=False)
    assert proc.returncode != 0 and "split '15-4' (incremental.task) does not cover" in proc.stderr
    assert 'splits of 20 classes: 10-1' in proc.stderr  # names the ones that fit
    assert 'Traceback' not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run(repo_root, 'tools/test.py', CONFIG, str(tmp_path / 'none.pth'), check=False)
    assert proc.returncode != 0 and 'none.pth does not exist' in proc.stderr
