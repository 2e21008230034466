"""Shared fixtures: a tiny toy VOC generated once per test session (never downloaded)."""
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
# Keep the per-image class index cache inside the test session's temp space.
os.environ.setdefault('MMINCSEG_CACHE', osp.join(REPO, 'work_dirs', '.test_cache'))


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: end-to-end runs (seconds to minutes)')


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Registries resolve names in mmseg's scope, as configs with default_scope='mmseg' do."""
    from mmengine.registry import DefaultScope
    import mmincseg  # noqa: F401  (registers our modules)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


#: The recipe the tests' stand-in toy checkpoints are trained with (seconds, not minutes).
TINY_PRETRAINING = dict(num_images=64, image_size=32, epochs=1, num_val=0, batch_size=16)


@pytest.fixture(scope='session', autouse=True)
def toy_pretrained_stand_ins():
    """Toy configs load ``mmincseg-toy://resnet*_v1c`` (the default recipe: minutes on a CPU).
    In the tests' own cache (``MMINCSEG_CACHE`` above), the default recipe's file of each
    architecture is a real checkpoint of the same layout trained by the same code on the tiny
    recipe, made once; the full-load check of init_weights runs on it unchanged. The tests of
    the pretraining itself (test_toy_pretrain.py) use their own, empty cache."""
    from mmincseg.apis.toy_pretrain import (ARCHITECTURES, toy_pretrained_path,
                                            train_toy_pretrained)
    for arch in ARCHITECTURES:
        path = toy_pretrained_path(None, arch)
        if not osp.isfile(path):
            train_toy_pretrained(path, TINY_PRETRAINING, arch)
    yield


@pytest.fixture(scope='session')
def repo_root() -> str:
    return REPO


@pytest.fixture(scope='session')
def toy_voc(tmp_path_factory) -> str:
    """A small toy VOC (50 train / 16 val / 8 test images, ~64 px) shared by the whole session.

    50: no training subset of the tests (15-5 and 15-1 steps, batch sizes 2, 4, 8) ends on a
    one-image batch, which BatchNorm refuses (checked when the toy generator changes).
    """
    from mmincseg.datasets.toy_voc import make_toy_voc
    root = str(tmp_path_factory.mktemp('toyvoc'))
    make_toy_voc(root, seed=0, num_train=50, num_val=16, num_test=8, size=64)
    return root


def _prepare_runner(runner):
    """What ``Runner.train`` does before the loop: optimizer, init, load/resume, before_train."""
    runner._train_loop = runner.build_train_loop(runner._train_loop)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner._init_model_weights()
    runner.load_or_resume()
    runner.call_hook('before_train')
    return runner


@pytest.fixture
def prepare_runner():
    """``prepare_runner(runner)``: a built Runner brought to the start of its training loop."""
    return _prepare_runner


def _seg_samples(labels):
    """``SegDataSample`` s whose ``gt_sem_seg`` are the (H, W) maps of ``labels`` (N, H, W)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label[None])
        samples.append(sample)
    return samples


@pytest.fixture
def seg_samples():
    """``seg_samples(labels)``: data samples with these ground-truth maps, as loss_by_feat reads."""
    return _seg_samples
