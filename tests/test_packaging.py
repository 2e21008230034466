"""OpenMMLab packaging: a plain (not editable) install ships configs/ and tools/ in
mmincseg/.mim, and `mim train mmincseg` / `mim test mmincseg` run a step from it."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
FAST = ['train_cfg.max_epochs=1', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0']


@pytest.fixture(scope='module')
def installed(repo_root, tmp_path_factory):
    """``pip install --target`` of a copy of the checkout (the checkout itself is not touched)."""
    base = tmp_path_factory.mktemp('pkg')
    src, target = str(base / 'src'), str(base / 'site')
    files = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                           cwd=repo_root, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if name.startswith(('docs/', 'tests/')) or not osp.isfile(osp.join(repo_root, name)):
            continue
        os.makedirs(osp.dirname(osp.join(src, name)) or src, exist_ok=True)
        shutil.copy2(osp.join(repo_root, name), osp.join(src, name))
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                    '--no-build-isolation', '--target', target, src], check=True,
                   capture_output=True, timeout=600)
    return target


def _mim(installed, cwd, *args):
    env = dict(os.environ, PYTHONPATH=installed, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-m', 'mim', *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_plain_install_ships_configs_and_tools(installed):
    mim = osp.join(installed, 'mmincseg', '.mim')
    for name in ('configs/mib/bisenet_r101_voc_15-5_step0.py', 'configs/_base_/default_runtime.py',
                 'configs/_base_/models/bisenet_r18.py', 'tools/train.py', 'tools/test.py'):
        assert osp.isfile(osp.join(mim, name)), name
    assert not osp.islink(osp.join(mim, 'configs'))  # copies, not links into a checkout


def test_mim_train_and_test_a_step(installed, toy_voc, tmp_path):
    config = osp.join(installed, 'mmincseg', '.mim', 'configs', 'mib',
                      'bisenet_r18_toyvoc_15-5_step0.py')
    work = str(tmp_path / 'run')
    _mim(installed, str(tmp_path), 'train', 'mmincseg', config, '--work-dir', work,
         '--data-root', toy_voc, '--cfg-options', *FAST)
    with open(osp.join(work, 'step0', 'step_result.json')) as f:
        trained = json.load(f)['test_metrics']['mIoU']  # mim test scores the test split
    with open(osp.join(work, 'step0', 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    proc = _mim(installed, str(tmp_path), 'test', 'mmincseg', config, '--checkpoint', checkpoint,
                '--work-dir', work, '--data-root', toy_voc, '--cfg-options', *FAST[1:])
    assert f'mIoU: {trained:.4f}' in proc.stdout + proc.stderr
