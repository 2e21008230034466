"""How much of the training batches is batch padding (what the distillation terms used to see).

mmseg's ``SegDataPreProcessor`` pads every training batch to its largest crop (rounded to
``size_divisor``): images with a side shorter than the crop leave padded pixels (image value 0,
label 255). The segmentation losses ignore them through the label; the distillation terms leave
them out through ``padding_free_mask``. :func:`padding_share` runs a step config's real training
dataloader and data preprocessor and counts them.
"""
import os
import os.path as osp
from collections import Counter
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config


def padding_share(cfg: Config, num_epochs: int = 1, batch_size: Optional[int] = None,
                  stride: int = 8, seed: int = 0) -> Dict[str, object]:
    """Share of the pixels (and of the stride-``stride`` logit cells) of training batches that
    are batch padding, i.e. outside each sample's image (``img_shape``).

    Padding only: the 255 void that ``RandomRotate`` writes inside an image is not counted.

    Args:
        cfg (Config): A resolved step config (``mmincseg.apis.train.load_step_config``).
        num_epochs (int): Passes over the training set. Defaults to 1.
        batch_size (int, optional): Overrides ``train_dataloader.batch_size``.
        stride (int): Output stride of the distilled logits (8 for BiSeNet). Defaults to 8.
        seed (int): Seed of the dataloader and transforms. Defaults to 0.

    Returns:
        dict: ``pixel_share`` (padded pixels / batch pixels), ``cell_share`` (logit cells outside
        the image, :func:`padding_free_mask`, / all cells), ``padding_in_kept_cells`` (padded
        pixels / pixels covered by the kept cells: what the masked KD at stride ``stride`` still
        touches; 0 at label resolution), ``batches``, ``samples`` and ``batch_shapes`` (count of
        each padded batch size).
    """
    import copy

    import torch
    from mmengine.registry import DefaultScope, init_default_scope
    from mmengine.runner import Runner
    from mmengine.runner.utils import set_random_seed
    from mmseg.registry import MODELS

    import mmincseg  # noqa: F401  (registers our transforms and datasets)
    from mmincseg.models.segmentors.incremental_encoder_decoder import padding_free_mask
    if DefaultScope.get_current_instance() is None:
        init_default_scope(cfg.get('default_scope', 'mmseg'))
    set_random_seed(seed)
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    if batch_size is not None:
        loader_cfg['batch_size'] = batch_size
    loader_cfg['persistent_workers'] = False
    loader = Runner.build_dataloader(loader_cfg, seed=seed)
    preprocessor = MODELS.build(copy.deepcopy(cfg.model.data_preprocessor))
    pixels = padded = cells = padded_cells = kept_pixels = padded_in_kept = 0
    batches = samples = 0
    shapes: Counter = Counter()
    for epoch in range(num_epochs):
        if hasattr(loader.sampler, 'set_epoch'):
            loader.sampler.set_epoch(epoch)
        for data in loader:
            data = preprocessor(data, True)
            inputs, data_samples = data['inputs'], data['data_samples']
            n, _, height, width = inputs.shape
            shapes[f'{height}x{width}'] += 1
            batches += 1
            samples += n
            image = padding_free_mask(data_samples, (height, width), (height, width))
            image = torch.ones(n, 1, height, width, dtype=torch.bool) if image is None else image
            size = (height // stride, width // stride)
            kept = padding_free_mask(data_samples, (height, width), size)
            kept = torch.ones(n, 1, *size, dtype=torch.bool) if kept is None else kept
            kept_area = kept.repeat_interleave(stride, 2).repeat_interleave(stride, 3)
            kept_area = kept_area[:, :, :height, :width]
            pixels += image.numel()
            padded += int((~image).sum())
            cells += kept.numel()
            padded_cells += int((~kept).sum())
            kept_pixels += int(kept_area.sum())
            padded_in_kept += int((kept_area & ~image[:, :, :kept_area.shape[2],
                                                     :kept_area.shape[3]]).sum())
    return dict(pixel_share=padded / max(pixels, 1), cell_share=padded_cells / max(cells, 1),
                padding_in_kept_cells=padded_in_kept / max(kept_pixels, 1), batches=batches,
                samples=samples, batch_shapes=dict(shapes))


def write_sized_voc(root: str, sizes: Sequence[Tuple[int, int]] = ((375, 500), (500, 375)),
                    num_images: int = 64, seed: int = 0) -> str:
    """A VOC2012-layout folder of noise images of the given (H, W) sizes, for measuring what a
    VOC training pipeline does to image sizes without the real data.

    Every mask has background, a block of class 5 and a block of each of classes 16-20 (so any
    15-x step keeps every image), with a 255 border as VOC has; ``ImageSets/Segmentation/``
    has ``train_aug.txt`` (masks in ``SegmentationClassAug``), ``train.txt`` and ``val.txt``.

    Args:
        root (str): Output directory.
        sizes (Sequence[tuple[int, int]]): Image sizes (H, W), used in turn. Defaults to VOC's
            two most common, 375 x 500 and 500 x 375.
        num_images (int): Number of images. Defaults to 64.
        seed (int): Seed of the noise. Defaults to 0.

    Returns:
        str: ``root``.
    """
    from PIL import Image
    rng = np.random.default_rng(seed)
    for sub in ('JPEGImages', 'SegmentationClassAug', 'SegmentationClass',
                'ImageSets/Segmentation'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    names = []
    for i in range(num_images):
        h, w = sizes[i % len(sizes)]
        name = f'sized_{i:05d}'
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), dtype=np.uint8)
        for k, cls in enumerate((5, 16, 17, 18, 19, 20)):
            y, x = (k // 3) * h // 2, (k % 3) * w // 3
            mask[y + h // 8:y + h // 2 - h // 8, x + w // 12:x + w // 3 - w // 12] = cls
        mask[:2], mask[-2:], mask[:, :2], mask[:, -2:] = 255, 255, 255, 255
        Image.fromarray(image).save(osp.join(root, 'JPEGImages', f'{name}.jpg'))
        for sub in ('SegmentationClassAug', 'SegmentationClass'):
            Image.fromarray(mask).save(osp.join(root, sub, f'{name}.png'))
        names.append(name)
    for split in ('train_aug', 'train', 'val'):
        with open(osp.join(root, 'ImageSets/Segmentation', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(names) + '\n')
    return root
