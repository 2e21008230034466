"""Replace a training image's mask by its SEAM pseudo-label (weakly supervised steps)."""
import os.path as osp
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import fileio
from mmseg.registry import TRANSFORMS

from ...tasks import IGNORE_INDEX

FIX_HINT = ('Make the pseudo-labels of this step with `python tools/make_pseudo_labels.py '
            'SEAM_CONFIG SEAM_CHECKPOINT --out {dir}` (tools/run_incremental.py does it by itself '
            "for configs with incremental.labels='seam').")


def pseudo_label_path(pseudo_label_dir: str, img_path: str) -> str:
    """``<pseudo_label_dir>/<image name>.png``, the pseudo-label file of an image."""
    name = osp.splitext(osp.basename(img_path))[0]
    return osp.join(pseudo_label_dir, f'{name}.png')


@TRANSFORMS.register_module()
class LoadPseudoLabel(BaseTransform):
    """Replace ``results['gt_seg_map']`` by the image's pseudo-label PNG.

    Placed right after ``LoadAnnotations`` in the training pipeline of a weakly supervised step
    (the resolver inserts it when ``incremental.labels='seam'``), so every later transform (crop,
    flip...) sees the pseudo-label instead of the true mask. Validation pipelines keep the true
    masks. The file is ``<pseudo_label_dir>/<image name>.png`` (class indices, palette or
    grayscale), as written by :func:`mmincseg.apis.seam.make_pseudo_labels`.

    Required keys: ``img_path``, ``img`` or ``gt_seg_map`` (for the size check).
    Modified keys: ``gt_seg_map`` (added to ``seg_fields`` when missing).
    Added keys: ``pseudo_label_path``.

    Args:
        pseudo_label_dir (str): Folder of the pseudo-label PNGs.
        classes (Sequence[int]): Class ids the pseudo-labels may hold besides background 0 and
            ignore 255 (the classes of the step, C_t).
        generate (bool): Reserved for on-the-fly generation, which is not supported: pseudo-labels
            are made before training (``tools/make_pseudo_labels.py``). Must be False.
        backend_args (dict, optional): File backend arguments of ``mmengine.fileio``.

    Raises:
        FileNotFoundError: a pseudo-label is missing (naming the file and how to make it).
        ValueError: a pseudo-label's size differs from the image's, or it holds other classes.
    """

    def __init__(self,
                 pseudo_label_dir: str,
                 classes: Sequence[int],
                 generate: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        if generate:
            raise ValueError('LoadPseudoLabel(generate=True) is not supported: pseudo-labels are '
                             'made before training, not in the data pipeline. ' +
                             FIX_HINT.format(dir=pseudo_label_dir))
        self.pseudo_label_dir = pseudo_label_dir
        self.classes = sorted({int(c) for c in classes})
        self.generate = generate
        self.backend_args = backend_args
        self._valid = np.zeros(256, dtype=bool)
        self._valid[[0, IGNORE_INDEX, *self.classes]] = True

    def transform(self, results: dict) -> dict:
        """Load and check the pseudo-label of ``results['img_path']``.

        Args:
            results (dict): Result dict of the previous transforms.

        Returns:
            dict: ``results`` with ``gt_seg_map`` replaced.
        """
        path = pseudo_label_path(self.pseudo_label_dir, results['img_path'])
        if not fileio.exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(f'pseudo-label {path} of image {results["img_path"]} does not '
                                    'exist. ' + FIX_HINT.format(dir=self.pseudo_label_dir))
        try:
            label = mmcv.imfrombytes(
                fileio.get(path, backend_args=self.backend_args), flag='unchanged',
                backend='pillow')
        except Exception as e:  # truncated / non-image files raise several types
            raise ValueError(f'cannot read pseudo-label {path}: {e}. Delete it and ' +
                             FIX_HINT.format(dir=self.pseudo_label_dir)) from e
        if label is None or label.ndim != 2:
            shape = None if label is None else label.shape
            raise ValueError(f'pseudo-label {path} has shape {shape}; expected a single-channel '
                             'PNG of class indices. ' + FIX_HINT.format(dir=self.pseudo_label_dir))
        for what, size in self._reference_sizes(results):
            if tuple(label.shape) != size:
                raise ValueError(
                    f'pseudo-label {path} has size {tuple(label.shape)} (h, w) but the {what} of '
                    f'image {results["img_path"]} has size {size}; it was made for another image '
                    'or resized. Re-make it with --force: ' +
                    FIX_HINT.format(dir=self.pseudo_label_dir))
        label = label.astype(np.uint8)
        bad = ~self._valid[label]
        if bad.any():
            values = sorted(np.unique(label[bad]).tolist())
            raise ValueError(
                f'pseudo-label {path} holds class ids {values}, outside the classes of this step '
                f'{{0}} + {self.classes} + {{255}}; it was made by a SEAM model of another step or '
                'split. Re-make it with the SEAM config of this step and --force: ' +
                FIX_HINT.format(dir=self.pseudo_label_dir))
        results['gt_seg_map'] = label
        results['pseudo_label_path'] = path
        seg_fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in seg_fields:
            seg_fields.append('gt_seg_map')
        return results

    @staticmethod
    def _reference_sizes(results: dict) -> list:
        """(what, (h, w)) of the loaded image and true mask."""
        sizes = [(what, tuple(results[key].shape[:2]))
                 for what, key in (('true mask', 'gt_seg_map'), ('image', 'img'))
                 if results.get(key) is not None]
        if not sizes and results.get('ori_shape') is not None:
            sizes.append(('image', tuple(results['ori_shape'][:2])))
        if not sizes:
            raise KeyError('LoadPseudoLabel needs the image or its mask loaded first; put it after '
                           'LoadImageFromFile and LoadAnnotations in the pipeline')
        return sizes

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(pseudo_label_dir={self.pseudo_label_dir!r}, '
                f'classes={self.classes}, generate={self.generate})')
