"""Evaluate on a crop as MiB, PLOP and the seed do: the crop becomes the evaluated image."""
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CropIsImage(BaseTransform):
    """Make the (resized, cropped) image and mask the ones that are evaluated.

    The community's VOC protocol (MiB's ``crop_val``, PLOP, the seed) scores Resize(512) +
    CenterCrop(512) of each validation image and its mask, not the full image. mmseg resizes every
    prediction back to ``ori_shape`` before the metric, so after ``Resize`` and ``CenterCrop``
    (which transform image and mask alike) this transform sets ``ori_shape`` to the crop's size:
    predictions, metrics and ``tools/test.py --out`` PNGs are then of the crop.

    Required keys: ``img``. Modified keys: ``ori_shape``.
    """

    def transform(self, results: dict) -> dict:
        """Set ``results['ori_shape']`` to the current image size."""
        mask = results.get('gt_seg_map')
        size = tuple(results['img'].shape[:2])
        if mask is not None and tuple(mask.shape[:2]) != size:
            raise ValueError(
                f'CropIsImage: mask of {results.get("img_path")} has size {tuple(mask.shape)} but '
                f'its image {size}; put LoadAnnotations before Resize and CenterCrop so both are '
                'transformed alike')
        results['ori_shape'] = size
        return results
