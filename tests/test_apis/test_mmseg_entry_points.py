"""A step config through mmseg's own tools: train.py resolves it (runner_type), test.py refuses
it at once with the supported entry points instead of running with a default split."""
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmincseg.apis.config import set_data_root
from loader_options import NO_WORKERS

CONFIG = 'configs/mib/bisenet_r18_toyvoc_15-5_step1.py'


def _as_mmseg_loads_it(toy_voc, tmp_path):
    """What mmseg's tools/{train,test}.py do before building the runner."""
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(NO_WORKERS)
    cfg.work_dir = str(tmp_path / 'run_step1')
    return set_data_root(cfg, toy_voc)


def test_mmseg_train_py_builds_the_incremental_runner(toy_voc, tmp_path):
    from mmseg.registry import RUNNERS
    cfg = _as_mmseg_loads_it(toy_voc, tmp_path)
    assert 'runner_type' in cfg  # mmseg's train.py then calls RUNNERS.build(cfg)
    runner = RUNNERS.build(cfg)
    assert runner.cfg.model.type == 'IncrementalEncoderDecoder'
    assert runner.cfg.train_dataloader.dataset.step == 1
    assert runner.cfg.val_evaluator.task == '15-5' and runner.cfg.val_evaluator.step == 1


def test_mmseg_test_py_fails_at_once_naming_the_entry_points(toy_voc, tmp_path):
    cfg = _as_mmseg_loads_it(toy_voc, tmp_path)
    cfg.load_from = str(tmp_path / 'never_read.pth')
    runner = Runner.from_cfg(cfg)  # mmseg's tools/test.py: always a plain Runner
    with pytest.raises(ValueError, match=r"IncrementalVOCDataset was built without its split.*"
                                         r"mmseg's own tools/train\.py.*mmseg's tools/test\.py"):
        runner.test()


def test_components_have_no_default_split():
    from mmincseg.datasets import IncrementalVOCDataset
    from mmincseg.evaluation import IncrementalIoUMetric
    with pytest.raises(ValueError, match='IncrementalIoUMetric was built without'):
        IncrementalIoUMetric()
    with pytest.raises(ValueError, match='IncrementalVOCDataset was built without'):
        IncrementalVOCDataset(data_root='unused', lazy_init=True)
