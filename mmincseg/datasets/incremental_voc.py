"""PASCAL VOC for one step of a class-incremental split (the generic mixin on mmseg's VOC)."""
import logging
import os.path as osp

from mmengine.logging import print_log
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS

from .incremental import (IncrementalDatasetMixin, check_images_exist,  # noqa: F401
                          default_cache_dir, read_mask_classes, scan_mask_classes,
                          select_step_images, train_label_map, val_label_map)

# VOC2012 + SBD (the protocol's 10582 training images) and plain VOC2012 (1464)
SBD_SPLIT, SBD_MASKS = 'train_aug.txt', 'SegmentationClassAug'
PLAIN_SPLIT, PLAIN_MASKS = 'train.txt', 'SegmentationClass'


@DATASETS.register_module()
class IncrementalVOCDataset(IncrementalDatasetMixin, PascalVOCDataset):
    """PASCAL VOC restricted to one step of a class-incremental split.

    Loading is mmseg's ``PascalVOCDataset``; selection, label maps, image-level labels and the
    class index cache are :class:`~mmincseg.datasets.incremental.IncrementalDatasetMixin`'s (the
    same for every dataset). Its arguments are the mixin's; ``**kwargs`` go to
    ``PascalVOCDataset`` (``ann_file``, ``data_root``, ``data_prefix``, ``pipeline``...).
    A VOC2012 without SBD trains on ``train.txt`` (:meth:`_before_loading`).
    """

    def _before_loading(self) -> None:
        """Train on ``train.txt`` + ``SegmentationClass/`` when a VOC2012 folder lacks SBD.

        Most people first have plain VOC2012 (1464 training masks); the protocol's 10582 images
        need the SBD extension (``SegmentationClassAug/``, ``train_aug.txt``). Without it the step
        trains on what there is, and one warning says how many images that is and how to add SBD.
        """
        if osp.isfile(self.ann_file) or osp.basename(self.ann_file) != SBD_SPLIT:
            return
        plain = osp.join(osp.dirname(self.ann_file), PLAIN_SPLIT)
        if not osp.isfile(plain):
            return  # the missing-split-list error names the SBD list
        seg_dir = self.data_prefix.get('seg_map_path', '')
        if osp.basename(seg_dir.rstrip('/')) == SBD_MASKS and not osp.isdir(seg_dir):
            self.data_prefix['seg_map_path'] = osp.join(osp.dirname(seg_dir.rstrip('/')),
                                                        PLAIN_MASKS)
        with open(plain) as f:
            count = sum(1 for line in f if line.strip())
        print_log(
            f'{self.ann_file} does not exist (VOC2012 without the SBD extension): training on the '
            f'{count} images of {plain} with masks from {self.data_prefix["seg_map_path"]}. The '
            f'protocol trains on the 10582 images of {SBD_SPLIT}: add SBD with mmseg\'s '
            f'tools/dataset_converters/voc_aug.py ({SBD_MASKS}/ and {SBD_SPLIT}).',
            logger='current', level=logging.WARNING)
        self.ann_file = plain
