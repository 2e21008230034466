"""Toy image classification made from the toy VOC generator, for toy "ImageNet" pretraining.

Real runs fine-tune ImageNet weights; the toy runs fine-tune the weights of a ResNet trained on
this set (:mod:`mmincseg.apis.toy_pretrain`). Each image is drawn by the toy VOC generator itself
(:func:`~mmincseg.datasets.toy_voc.render_toy_sample`: the same 20 (shape, texture) classes,
colour families, occlusions and cluttered backgrounds), then resized so that its short side is
``image_size`` and centre-cropped to a square, so objects have the scale the toy segmentation
trains at (short side ~64). Its label is the class with the most pixels in the crop (the largest
visible object): single-label, as ImageNet, so a linear head with a softmax cross-entropy and
top-1 accuracy apply unchanged; the smaller objects of an image are its "clutter", as the other
things in an ImageNet photo are.

Images come from their own random stream (``[seed, CLASSIFICATION_STREAM, index]``), never the
segmentation images' (``[seed, _IMAGE_STREAM, index]``), so no pretraining image is a toy VOC image
of any seed. Everything is generated in memory and deterministic per (seed, index, sizes).
"""
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
from mmseg.registry import DATASETS
from torch.utils.data import Dataset

from mmincseg.datasets.toy_voc import TOY_RENDER_VERSION, render_toy_sample
from mmincseg.tasks import VOC_CLASSES

#: Bumped whenever the images or labels of a given (seed, index, sizes) change; part of the
#: pretrained-weights cache key together with
#: :data:`~mmincseg.datasets.toy_voc.TOY_RENDER_VERSION`.
TOY_CLASSIFICATION_VERSION = 1
#: Separates the classification images' random streams from the segmentation ones.
CLASSIFICATION_STREAM = 0xC1A55
#: The 20 toy object classes, label ``i`` is VOC class ``i + 1``.
TOY_CLASSIFICATION_CLASSES = tuple(VOC_CLASSES[1:])
_NUM_OBJECTS = (1, 2, 3)
_NUM_OBJECTS_P = (0.4, 0.35, 0.25)
_MAX_TRIES = 20


def toy_generator_version() -> str:
    """Version of everything that draws a classification image: ``voc<V>-cls<V>``."""
    return f'voc{TOY_RENDER_VERSION}-cls{TOY_CLASSIFICATION_VERSION}'


def _square_crop(image: np.ndarray, label: np.ndarray,
                 image_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Resize (short side ``image_size``, aspect kept) and centre-crop to a square."""
    h, w = label.shape
    scale = image_size / min(h, w)
    new_w, new_h = max(image_size, round(w * scale)), max(image_size, round(h * scale))
    image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    label = cv2.resize(label, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
    y0, x0 = (new_h - image_size) // 2, (new_w - image_size) // 2
    return (image[y0:y0 + image_size, x0:x0 + image_size],
            label[y0:y0 + image_size, x0:x0 + image_size])


def render_toy_classification_sample(seed: int, index: int, image_size: int = 64,
                                     render_size: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """Draw classification image ``index`` of ``seed``.

    Args:
        seed (int): Non-negative dataset seed.
        index (int): Image index (any non-negative int; sets are index ranges).
        image_size (int): Side of the square output image. Defaults to 64.
        render_size (int, optional): Nominal side the toy generator draws at (its objects and
            clutter scale with it). Defaults to ``2 * image_size`` (toy VOC images are ~128 px and
            trained at half size).

    Returns:
        tuple: RGB image (uint8, has a shape (image_size, image_size, 3)) and its label in
        0..19 (VOC class id - 1) of the object with the most pixels.
    """
    render_size = render_size or 2 * image_size
    rng = np.random.default_rng([seed, CLASSIFICATION_STREAM, index])
    primary = int(rng.integers(1, 21))
    for _ in range(_MAX_TRIES):
        count = int(rng.choice(_NUM_OBJECTS, p=_NUM_OBJECTS_P))
        classes = [primary] + [int(c) for c in rng.integers(1, 21, count - 1)]
        rng.shuffle(classes)
        image, label, _ = render_toy_sample(rng, render_size, classes)
        image, label = _square_crop(image, label, image_size)
        pixels = np.bincount(label.ravel(), minlength=256)[1:len(VOC_CLASSES)]
        if pixels.max() > 0:
            return np.ascontiguousarray(image), int(pixels.argmax())
    raise RuntimeError(f'toy classification image {index} of seed {seed}: no object visible in '
                       f'{_MAX_TRIES} tries (image_size={image_size}, render_size={render_size})')


def make_toy_classification(num_images: int, image_size: int = 64, seed: int = 0,
                            start_index: int = 0,
                            render_size: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Images ``start_index .. start_index + num_images - 1`` of the toy classification set.

    Args:
        num_images (int): How many images.
        image_size (int): Square side in pixels. Defaults to 64.
        seed (int): Non-negative seed. Defaults to 0.
        start_index (int): First image index: disjoint index ranges are disjoint sets (e.g. a
            held-out set after the training images). Defaults to 0.
        render_size (int, optional): See :func:`render_toy_classification_sample`.

    Returns:
        tuple: images (uint8 RGB, has a shape (N, image_size, image_size, 3)) and labels (int64,
        has a shape (N,), values 0..19).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if num_images < 1 or start_index < 0:
        raise ValueError(f'need num_images >= 1 and start_index >= 0, got {num_images} and '
                         f'{start_index}')
    if image_size < 16:
        raise ValueError(f'image_size must be >= 16 pixels, got {image_size}')
    images = np.empty((num_images, image_size, image_size, 3), np.uint8)
    labels = np.empty(num_images, np.int64)
    for i in range(num_images):
        images[i], labels[i] = render_toy_classification_sample(seed, start_index + i, image_size,
                                                                render_size)
    return images, labels


@DATASETS.register_module()
class ToyClassificationDataset(Dataset):
    """The :func:`make_toy_classification` images as a dataset for MMEngine's Runner.

    Generated in memory when built. Item ``i`` is ``dict(inputs=..., data_samples=...)``: the
    image as a uint8 tensor (has a shape (3, image_size, image_size), RGB) and its label (int), the
    form :class:`~mmincseg.apis.toy_pretrain.ToyImageClassifier` and mmengine's
    ``ImgDataPreprocessor`` take (collated by ``pseudo_collate``).

    Args:
        num_images (int): Number of images.
        image_size (int): Square side. Defaults to 64.
        seed (int): Seed. Defaults to 0.
        start_index (int): First image index. Defaults to 0.
        render_size (int, optional): See :func:`render_toy_classification_sample`.
        flip_prob (float): Probability of a horizontal flip per item (training augmentation;
            the flip is drawn from torch's generator, which the Runner seeds per worker).
            Defaults to 0.
    """
    METAINFO = dict(classes=TOY_CLASSIFICATION_CLASSES)

    def __init__(self, num_images: int, image_size: int = 64, seed: int = 0,
                 start_index: int = 0, render_size: Optional[int] = None,
                 flip_prob: float = 0.0):
        images, labels = make_toy_classification(num_images, image_size, seed, start_index,
                                                 render_size)
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        self.labels = labels.tolist()
        self.flip_prob = flip_prob
        self.metainfo = dict(self.METAINFO)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        image = self.images[index]
        if self.flip_prob > 0 and float(torch.rand(())) < self.flip_prob:
            image = image.flip(-1)
        return dict(inputs=image, data_samples=self.labels[index])
