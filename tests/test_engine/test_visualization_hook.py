"""VOC's crop evaluation end to end: metric, --out PNGs and overlays are of the 512 crop."""
import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from PIL import Image

from mmincseg.engine.hooks.visualization_hook import evaluated_image

VOC_STEP0 = 'configs/mib/bisenet_r18_voc_15-5_step0.py'


def _voc(root, names=('a', 'b'), size=(30, 40)):
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        mask = np.zeros(size, np.uint8)
        mask[: size[0] // 2] = i + 1
        Image.fromarray(mask).save(osp.join(root, 'SegmentationClass', name + '.png'))
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
            osp.join(root, 'JPEGImages', name + '.jpg'))
    for split in ('train', 'val'):
        with open(osp.join(root, 'ImageSets/Segmentation', split + '.txt'), 'w') as f:
            f.write('\n'.join(names) + '\n')
    return root


def test_evaluated_image_is_the_file_or_the_packed_crop(tmp_path):
    path = str(tmp_path / 'x.png')
    Image.fromarray(np.full((6, 8, 3), (10, 20, 30), np.uint8)).save(path)
    sample = SegDataSample(metainfo=dict(img_path=path))
    sample.pred_sem_seg = PixelData(data=torch.zeros(1, 6, 8, dtype=torch.long))
    assert evaluated_image(sample, None).shape == (6, 8, 3)
    crop = torch.zeros(3, 4, 4, dtype=torch.uint8)
    crop[0] = 30  # packed inputs are BGR as loaded
    sample.pred_sem_seg = PixelData(data=torch.zeros(1, 4, 4, dtype=torch.long))
    img = evaluated_image(sample, crop)
    assert img.shape == (4, 4, 3) and (img[..., 2] == 30).all() and (img[..., 0] == 0).all()


@pytest.mark.slow
def test_voc_config_scores_the_crop_and_draws_it(tmp_path):
    from mmseg.registry import MODELS

    from mmincseg.apis import load_step_config
    from mmincseg.apis import test_step as evaluate_step
    root = _voc(str(tmp_path / 'voc'))
    options = {'test_dataloader.num_workers': 0, 'val_dataloader.num_workers': 0,
               'default_hooks.visualization.interval': 1,
               # mmengine keeps one visualizer per name for the process: a fresh one draws here
               'visualizer.name': f'vis_{tmp_path.name}'}
    cfg = load_step_config(VOC_STEP0, str(tmp_path / 'w'), root, options)
    checkpoint = str(tmp_path / 'model.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, checkpoint)
    out, show = str(tmp_path / 'preds'), str(tmp_path / 'show')
    metrics = evaluate_step(VOC_STEP0, checkpoint, work_dir=str(tmp_path / 'w'), data_root=root,
                            cfg_options=options, out=out, show_dir=show)
    assert 'mIoU' in metrics
    for name in ('a', 'b'):  # 30 x 40 -> 512 x 683 -> centre crop 512 x 512
        with Image.open(osp.join(out, name + '.png')) as png:
            assert png.size == (512, 512)
    drawn = glob.glob(osp.join(show, '**', '*.png'), recursive=True)
    assert len(drawn) == 2
    with Image.open(drawn[0]) as overlay:
        assert overlay.size[1] == 512
