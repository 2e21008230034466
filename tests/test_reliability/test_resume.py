"""Exact resume: a step SIGKILLed mid-epoch and continued with --resume ends with the weights of
an uninterrupted run; tools/run_incremental.py killed between or inside steps picks up where it
stopped.

MMEngine's EpochBasedTrainLoop restarts an interrupted epoch from its first batch and does not
restore random state, so the runs use iteration checkpoints inside epochs (every 3 iterations,
4 iterations per epoch) and the kill lands inside epoch 2: only the loop the resolver installs
(``ResumableEpochBasedTrainLoop``) makes the resumed run equal to the uninterrupted one. The
killed run loads its data with 2 persistent workers (the shipped setting), the uninterrupted one
in the main process: ``SeededSampler`` seeds every sample from (seed, epoch, index), so neither
the workers' history nor their number changes the weights.
"""
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.runner import CheckpointLoader

from reliability_utils import NO_WORKERS, STEP_CONFIG, last_checkpoint, run_cli, run_until

pytestmark = pytest.mark.slow
EXACT = ['train_cfg.max_epochs=3', 'train_dataloader.batch_size=4', *NO_WORKERS,
         'randomness.seed=0', 'randomness.deterministic=True',
         'default_hooks.checkpoint.by_epoch=False', 'default_hooks.checkpoint.interval=3',
         'default_hooks.logger.interval=1']
# the shipped configs' setting: persistent workers (2 here), which carry their random streams
# across epochs; the killed run uses them, the uninterrupted one loads in the main process
PERSISTENT = ['train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=True']


def final_state(step_dir):
    ckpt = CheckpointLoader.load_checkpoint(last_checkpoint(step_dir), map_location='cpu')
    return ckpt['state_dict'], ckpt['meta']


def train_args(work, toy_voc, step0_dir, *extra, workers=()):
    return ['tools/train.py', STEP_CONFIG.format(1), '--work-dir', work, '--data-root', toy_voc,
            *extra, '--cfg-options', *EXACT, *workers, f'incremental.prev_checkpoint={step0_dir}']


def test_killed_step_resumes_to_the_same_weights(repo_root, toy_voc, step0_dir, tmp_path):
    straight = str(tmp_path / 'straight')
    run_cli(repo_root, *train_args(straight, toy_voc, step0_dir))
    expected, expected_meta = final_state(osp.join(straight, 'step1'))
    assert expected_meta['iter'] == 12  # 3 epochs x 4 iterations: the kill point below is inside

    killed = str(tmp_path / 'killed')
    step_dir = osp.join(killed, 'step1')
    was_killed = run_until(repo_root, train_args(killed, toy_voc, step0_dir, workers=PERSISTENT),
                           lambda: last_checkpoint(step_dir).endswith('iter_6.pth'))
    assert was_killed and not osp.exists(osp.join(step_dir, 'step_result.json'))

    # without --resume the interrupted step is refused, not overwritten
    proc = run_cli(repo_root, *train_args(killed, toy_voc, step0_dir), check=False)
    assert proc.returncode != 0 and 'interrupted' in proc.stderr and '--resume' in proc.stderr
    assert 'Traceback' not in proc.stderr

    proc = run_cli(repo_root, *train_args(killed, toy_voc, step0_dir, '--resume',
                                          workers=PERSISTENT))
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 6' in log, log[-3000:]
    assert 'resumed inside epoch 2: skipping its first 2 of 4 batches' in log
    assert 'student resumed' in log  # teacher rebuilt, trained new rows not re-initialised
    state, meta = final_state(step_dir)
    assert meta['iter'] == 12 and meta['epoch'] == expected_meta['epoch']
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-6, msg=key)
    with open(osp.join(straight, 'step1', 'step_result.json')) as f:
        straight_metrics = json.load(f)['metrics']
    with open(osp.join(step_dir, 'step_result.json')) as f:
        assert json.load(f)['metrics'] == straight_metrics


def test_run_incremental_killed_between_and_inside_steps(repo_root, toy_voc, tmp_path):
    work = str(tmp_path / 'run')
    step0, step1 = osp.join(work, 'step0'), osp.join(work, 'step1')
    args = ['tools/run_incremental.py', STEP_CONFIG.format(0), '--work-dir', work, '--data-root',
            toy_voc, '--cfg-options', 'train_cfg.max_epochs=2', 'train_dataloader.batch_size=8',
            *NO_WORKERS, 'default_hooks.checkpoint.by_epoch=False',
            'default_hooks.checkpoint.interval=1']
    # killed between the steps: step 0 finished, step 1 has no checkpoint yet
    assert run_until(repo_root, args,
                     lambda: osp.isfile(osp.join(step0, 'step_result.json')))
    assert last_checkpoint(step1) == ''
    finished_at = os.stat(osp.join(step0, 'step_result.json')).st_mtime_ns
    step0_ckpt = last_checkpoint(step0)

    # killed inside step 1, after its first checkpoint
    assert run_until(repo_root, args + ['--resume'], lambda: last_checkpoint(step1) != '')
    assert not osp.exists(osp.join(step1, 'step_result.json'))

    # without --resume: a clear refusal, nothing touched
    proc = run_cli(repo_root, *args, check=False)
    assert proc.returncode != 0 and 'interrupted' in proc.stderr and 'Traceback' not in proc.stderr

    proc = run_cli(repo_root, *args, '--resume')
    log = proc.stdout + proc.stderr
    assert 'step 0: finished earlier' in log and 'resumed epoch: ' in log
    assert os.stat(osp.join(step0, 'step_result.json')).st_mtime_ns == finished_at
    assert last_checkpoint(step0) == step0_ckpt
    with open(osp.join(work, 'results.json')) as f:
        summary = json.load(f)
    assert [s['step'] for s in summary['steps']] == [0, 1]
    with open(osp.join(step1, 'step_result.json')) as f:
        assert json.load(f)['epochs'] == 2
