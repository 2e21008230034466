"""Refuse a training/validation sample whose mask does not fit its image."""
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegSample(BaseTransform):
    """Check that a sample's mask is a single-channel map of its image's original size.

    Placed right after ``LoadAnnotations`` (the dataset configs of ``configs/_base_/datasets``).
    A mask of another size (from another image, or resized) would otherwise be cropped and
    flipped beside the image and train on misaligned labels, or fail deep inside the loss. The
    image size is ``ori_shape`` (set by ``LoadImageFromFile``), so the check also works in test
    pipelines that resize the image before loading the mask. Samples without a loaded mask (the
    pseudo-label pipeline) pass unchecked.

    Required keys: ``img_path``, ``ori_shape`` or ``img``; optional ``gt_seg_map``,
    ``seg_map_path``.

    Raises:
        ValueError: naming the image and mask files, their sizes and the fix.
    """

    def transform(self, results: dict) -> dict:
        """Check ``results['gt_seg_map']`` against the image; return ``results`` unchanged."""
        mask = results.get('gt_seg_map')
        if mask is None:
            return results
        img_path = results.get('img_path')
        seg_path = results.get('seg_map_path')
        if mask.ndim != 2:
            raise ValueError(f'mask {seg_path} of image {img_path} has shape {tuple(mask.shape)}; '
                             'expected a single-channel (palette or grayscale) PNG of class '
                             'indices. Convert colour masks to class indices.')
        if results.get('ori_shape') is not None:
            size = tuple(results['ori_shape'][:2])
        elif results.get('img') is not None:
            size = tuple(results['img'].shape[:2])
        else:
            raise KeyError('CheckSegSample needs the image loaded first; put it after '
                           'LoadImageFromFile and LoadAnnotations in the pipeline')
        if tuple(mask.shape) != size:
            raise ValueError(
                f'mask {seg_path} has size {tuple(mask.shape)} (h, w) but its image {img_path} '
                f'has size {size}: they do not belong together (or one was resized). Restore '
                'the original pair, or remove the name from the split list.')
        return results
