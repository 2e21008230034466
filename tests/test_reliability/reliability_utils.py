"""Helpers of the reliability tests: CLI runs, killing a run, options."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

from loader_options import NO_WORKERS_CLI

STEP_CONFIG = 'configs/mib/bisenet_r18_toyvoc_15-5_step{}.py'
NO_WORKERS = NO_WORKERS_CLI  # the --cfg-options form (tests/loader_options.py)
# 1 epoch, batch 4, no workers: about 4 iterations per epoch for 15-5 step 1 on the toy VOC.
FAST = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=4', *NO_WORKERS]


def as_dict(options):
    """``['a.b=1', ...]`` (CLI form) -> ``{'a.b': 1}`` (the form the API takes)."""
    from mmengine.config import DictAction
    out = {}
    for item in options:
        key, value = item.split('=', 1)
        out[key] = DictAction._parse_iterable(value)
    return out


def env():
    """The environment of CLI runs: one thread each, the session's index cache (inherited)."""
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def run_cli(repo_root, *args, check=True, timeout=600):
    """Run ``python *args`` in the repository; return the finished process."""
    proc = subprocess.run([sys.executable, *args], cwd=repo_root, capture_output=True, text=True,
                          timeout=timeout, env=env())
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-3000:]}')
    return proc


def run_until(repo_root, args, condition, timeout=600, log=None):
    """Start ``python *args``; SIGKILL it as soon as ``condition()`` holds.

    Returns:
        bool: True when the process was killed, False when it ended by itself first.
    """
    with open(log or os.devnull, 'w') as out:
        proc = subprocess.Popen([sys.executable, *args], cwd=repo_root, stdout=out,
                                stderr=subprocess.STDOUT, env=env())
        deadline = time.time() + timeout
        try:
            while proc.poll() is None:
                if condition():
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return True
                if time.time() > deadline:
                    raise AssertionError(f'{args} neither met the kill condition nor ended')
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return False


def last_checkpoint(step_dir):
    """The checkpoint named by ``step_dir/last_checkpoint`` ('' while none)."""
    try:
        with open(osp.join(step_dir, 'last_checkpoint')) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ''
