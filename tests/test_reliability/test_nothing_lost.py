"""Nothing is lost: finished steps, results and pseudo-labels are never overwritten unless told
(--force moves a step aside), files appear whole or not at all, and a killed run leaves no
half files behind.

Elsewhere: tools/train.py refusing a finished step (tests/test_tools/test_train_test_cli.py),
run_incremental skipping finished steps untouched (tests/test_apis/test_run_incremental.py),
pseudo-labels kept unless --force and an exception mid-write leaving no file
(tests/test_apis/test_seam_pipeline.py), an interrupted step refused without --resume
(test_resume.py here).
"""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from PIL import Image
from reliability_utils import env, run_cli, run_until

from mmincseg.apis.run import link_step0
from mmincseg.apis.train import protect_step_dir, resume_checkpoint
from mmincseg.engine.hooks.step_result_hook import RESULT_FILE
from mmincseg.utils.io import atomic_write


def make_step(path, finished=True, checkpoint=True):
    os.makedirs(path)
    if checkpoint:
        torch.save({'state_dict': {'w': torch.ones(2)}, 'meta': {'iter': 3}},
                   osp.join(path, 'iter_3.pth'))
        with open(osp.join(path, 'last_checkpoint'), 'w') as f:
            f.write(osp.join(path, 'iter_3.pth'))
    if finished:
        with open(osp.join(path, RESULT_FILE), 'w') as f:
            json.dump({'step': 1, 'metrics': {'mIoU': 50.0}}, f)
    return path


def test_finished_and_interrupted_steps_are_refused(tmp_path):
    finished = make_step(str(tmp_path / 'step1'))
    with pytest.raises(FileExistsError, match='holds a finished step.*--force'):
        protect_step_dir(finished, resume=False, force=False)
    with pytest.raises(FileExistsError, match='already finished.*nothing to resume'):
        protect_step_dir(finished, resume=True, force=False)
    interrupted = make_step(str(tmp_path / 'step2'), finished=False)
    with pytest.raises(FileExistsError, match=r'interrupted \(has checkpoints\).*--resume'):
        protect_step_dir(interrupted, resume=False, force=False)
    protect_step_dir(interrupted, resume=True, force=False)
    # crashed before its first checkpoint: only logs, nothing to lose
    logs_only = make_step(str(tmp_path / 'step3'), finished=False, checkpoint=False)
    protect_step_dir(logs_only, resume=False, force=False)
    assert sorted(os.listdir(tmp_path)) == ['step1', 'step2', 'step3']


def test_force_moves_the_old_step_aside_every_time(tmp_path):
    step = str(tmp_path / 'step1')
    backups = []
    for attempt in range(3):  # within one second: distinct backups, none replaced
        make_step(step)
        with open(osp.join(step, 'note'), 'w') as f:
            f.write(str(attempt))
        protect_step_dir(step, resume=False, force=True)
        assert not osp.exists(step)
        backups = sorted(p for p in os.listdir(tmp_path) if p.startswith('step1.old-'))
        assert len(backups) == attempt + 1
    notes = sorted(open(osp.join(tmp_path, b, 'note')).read() for b in backups)
    assert notes == ['0', '1', '2']
    for backup in backups:
        assert osp.isfile(osp.join(tmp_path, backup, RESULT_FILE))
        assert osp.isfile(osp.join(tmp_path, backup, 'iter_3.pth'))


def test_resume_survives_a_broken_checkpoint_record(tmp_path):
    step = make_step(str(tmp_path / 'step1'), finished=False)
    good = osp.join(step, 'iter_3.pth')
    assert resume_checkpoint(step) == good
    # killed while MMEngine rewrote last_checkpoint, after a checkpoint cut short by the kill
    cut = osp.join(step, 'iter_6.pth')
    torch.save({'state_dict': {'w': torch.ones(1000)}}, cut)
    with open(cut, 'r+b') as f:
        f.truncate(os.path.getsize(cut) // 2)
    os.utime(good, (1, 1))  # older than the cut file
    open(osp.join(step, 'last_checkpoint'), 'w').close()
    assert resume_checkpoint(step) == good
    # a record written from another working directory (relative path) still resolves
    with open(osp.join(step, 'last_checkpoint'), 'w') as f:
        f.write('elsewhere/step1/iter_3.pth')
    assert resume_checkpoint(step) == good
    assert resume_checkpoint(str(tmp_path / 'missing')) is None


def test_atomic_write_killed_mid_write_leaves_no_file(repo_root, tmp_path):
    target = str(tmp_path / 'result.json')
    started = str(tmp_path / 'started')
    code = textwrap.dedent(f'''
        import time
        from mmincseg.utils.io import atomic_write
        with atomic_write({target!r}) as f:
            f.write('{{"half": ')
            f.flush()
            open({started!r}, 'w').close()
            time.sleep(60)
            f.write('1}}')
    ''')
    with subprocess.Popen([sys.executable, '-c', code], cwd=repo_root, env=env()) as proc:
        deadline = time.time() + 60
        while not osp.exists(started) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        proc.kill()
    assert osp.exists(started), 'the writer did not start'
    assert not osp.exists(target)  # only a hidden temp file of the killed writer remains
    leftover = set(os.listdir(tmp_path))
    assert all(p.startswith('.result.json.') for p in leftover - {'started'})
    # an exception instead of a kill: no file and no new temp file
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write('{"half": ')
            raise RuntimeError('disk full')
    assert set(os.listdir(tmp_path)) == leftover and not osp.exists(target)


def test_reused_step0_is_recorded_checkpoint_first(tmp_path):
    source = make_step(str(tmp_path / 'ft' / 'step0'))
    with open(osp.join(source, RESULT_FILE), 'w') as f:
        json.dump({'step': 0, 'classes': [1, 2]}, f)
    target = str(tmp_path / 'mib' / 'step0')
    link_step0(source, target, [1, 2])
    with open(osp.join(target, RESULT_FILE)) as f:
        assert json.load(f)['classes'] == [1, 2]
    assert resume_checkpoint(target) == osp.join(source, 'iter_3.pth')
    with pytest.raises(ValueError, match='learned classes'):
        link_step0(source, str(tmp_path / 'other' / 'step0'), [1, 3])
    assert not osp.exists(osp.join(tmp_path, 'other', 'step0', RESULT_FILE))
    link_step0(source, target, [1, 2])  # a re-run with the same step 0 keeps it
    # another step 0 for a run whose step 0 is finished: refused, the run left as it was
    other = make_step(str(tmp_path / 'lwf_mc' / 'step0'))
    with open(osp.join(other, RESULT_FILE), 'w') as f:
        json.dump({'step': 0, 'classes': [1, 2]}, f)
    with pytest.raises(ValueError, match=r'already a finished step 0 with another checkpoint.*'
                                         r'new --work-dir'):
        link_step0(other, target, [1, 2])
    assert resume_checkpoint(target) == osp.join(source, 'iter_3.pth')


@pytest.mark.slow
def test_killed_pseudo_label_generation_leaves_whole_files(repo_root, toy_voc, tmp_path):
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    from mmincseg.apis.seam import load_seam_config
    config = 'configs/seam/seam_r18_toyvoc_15-5.py'
    tiny = ['model.backbone.base_channels=16', 'model.backbone.stem_channels=16']
    cfg = load_seam_config(config, toy_voc, {k: int(v) for k, v in
                                             (o.split('=') for o in tiny)})
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        state = MODELS.build(cfg.model).state_dict()
    checkpoint = str(tmp_path / 'seam.pth')
    torch.save({'state_dict': state, 'meta': {}}, checkpoint)
    out = str(tmp_path / 'pseudo_labels')
    args = ['tools/make_pseudo_labels.py', config, checkpoint, '--out', out, '--data-root',
            toy_voc, '--device', 'cpu', '--cfg-options', *tiny]

    def pngs():
        return sorted(p for p in os.listdir(out) if p.endswith('.png')) if osp.isdir(out) else []

    assert run_until(repo_root, args, lambda: len(pngs()) >= 3)
    kept = pngs()
    assert kept, 'killed before any pseudo-label was written'
    stamps = {}
    for name in kept:  # every file present is whole: it decodes, at its image's size
        path = osp.join(out, name)
        with Image.open(path) as label:
            label.load()
            size = label.size
        with Image.open(osp.join(toy_voc, 'JPEGImages', name[:-4] + '.jpg')) as img:
            assert size == img.size, name
        stamps[name] = os.stat(path).st_mtime_ns

    # the rerun keeps every finished file and writes the rest
    proc = run_cli(repo_root, *args)
    result = json.loads(proc.stdout[proc.stdout.index('{'):])
    assert result['skipped'] == len(kept) and result['written'] == result['num_images'] - len(kept)
    assert result['written'] > 0, 'the kill came after the last file: nothing was interrupted'
    assert len(pngs()) == result['num_images']
    assert all(os.stat(osp.join(out, n)).st_mtime_ns == stamps[n] for n in kept)
    assert all(np.asarray(Image.open(osp.join(out, n))).ndim == 2 for n in pngs())


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    """mkstemp's temp file is owner-only; the written file must not stay so (a shared toy
    dataset or results folder is read by other users)."""
    plain, atomic = str(tmp_path / 'plain.txt'), str(tmp_path / 'atomic.txt')
    old = os.umask(0o022)
    try:
        with open(plain, 'w') as f:
            f.write('x')
        with atomic_write(atomic) as f:
            f.write('x')
    finally:
        os.umask(old)
    assert os.stat(atomic).st_mode & 0o777 == os.stat(plain).st_mode & 0o777 == 0o644
