"""Numerics: label remapping properties, losses finite for any logits in [-1e4, 1e4] and any
ignore mask, a whole MiB train step under bf16 autocast (``--amp`` on CPU) and on a batch where
every pixel is ignored.

Elsewhere: hand-computed and property tests of each loss, their ±1e4 / fp16 / bf16 / all-ignored
cases (tests/test_models/test_losses/), split-table properties (tests/test_tasks.py), novel-init
properties (tests/test_models/test_classifiers/test_novel_init.py).
"""
import os.path as osp
import tempfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import MODELS, RUNNERS
from PIL import Image

from mmincseg import tasks
from mmincseg.apis import load_step_config
from mmincseg.apis.train import _enable_amp
from mmincseg.datasets.incremental_voc import train_label_map, val_label_map
from mmincseg.models.losses import lwf_kd, unbiased_cross_entropy, unbiased_kd

TASK_STEPS = [(task, step) for task in tasks.task_names() for step in range(tasks.num_steps(task))]
VOC_VALUES = list(range(tasks.NUM_VOC_CLASSES)) + [tasks.IGNORE_INDEX]
# a (task, step) and a small VOC mask of any values, for the remapping properties
TASK_STEP = st.sampled_from(TASK_STEPS)
MASK = hnp.arrays(np.uint8, st.tuples(st.integers(2, 6), st.integers(2, 6)),
                  elements=st.sampled_from(VOC_VALUES))


def remap(mask: np.ndarray, label_map: dict, tmp_dir: str) -> np.ndarray:
    """What the pipeline does with a mask: mmseg's LoadAnnotations applying ``label_map``."""
    path = osp.join(tmp_dir, 'mask.png')
    Image.fromarray(mask).save(path)
    results = dict(seg_map_path=path, label_map=label_map, reduce_zero_label=False,
                   seg_fields=[])
    return LoadAnnotations()(results)['gt_seg_map']


# ------------------------------------------------------------------------- label remapping
@settings(max_examples=60, deadline=None)
@given(task_step=TASK_STEP, mask=MASK)
def test_train_remapping(task_step, mask):
    task, step = task_step
    current = set(tasks.classes_of_step(task, step))
    label_map = train_label_map(task, step)
    assert set(label_map) == set(range(tasks.NUM_VOC_CLASSES))
    assert all(label_map[c] == (c if c in current else 0) for c in label_map)
    with tempfile.TemporaryDirectory() as tmp:
        out = remap(mask, label_map, tmp)
    assert out.shape == mask.shape
    keep = np.isin(mask, sorted(current)) | (mask == tasks.IGNORE_INDEX)
    np.testing.assert_array_equal(out[keep], mask[keep])  # classes of C_t and void unchanged
    assert (out[~keep] == 0).all()  # old and future classes become background
    assert set(np.unique(out).tolist()) <= current | {0, tasks.IGNORE_INDEX}


@settings(max_examples=60, deadline=None)
@given(task_step=TASK_STEP, mask=MASK)
def test_val_remapping(task_step, mask):
    task, step = task_step
    seen = set(tasks.classes_seen(task, step))
    with tempfile.TemporaryDirectory() as tmp:
        out = remap(mask, val_label_map(task, step), tmp)
    learned = np.isin(mask, sorted(seen))
    np.testing.assert_array_equal(out[learned], mask[learned])
    assert (out[~learned] == tasks.IGNORE_INDEX).all()  # not learned yet (or void): ignored
    # never more classes than the model has channels
    assert int(out[out != tasks.IGNORE_INDEX].max(initial=0)) < len(seen)


@pytest.mark.parametrize('task', tasks.task_names())
def test_remapping_across_steps(task):
    last = tasks.num_steps(task) - 1
    assert val_label_map(task, last) == {c: c for c in range(tasks.NUM_VOC_CLASSES)}
    for step in range(last + 1):
        train, val = train_label_map(task, step), val_label_map(task, step)
        for c in tasks.classes_of_step(task, step):  # train and val agree on the step's classes
            assert train[c] == val[c] == c
        if step:  # what was learned stays learned
            before = val_label_map(task, step - 1)
            assert all(val[c] == c for c in before if before[c] != tasks.IGNORE_INDEX)


# ------------------------------------------------------------------------------- losses
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), num_old=st.integers(1, 5), num_new=st.integers(1, 3),
       scale=st.sampled_from([1.0, 1e2, 1e4]), ignored=st.floats(0.0, 1.0),
       dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
def test_losses_finite_for_extreme_logits_and_any_ignore_mask(seed, num_old, num_new, scale,
                                                              ignored, dtype):
    g = torch.Generator().manual_seed(seed)
    channels = num_old + num_new
    logits = ((torch.rand(2, channels, 3, 4, generator=g) * 2 - 1) * scale).to(dtype)
    old_logits = ((torch.rand(2, num_old, 3, 4, generator=g) * 2 - 1) * scale).to(dtype)
    logits.requires_grad_(True)
    labels = torch.randint(0, channels, (2, 3, 4), generator=g)
    labels[torch.rand(2, 3, 4, generator=g) < ignored] = 255
    ce = unbiased_cross_entropy(logits, labels, num_old)
    kd = unbiased_kd(logits, old_logits)
    lwf = lwf_kd(logits, old_logits)
    for loss in (ce, kd, lwf):
        assert loss.dtype == torch.float32 and torch.isfinite(loss) and loss >= -1e-6
    (ce + kd + lwf).backward()
    assert torch.isfinite(logits.grad).all()
    if (labels == 255).all():
        assert ce.item() == 0


# --------------------------------------------------------------------- whole train steps
@pytest.fixture(scope='module')
def amp_runner(tmp_path_factory, toy_voc):
    """A MiB 15-5 step-1 runner with ``--amp`` (bf16 autocast on CPU), ready to train."""
    tmp = tmp_path_factory.mktemp('amp')
    step0 = load_step_config('configs/mib/bisenet_r18_toyvoc_15-5_step0.py', work_dir=str(tmp))
    torch.manual_seed(0)
    prev = str(tmp / 'step0.pth')
    torch.save({'state_dict': MODELS.build(step0.model).state_dict(), 'meta': {}}, prev)
    options = {'incremental.prev_checkpoint': prev, 'train_dataloader.batch_size': 2,
               'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
               'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False}
    cfg = load_step_config('configs/mib/bisenet_r18_toyvoc_15-5_step1.py', work_dir=str(tmp),
                           data_root=toy_voc, cfg_options=options)
    _enable_amp(cfg)  # what tools/train.py --amp does
    runner = RUNNERS.build(cfg)
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner._init_model_weights()
    runner.load_or_resume()
    runner.call_hook('before_train')
    runner.model.train()
    return runner


def one_batch(runner):
    return next(iter(runner.train_dataloader))


def test_mib_train_step_under_bf16_autocast(amp_runner):
    wrapper = amp_runner.optim_wrapper
    assert type(wrapper).__name__ == 'CPUAmpOptimWrapper' and wrapper.cast_dtype == torch.bfloat16
    model = amp_runner.model
    with wrapper.optim_context(model):  # the forward pass of a train step autocasts
        probe = torch.nn.functional.conv2d(torch.randn(1, 3, 4, 4), torch.randn(2, 3, 1, 1))
    assert probe.dtype == torch.bfloat16
    before = model.decode_head.conv_seg.classifiers[1].weight.detach().clone()
    for _ in range(2):
        log_vars = model.train_step(one_batch(amp_runner), optim_wrapper=wrapper)
        assert 'loss_kd' in log_vars and 'decode.loss_ce' in log_vars
        for key, value in log_vars.items():
            assert np.isfinite(float(value)), (key, value)
    after = model.decode_head.conv_seg.classifiers[1].weight
    assert torch.isfinite(after).all() and not torch.equal(before, after)


def test_mib_step_where_every_pixel_is_ignored(amp_runner):
    model = amp_runner.model
    data = model.data_preprocessor(one_batch(amp_runner), True)
    for sample in data['data_samples']:
        sample.gt_sem_seg.data[:] = 255
    model.zero_grad()
    for autocast in (False, True):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            losses = model.loss(data['inputs'], data['data_samples'])
        total = sum(v for k, v in losses.items() if 'loss' in k)
        assert torch.isfinite(total)
        assert losses['decode.loss_ce'].item() == 0  # nothing to learn from labels
        assert torch.isfinite(losses['loss_kd']) and losses['loss_kd'] > 0  # distillation stays
        total.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        model.zero_grad()
