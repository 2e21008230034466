"""Deterministic synthetic dataset with the layout of ADE20K (``ADEChallengeData2016``).

``make_toy_ade(out_dir, seed)`` writes a small ADE20K look-alike so that every ADE20K config runs
with ``--data-root out_dir`` and no download:

- ``images/{training,validation}/ADE_{train,val}_<index>.jpg``: RGB images of varying sizes;
- ``annotations/{training,validation}/<same name>.png``: grayscale masks with ADE20K's label
  values: 0 (ADE's "other": scene background and a 2-pixel band on object borders, since ADE20K
  has no void label) and 1..150, ADE20K's classes (their names are mmseg's ``ADE20KDataset``'s);
- ``toy_ade.json``: generator arguments, class looks and statistics (it marks the folder as ours).

Scenes are the toy VOC's (:func:`mmincseg.datasets.toy_voc.render_toy_sample`: cluttered
backgrounds, occluding objects, lighting and noise); only the class looks differ. The 150
classes are every (shape, texture) pair of the toy VOC (10 x 6 = 60) in up to three colour
families (warm, cool, neutral): class ``c`` is pair ``(c - 1) % 60`` in family ``(c - 1) // 60``,
so classes sharing a shape and a texture differ by colour family, and classes of one family by
shape or texture. Same arguments, byte-identical files.
"""
import os
import os.path as osp
from typing import Dict, List

import numpy as np
from PIL import Image

from mmincseg.tasks import NUM_ADE20K_CLASSES
from .toy_voc import (SHAPES, TEXTURES, ClassStyle, _check_out_dir, _write_json,
                      render_toy_sample, save_image)

TOY_ADE_FORMAT = 'mmincseg-toy-ade'
TOY_ADE_VERSION = 1
TOY_ADE_MARKER = 'toy_ade.json'
SPLITS = {'training': 'train', 'validation': 'val'}
NUM_FOREGROUND = NUM_ADE20K_CLASSES - 1
# Three colour families, four colours each (RGB), far apart within a family.
FAMILIES = (
    ((225, 45, 40), (245, 150, 30), (235, 215, 60), (175, 60, 40)),     # warm
    ((40, 90, 215), (40, 195, 205), (45, 165, 70), (120, 70, 185)),     # cool
    ((235, 235, 235), (130, 130, 130), (40, 40, 40), (150, 120, 85)),   # neutral
)
_IMAGE_STREAM = 0xADE0
_BLOCK_STREAM = 0xADE1


def toy_ade_styles() -> Dict[int, ClassStyle]:
    """Class id (1..150) -> (shape, texture, main colour) of the toy ADE20K."""
    pairs = [(shape, texture) for texture in TEXTURES for shape in SHAPES]  # 60 pairs
    styles = {}
    for c in range(1, NUM_FOREGROUND + 1):
        shape, texture = pairs[(c - 1) % len(pairs)]
        family = FAMILIES[(c - 1) // len(pairs)]
        colour = family[((c - 1) % len(pairs)) % len(family)]
        styles[c] = (shape, texture, np.asarray(colour, dtype=np.float32))
    return styles


def image_name(split: str, index: int) -> str:
    """ADE20K's file stem: ``ADE_train_00000001`` (1-based, as ADE20K's)."""
    return f'ADE_{SPLITS[split]}_{index + 1:08d}'


def _scene_classes(seed: int, split_id: int, position: int, rng: np.random.Generator) -> List[int]:
    """Object classes of one image: a balanced primary class plus 0-2 random ones."""
    block = np.random.default_rng([seed, _BLOCK_STREAM, split_id, position // NUM_FOREGROUND])
    primary = int(block.permutation(NUM_FOREGROUND)[position % NUM_FOREGROUND]) + 1
    count = int(rng.choice((1, 2, 3), p=(0.35, 0.4, 0.25)))
    classes = [primary] + [int(c) for c in rng.integers(1, NUM_FOREGROUND + 1, count - 1)]
    rng.shuffle(classes)
    return classes


def make_toy_ade(out_dir: str, seed: int = 0, num_train: int = 1500, num_val: int = 300,
                 size: int = 96, force: bool = False) -> dict:
    """Write a deterministic toy dataset with the layout of ADE20K.

    Args:
        out_dir: Dataset root (created if needed); use it as ``--data-root`` of ADE20K configs.
        seed: Non-negative seed; the same arguments give byte-identical files.
        num_train: Training images (each class is the primary object of ``num_train / 150``).
        num_val: Validation images.
        size: Nominal image side in pixels; each side is drawn from [0.75, 1.25] * size.
        force: Write into a non-empty folder that is not a toy ADE20K.

    Returns:
        dict: Per split: ``num_images``, ``background_fraction`` and ``class_image_counts`` (a
        list over class ids 1..150).

    Raises:
        ValueError: On out-of-range arguments.
        FileExistsError: If ``out_dir`` is a file, or a non-empty foreign folder without ``force``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if num_train < 1 or num_val < 0:
        raise ValueError(f'need num_train >= 1 and num_val >= 0, got {num_train} and {num_val}')
    if size < 32:
        raise ValueError(f'size must be >= 32 pixels, got {size}')
    was_toy = _check_out_dir(out_dir, force, TOY_ADE_MARKER, TOY_ADE_FORMAT)
    counts = {'training': num_train, 'validation': num_val}
    styles = toy_ade_styles()
    header = dict(format=TOY_ADE_FORMAT, version=TOY_ADE_VERSION,
                  args=dict(seed=seed, num_train=num_train, num_val=num_val, size=size),
                  class_styles={c: [s[0], s[1], s[2].astype(int).tolist()]
                                for c, s in styles.items()})
    os.makedirs(out_dir, exist_ok=True)
    _write_json(osp.join(out_dir, TOY_ADE_MARKER), dict(header, complete=False))
    stats = {}
    for split_id, split in enumerate(SPLITS):
        folders = {sub: osp.join(out_dir, sub, split) for sub in ('images', 'annotations')}
        for folder in folders.values():
            os.makedirs(folder, exist_ok=True)
        names = {image_name(split, i) for i in range(counts[split])}
        if was_toy:  # files of an earlier, larger toy ADE20K
            for sub, folder in folders.items():
                for fname in os.listdir(folder):
                    if fname.startswith('ADE_') and osp.splitext(fname)[0] not in names:
                        os.remove(osp.join(folder, fname))
        images_with = np.zeros(256, np.int64)
        pixels = np.zeros(256, np.int64)
        for position in range(counts[split]):
            rng = np.random.default_rng([seed, _IMAGE_STREAM, split_id, position])
            classes = _scene_classes(seed, split_id, position, rng)
            image, label, _ = render_toy_sample(rng, size, classes, styles, void=0)
            name = image_name(split, position)
            save_image(Image.fromarray(image), osp.join(folders['images'], f'{name}.jpg'))
            save_image(Image.fromarray(label), osp.join(folders['annotations'], f'{name}.png'))
            hist = np.bincount(label.ravel(), minlength=256)
            pixels += hist
            images_with += hist > 0
        stats[split] = {
            'num_images': counts[split],
            'background_fraction': round(float(pixels[0]) / max(int(pixels.sum()), 1), 6),
            'class_image_counts': images_with[1:NUM_FOREGROUND + 1].tolist(),
        }
    _write_json(osp.join(out_dir, TOY_ADE_MARKER), dict(header, complete=True, stats=stats))
    return stats
