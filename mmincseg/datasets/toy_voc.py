"""Deterministic synthetic dataset with the layout of ``VOCdevkit/VOC2012``.

``make_toy_voc(out_dir, seed)`` writes a small PASCAL-VOC look-alike so that every VOC config runs
with ``--data-root out_dir`` and no download:

- ``JPEGImages/<name>.jpg``: RGB images of varying, non-square sizes around ``size``;
- ``SegmentationClass/<name>.png``: palette PNGs (VOC colour map), values 0..20 and 255;
- ``SegmentationClassAug/<name>.png``: the same labels as single-channel PNGs;
- ``ImageSets/Segmentation/{train,val,test,trainval,train_aug}.txt``: ``test`` is a held-out split
  (choices are made on ``val``, tables report ``test``);
- the image-level labels file :data:`~mmincseg.datasets.image_labels.IMAGE_LABELS_FILE`;
- ``toy_voc.json``: generator arguments and dataset statistics (it also marks the folder as ours).

Each of the 20 object classes is a (shape, texture) pair (:data:`TOY_CLASS_STYLES`); every shape
and every texture is shared by several classes. An object's main colour is its class's palette
colour, jittered per instance (:data:`TOY_CLASS_COLOURS`, one palette colour per class); the same
colours paint backgrounds and distractors, so colour is a strong cue of which class an object is
(as in VOC) but never tells an object from the clutter alone. Backgrounds are cluttered with
gradients, noise, plain distractor blobs, lines and arcs, which are labelled background. Objects occlude each other and a 2-pixel void band (255) covers every object border,
as in VOC. Scene version 5 (:data:`TOY_RENDER_VERSION`) has larger objects, one colour per class
(a texture's second tone is a shade of it), fewer distractors and plain, muted distractor blobs
(version 2 shared colours between classes, drew textures in two class colours and painted the
distractors with class textures), calibrated so that a toy-pretrained BiSeNet-R18 learns the
classes as ImageNet-pretrained models learn VOC's (docs/results.md).

Everything is drawn with numpy, OpenCV and Pillow (no mmseg/mmcv), from random generators seeded
per image, so the same arguments give byte-identical files.
"""
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

from mmincseg.datasets.image_labels import IMAGE_LABELS_FILE, write_image_labels
from mmincseg.tasks import IGNORE_INDEX, VOC_CLASSES, voc_palette
from mmincseg.utils.io import atomic_write

TOY_VOC_FORMAT = 'mmincseg-toy-voc'
TOY_VOC_VERSION = 3
#: Bumped whenever :func:`render_toy_sample` draws differently for the same random stream (what the
#: toy pretraining's images depend on; the dataset layout has its own TOY_VOC_VERSION).
TOY_RENDER_VERSION = 5
TOY_VOC_MARKER = 'toy_voc.json'
SPLITS = ('train', 'val', 'test')

SHAPES = ('circle', 'square', 'triangle', 'star', 'cross', 'ring', 'diamond', 'hexagon', 'ellipse',
          'crescent')
TEXTURES = ('stripes', 'checker', 'dots', 'solid', 'gradient', 'concentric')

# VOC class name -> (shape, texture). Each shape has two textures and each texture 3-4 shapes.
TOY_CLASS_STYLES: Dict[str, Tuple[str, str]] = dict(zip(VOC_CLASSES[1:], [
    ('circle', 'stripes'), ('circle', 'checker'),
    ('square', 'dots'), ('square', 'solid'),
    ('triangle', 'gradient'), ('triangle', 'concentric'),
    ('star', 'stripes'), ('star', 'dots'),
    ('cross', 'checker'), ('cross', 'gradient'),
    ('ring', 'solid'), ('ring', 'stripes'),
    ('diamond', 'concentric'), ('diamond', 'checker'),
    ('hexagon', 'dots'), ('hexagon', 'gradient'),
    ('ellipse', 'solid'), ('ellipse', 'concentric'),
    ('crescent', 'stripes'), ('crescent', 'checker'),
]))

# Colours shared by objects, distractors and backgrounds: one per class, all far apart.
_PALETTE = np.array([
    (220, 40, 40), (40, 170, 60), (40, 80, 210), (235, 210, 50), (40, 200, 210), (200, 60, 190),
    (240, 140, 30), (120, 60, 170), (235, 235, 235), (128, 128, 128), (120, 80, 40), (25, 25, 25),
    (150, 210, 90), (240, 150, 170), (0, 110, 110), (130, 0, 30), (170, 170, 255),
    (255, 230, 160), (90, 110, 20), (20, 30, 100)], dtype=np.float32)

# Class id -> palette index of its main colour (a bijection; classes sharing a shape or a texture
# get colours far apart in the palette's order).
TOY_CLASS_COLOURS: Dict[int, int] = {c: (c * 7) % 20 for c in range(1, 21)}
# Unit-radius shape areas are 1.1 (diamond) to 3.1 (circle); scaling radii by (pi / area) ** 0.25
# brings the pixel share of the smallest shape to ~2/3 of the largest.
_SHAPE_SCALE = {'circle': 1.0, 'square': 1.08, 'triangle': 1.24, 'star': 1.23, 'cross': 1.1,
                'ring': 1.09, 'diamond': 1.28, 'hexagon': 1.05, 'ellipse': 1.17, 'crescent': 1.22}
_NUM_OBJECTS = (1, 2, 3)
_NUM_OBJECTS_P = (0.35, 0.4, 0.25)
_MIN_VISIBLE = 0.4  # an occluded object keeps at least this share of its area
_IMAGE_STREAM = 0x1A6E  # separates per-image random streams from per-block ones
_BLOCK_STREAM = 0xB10C
_NAME_RE = re.compile(r'^toy_\d{6,}\.(jpg|png)$')


def is_toy_voc(path: str) -> bool:
    """Whether ``path`` is a folder written by :func:`make_toy_voc` (it holds our marker file)."""
    return is_toy(path, TOY_VOC_MARKER, TOY_VOC_FORMAT)


def is_toy(path: str, marker: str, toy_format: str) -> bool:
    """Whether ``path`` holds the ``marker`` file of a toy dataset of ``toy_format``."""
    try:
        with open(osp.join(path, marker)) as f:
            return json.load(f).get('format') == toy_format
    except (OSError, ValueError, AttributeError):
        return False


def toy_image_name(index: int) -> str:
    """File stem of the image with global index ``index`` (train first, then val, then test)."""
    return f'toy_{index:06d}'


# --------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------
def _random_colour(rng: np.random.Generator, jitter: float = 25.0) -> np.ndarray:
    colour = _PALETTE[rng.integers(len(_PALETTE))] + rng.uniform(-jitter, jitter, 3)
    return np.clip(colour, 0, 255).astype(np.float32)


def _contrasting_colour(rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
    """A palette colour far enough from ``colour`` that a two-colour texture stays visible."""
    far = np.abs(_PALETTE - colour).sum(1) > 170
    choices = np.flatnonzero(far) if far.any() else np.arange(len(_PALETTE))
    other = _PALETTE[choices[rng.integers(len(choices))]] + rng.uniform(-20, 20, 3)
    return np.clip(other, 0, 255).astype(np.float32)


def _circle(n: int, rx: float = 1.0, ry: float = 1.0, cx: float = 0.0) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), ry * np.sin(t)], 1)


def _regular(n: int, radius: float = 1.0, phase: float = np.pi / 2) -> np.ndarray:
    t = phase + np.arange(n) * 2 * np.pi / n
    return radius * np.stack([np.cos(t), np.sin(t)], 1)


def _shape_polygons(rng: np.random.Generator, shape: str,
                    radius: float) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Polygons of ``shape`` in unit coordinates: (filled, holes cut out of the fill)."""
    if shape == 'circle':
        return [_circle(48)], []
    if shape == 'square':
        a, b = 0.78, 0.78 * rng.uniform(0.88, 1.0)
        return [np.array([(-a, -b), (a, -b), (a, b), (-a, b)])], []
    if shape == 'triangle':
        return [_regular(3) + rng.uniform(-0.06, 0.06, (3, 2))], []
    if shape == 'star':
        outer = _regular(5)
        inner = _regular(5, rng.uniform(0.42, 0.5), np.pi / 2 + np.pi / 5)
        return [np.stack([outer, inner], 1).reshape(10, 2)], []
    if shape == 'cross':
        w = rng.uniform(0.28, 0.34)
        return [np.array([(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1),
                          (-w, w), (-1, w), (-1, -w), (-w, -w)])], []
    if shape == 'ring':
        inner = min(rng.uniform(0.5, 0.6), 1 - 4.0 / radius)  # keep >= 4 px of ring under the void
        return [_circle(48)], [_circle(40, inner, inner)]
    if shape == 'diamond':
        a = rng.uniform(0.52, 0.62)
        return [np.array([(0, -1), (a, 0), (0, 1), (-a, 0)])], []
    if shape == 'hexagon':
        return [_regular(6, 1.0, 0.0)], []
    if shape == 'ellipse':
        return [_circle(48, 1.0, rng.uniform(0.45, 0.6))], []
    if shape == 'crescent':
        hole = rng.uniform(0.8, 0.88)
        return [_circle(48)], [_circle(48, hole, hole, rng.uniform(0.45, 0.55))]
    raise ValueError(f'unknown shape {shape!r}; known shapes: {SHAPES}')


def _fill_mask(h: int, w: int, fills: List[np.ndarray], holes: List[np.ndarray], centre: np.ndarray,
               radius: float, angle: float) -> np.ndarray:
    """Rasterise unit polygons rotated by ``angle``, scaled by ``radius``, moved to ``centre``."""
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mask = np.zeros((h, w), np.uint8)
    for polys, value in ((fills, 1), (holes, 0)):
        if polys:
            pts = [np.round((p @ rot.T * radius + centre) * 16).astype(np.int32) for p in polys]
            cv2.fillPoly(mask, pts, value, lineType=cv2.LINE_8, shift=4)
    return mask


def _texture(rng: np.random.Generator, texture: str, u: np.ndarray, v: np.ndarray, radius: float,
             colour: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Paint ``texture`` at object coordinates (u, v) (pixels, centred); returns (H, W, 3) float."""
    period = max(5.0, rng.uniform(0.2, 0.34) * radius)
    t = rng.uniform(0, 2 * np.pi)
    ru, rv = u * np.cos(t) + v * np.sin(t), -u * np.sin(t) + v * np.cos(t)
    if texture == 'stripes':
        sel = np.sin(2 * np.pi * ru / period + rng.uniform(0, 2 * np.pi)) > 0
    elif texture == 'checker':
        cell = period * 0.6
        sel = (np.floor(ru / cell) + np.floor(rv / cell)) % 2 == 0
    elif texture == 'dots':
        gu = (ru / period) % 1.0 - 0.5
        gv = (rv / period) % 1.0 - 0.5
        sel = gu * gu + gv * gv < rng.uniform(0.25, 0.32)**2
    elif texture == 'concentric':
        sel = (np.hypot(u, v) / (period * 0.8) + rng.uniform()) % 1.0 < 0.5
    elif texture == 'gradient':
        k = np.clip(ru / (2 * radius) + 0.5, 0, 1)[..., None]
        return colour * (1 - k) + second * k
    elif texture == 'solid':
        shade = 1.1 - 0.25 * np.clip(np.hypot(u - 0.3 * radius, v + 0.3 * radius) / radius, 0, 1.5)
        return colour * shade[..., None] + rng.normal(0, 4, u.shape + (3,))
    else:
        raise ValueError(f'unknown texture {texture!r}; known textures: {TEXTURES}')
    return np.where(sel[..., None], colour, second)


def _paint(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, texture: str,
           centre: np.ndarray, radius: float, angle: float, colour: np.ndarray,
           second: np.ndarray) -> None:
    """Alpha-blend a textured, lit region ``mask`` into ``img`` in place (soft edges)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return
    h, w = mask.shape
    y0, y1 = max(ys.min() - 2, 0), min(ys.max() + 3, h)
    x0, x1 = max(xs.min() - 2, 0), min(xs.max() + 3, w)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - centre[0], yy - centre[1]
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    tex = _texture(rng, texture, u, v, radius, colour, second)
    light = rng.uniform(-0.2, 0.2, 2)
    tex = tex * (1 + (light[0] * dx + light[1] * dy) / (2 * radius))[..., None]
    alpha = cv2.GaussianBlur(mask[y0:y1, x0:x1].astype(np.float32), (0, 0), 0.6)[..., None]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - alpha) + tex * alpha


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cluttered background: gradient, low-frequency noise, textured blobs, lines and arcs."""
    grey = rng.uniform(50, 200)
    c0, c1 = [(1 - m) * grey + m * _random_colour(rng) for m in rng.uniform(0.2, 0.8, 2)]
    t = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    k = (xx * np.cos(t) + yy * np.sin(t))
    k = ((k - k.min()) / max(float(k.max() - k.min()), 1.0))[..., None]
    img = c0 * (1 - k) + c1 * k
    grid = (int(rng.integers(3, 8)), int(rng.integers(3, 8)))
    coarse = (rng.normal(0, rng.uniform(10, 30), grid + (1,))  # mostly brightness, a little hue
              + rng.normal(0, rng.uniform(3, 10), grid + (3,)))
    img += cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)

    side = np.sqrt(h * w)
    for _ in range(int(rng.integers(1, 5))):
        kind = rng.choice(3, p=(0.5, 0.3, 0.2))
        if kind == 0:  # wavy blob, plain or shaded, in a muted colour; never a class shape
            radius = rng.uniform(0.04, 0.18) * side
            n = 40
            theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
            r = np.ones(n)
            for freq in range(2, 6):
                r += rng.uniform(0.05, 0.2) * np.sin(freq * theta + rng.uniform(0, 2 * np.pi))
            poly = np.stack([np.cos(theta) * r, np.sin(theta) * r], 1)
            centre = rng.uniform((0, 0), (w, h))
            angle = rng.uniform(0, 2 * np.pi)
            mask = _fill_mask(h, w, [poly], [], centre, radius, angle)
            grey = rng.uniform(60, 190)
            colour = 0.5 * _random_colour(rng) + 0.5 * grey
            texture = ('solid', 'gradient')[rng.integers(2)]
            _paint(rng, img, mask, texture, centre, radius, angle, colour,
                   0.5 * _contrasting_colour(rng, colour) + 0.5 * grey)
        elif kind == 1:  # polyline
            pts = np.cumsum(rng.normal(0, 0.25 * side, (int(rng.integers(2, 6)), 2)), 0)
            pts += rng.uniform((0, 0), (w, h))
            cv2.polylines(img, [np.round(pts).astype(np.int32)], False,
                          _random_colour(rng).tolist(), int(rng.integers(1, 4)), cv2.LINE_AA)
        else:  # open arc
            centre = np.round(rng.uniform((0, 0), (w, h))).astype(int)
            axes = np.round(rng.uniform(0.05, 0.3, 2) * side).astype(int)
            start = rng.uniform(0, 360)
            cv2.ellipse(img, (int(centre[0]), int(centre[1])), (int(axes[0]), int(axes[1])),
                        rng.uniform(0, 360), start, start + rng.uniform(60, 200),
                        _random_colour(rng).tolist(), int(rng.integers(1, 4)), cv2.LINE_AA)
    return img


#: A class's look: (shape, texture, main colour RGB).
ClassStyle = Tuple[str, str, np.ndarray]
#: The 20 VOC classes' looks (:data:`TOY_CLASS_STYLES`, :data:`TOY_CLASS_COLOURS`), by class id.
VOC_STYLES: Dict[int, ClassStyle] = {
    c: TOY_CLASS_STYLES[VOC_CLASSES[c]] + (_PALETTE[TOY_CLASS_COLOURS[c]], )
    for c in range(1, len(VOC_CLASSES))}


def render_toy_sample(rng: np.random.Generator, size: int, classes: List[int],
                      styles: Optional[Dict[int, ClassStyle]] = None,
                      void: int = IGNORE_INDEX) -> Tuple[np.ndarray, np.ndarray, int]:
    """Draw one image with objects of ``classes`` (drawn in this order, later ones on top).

    An object that cannot be placed (in 10 tries) without hiding more than 60% of an earlier one
    is skipped.

    Args:
        rng: The image's random generator.
        size: Nominal image side; height and width are each drawn from [0.75, 1.25] * size.
        classes: Class ids of the objects (VOC's 1..20 unless ``styles`` says otherwise).
        styles: Class id -> (shape, texture, main colour); VOC's (:data:`VOC_STYLES`) by default.
        void: Label of the band on object borders (255; the toy ADE20K, whose annotations have
            no void label, uses 0).

    Returns:
        tuple: RGB image (uint8, has a shape (H, W, 3)), label map (uint8, has a shape (H, W),
        the class ids and ``void`` on object borders) and the number of objects drawn.
    """
    h, w = (int(rng.integers(round(0.75 * size), round(1.25 * size) + 1)) for _ in range(2))
    img = _background(rng, h, w)
    side = np.sqrt(h * w)
    instances = np.zeros((h, w), np.uint8)
    instance_classes = [0]
    areas: List[int] = []
    styles = VOC_STYLES if styles is None else styles
    for cls in classes:
        shape, texture, main_colour = styles[cls]
        for _ in range(10):
            # area-uniform radius for diameters of 24%-72% of the side, then partly equalise the
            # areas of thin and round shapes
            radius = np.sqrt(rng.uniform(0.12**2, 0.36**2)) * side * _SHAPE_SCALE[shape]
            radius = max(radius, 7.0)
            centre = rng.uniform((0.1 * w, 0.1 * h), (0.9 * w, 0.9 * h))
            angle = rng.uniform(0, 2 * np.pi)
            fills, holes = _shape_polygons(rng, shape, radius)
            mask = _fill_mask(h, w, fills, holes, centre, radius, angle)
            area = int(np.count_nonzero(mask))
            if area < 40:
                continue
            visible = np.bincount(instances[mask == 0], minlength=len(instance_classes))
            if all(visible[i + 1] >= _MIN_VISIBLE * a for i, a in enumerate(areas)):
                break
        else:
            continue
        colour = np.clip(main_colour + rng.uniform(-25, 25, 3), 0, 255).astype(np.float32)
        # the texture's second tone is a dark or light shade of the class colour (never another
        # class's colour), so every pixel of an object carries its class's hue
        shade = 0.35 if colour.mean() > 100 else 2.2
        _paint(rng, img, mask, texture, centre, radius, angle, colour,
               np.clip(colour * shade + (0 if shade < 1 else 30), 0, 255))
        instance_classes.append(cls)
        areas.append(area)
        instances[mask > 0] = len(areas)

    img += rng.normal(0, rng.uniform(2, 7), img.shape)
    img = img * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)

    label = np.asarray(instance_classes, np.uint8)[instances]
    # a pixel is void if a 4-neighbour belongs to another instance (or to the background): a band
    # 1 px either side of every border
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    border = cv2.dilate(instances, kernel) != cv2.erode(instances, kernel)
    label[border] = void
    return image, label, len(areas)


def _sample_classes(seed: int, split_id: int, position: int, rng: np.random.Generator) -> List[int]:
    """Object classes of one image: a balanced primary class plus 0-2 random ones, shuffled."""
    block = np.random.default_rng([seed, _BLOCK_STREAM, split_id, position // 20])
    primary = int(block.permutation(20)[position % 20]) + 1
    count = int(rng.choice(_NUM_OBJECTS, p=_NUM_OBJECTS_P))
    classes = [primary] + [int(c) for c in rng.integers(1, 21, count - 1)]
    rng.shuffle(classes)
    return classes


# --------------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------------
def _check_out_dir(out_dir: str, force: bool, marker: str = TOY_VOC_MARKER,
                   toy_format: str = TOY_VOC_FORMAT) -> bool:
    """Refuse a non-empty folder that is not a toy dataset of ``toy_format`` (its ``marker``
    file says so); returns whether it is one."""
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'--out {out_dir!r} is a file, expected a folder')
    toy = is_toy(out_dir, marker, toy_format)
    if osp.isdir(out_dir) and os.listdir(out_dir) and not toy and not force:
        raise FileExistsError(
            f'{out_dir!r} is not empty and is not a toy dataset (no valid {marker}); '
            'choose an empty or new folder, or pass force=True (--force) to write into it anyway')
    return toy


def _remove_stale(out_dir: str, keep: set) -> None:
    """Delete images/masks of an earlier toy dataset in ``out_dir`` that the new one lacks."""
    for sub in ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug'):
        folder = osp.join(out_dir, sub)
        if not osp.isdir(folder):
            continue
        for fname in os.listdir(folder):
            if _NAME_RE.match(fname) and osp.splitext(fname)[0] not in keep:
                os.remove(osp.join(folder, fname))


def _write_json(path: str, data: dict) -> None:
    with atomic_write(path) as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write('\n')


def save_image(image: Image.Image, path: str) -> None:
    """Write a toy image (``.jpg``: JPEG quality 90) or mask (``.png``) atomically, so a training
    that reads the dataset while it is re-made (same bytes) never sees a partial file."""
    fmt = 'JPEG' if path.endswith('.jpg') else 'PNG'
    with atomic_write(path, 'wb') as f:
        image.save(f, format=fmt, **({'quality': 90} if fmt == 'JPEG' else {}))


def make_toy_voc(out_dir: str, seed: int = 0, num_train: int = 600, num_val: int = 150,
                 size: int = 128, force: bool = False, num_test: int = 150) -> dict:
    """Write a deterministic toy dataset with the layout of ``VOCdevkit/VOC2012``.

    Regenerating into a folder made by this function replaces it (files of the old dataset that
    the new one lacks are removed). Any other non-empty folder is refused unless ``force``.

    Args:
        out_dir: Dataset root (created if needed); use it as ``--data-root`` of VOC configs.
        seed: Non-negative seed; the same arguments give byte-identical files.
        num_train: Number of training images (``train.txt``, ``train_aug.txt``).
        num_val: Number of validation images (``val.txt``): what thresholds, schedules and
            guards are chosen on.
        size: Nominal image side in pixels; each side is drawn from [0.75, 1.25] * size.
        force: Write into a non-empty folder that is not a toy dataset.
        num_test: Number of held-out test images (``test.txt``), drawn after the validation
            images; adding them leaves the train and val images unchanged.

    Returns:
        dict: Statistics per split: ``num_images``, ``mean_objects_per_image``,
        ``void_fraction`` and ``background_fraction`` (of all pixels), ``class_image_counts``
        and ``class_pixel_fractions`` (keyed by VOC class name), ``image_size`` (min/max H, W).

    Raises:
        ValueError: On out-of-range arguments.
        FileExistsError: If ``out_dir`` is a file, or a non-empty foreign folder without ``force``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if num_train < 1 or num_val < 0 or num_test < 0:
        raise ValueError(f'need num_train >= 1, num_val >= 0 and num_test >= 0, got {num_train}, '
                         f'{num_val} and {num_test}')
    if size < 32:
        raise ValueError(f'size must be >= 32 pixels, got {size}')
    was_toy = _check_out_dir(out_dir, force)

    counts = {'train': num_train, 'val': num_val, 'test': num_test}
    first = {'train': 0, 'val': num_train, 'test': num_train + num_val}
    names = {split: [toy_image_name(first[split] + i) for i in range(counts[split])]
             for split in SPLITS}
    if was_toy:
        _remove_stale(out_dir, set(names['train'] + names['val'] + names['test']))
    dirs = {sub: osp.join(out_dir, sub) for sub in
            ('JPEGImages', 'SegmentationClass', 'SegmentationClassAug', 'ImageSets/Segmentation')}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    args = dict(seed=seed, num_train=num_train, num_val=num_val, num_test=num_test, size=size)
    header = dict(format=TOY_VOC_FORMAT, version=TOY_VOC_VERSION, args=args,
                  class_styles={k: list(v) for k, v in TOY_CLASS_STYLES.items()})
    # Mark the folder first, so an interrupted run is still recognised as ours.
    _write_json(osp.join(out_dir, TOY_VOC_MARKER), dict(header, complete=False))

    palette = voc_palette()
    image_labels: Dict[str, List[int]] = {}
    stats: Dict[str, dict] = {}
    for split_id, split in enumerate(SPLITS):
        pixels = np.zeros(256, np.int64)
        images_with = np.zeros(256, np.int64)
        objects = 0
        heights, widths = [], []
        for position, name in enumerate(names[split]):
            index = first[split] + position
            rng = np.random.default_rng([seed, _IMAGE_STREAM, index])
            classes = _sample_classes(seed, split_id, position, rng)
            image, label, drawn = render_toy_sample(rng, size, classes)
            save_image(Image.fromarray(image), osp.join(dirs['JPEGImages'], f'{name}.jpg'))
            save_image(Image.fromarray(label), osp.join(dirs['SegmentationClassAug'], f'{name}.png'))
            seg = Image.fromarray(label)
            seg.putpalette(palette)
            save_image(seg, osp.join(dirs['SegmentationClass'], f'{name}.png'))

            hist = np.bincount(label.ravel(), minlength=256)
            pixels += hist
            images_with += hist > 0
            objects += drawn
            heights.append(label.shape[0])
            widths.append(label.shape[1])
            image_labels[name] = [c for c in range(1, len(VOC_CLASSES)) if hist[c]]
        total = max(int(pixels.sum()), 1)
        n = max(counts[split], 1)
        stats[split] = {
            'num_images': counts[split],
            'mean_objects_per_image': round(objects / n, 4),
            'void_fraction': round(float(pixels[IGNORE_INDEX]) / total, 6),
            'background_fraction': round(float(pixels[0]) / total, 6),
            'class_image_counts': {VOC_CLASSES[c]: int(images_with[c])
                                   for c in range(1, len(VOC_CLASSES))},
            'class_pixel_fractions': {VOC_CLASSES[c]: round(float(pixels[c]) / total, 6)
                                      for c in range(1, len(VOC_CLASSES))},
            'image_size': {'min_h': min(heights, default=0), 'max_h': max(heights, default=0),
                           'min_w': min(widths, default=0), 'max_w': max(widths, default=0)},
        }

    lists = {'train': names['train'], 'val': names['val'], 'test': names['test'],
             'trainval': names['train'] + names['val'], 'train_aug': names['train']}
    for list_name, items in lists.items():
        with open(osp.join(dirs['ImageSets/Segmentation'], f'{list_name}.txt'), 'w') as f:
            f.write(''.join(f'{item}\n' for item in items))
    write_image_labels(osp.join(out_dir, IMAGE_LABELS_FILE), image_labels)
    _write_json(osp.join(out_dir, TOY_VOC_MARKER), dict(header, complete=True, stats=stats))
    return stats
