"""The batch-padding share of training batches (tools/analysis_tools/batch_padding.py)."""
import pytest

from mmincseg.apis.train import load_step_config
from tools.analysis_tools.batch_padding import padding_share, write_sized_voc

TOY_CONFIG = 'configs/mib/bisenet_r18_toyvoc_15-5_step1.py'
VOC_CONFIG = 'configs/mib/bisenet_r18_voc_15-5_step1.py'
SINGLE_PROCESS = {'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False}


def test_toy_batches_are_partly_padding(toy_voc, tmp_path):
    cfg = load_step_config(TOY_CONFIG, work_dir=str(tmp_path), data_root=toy_voc,
                           cfg_options=SINGLE_PROCESS)
    result = padding_share(cfg, batch_size=8)
    assert result['batches'] > 0 and result['samples'] > 0
    assert 0 < result['pixel_share'] < 0.5
    # the masked KD at 1/8 still touches the padding inside the half-image border cells only
    assert 0 <= result['padding_in_kept_cells'] < result['pixel_share']


def test_voc_pipeline_padding_counted_exactly(tmp_path):
    """VOC's RandomResize(2048 x 512) at ratio 0.5 makes 375 x 500 images 256 x 341 (and
    500 x 375 ones 341 x 256); RandomCrop(512) keeps them whole; the batch of one of each is
    padded to 352 x 352 (size_divisor 32)."""
    root = write_sized_voc(str(tmp_path / 'voc'), sizes=[(375, 500), (500, 375)], num_images=2)
    cfg = load_step_config(VOC_CONFIG, work_dir=str(tmp_path / 'run'), data_root=root,
                           cfg_options=SINGLE_PROCESS)
    for transform in cfg.train_dataloader.dataset.pipeline:
        if transform['type'] == 'RandomResize':
            transform['ratio_range'] = (0.5, 0.5)
    result = padding_share(cfg, batch_size=2)
    assert result['batch_shapes'] == {'352x352': 1} and result['samples'] == 2
    assert result['pixel_share'] == pytest.approx(1 - 2 * 256 * 341 / (2 * 352 * 352))
