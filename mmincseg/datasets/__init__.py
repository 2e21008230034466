from .image_labels import IMAGE_LABELS_FILE, read_image_labels, write_image_labels
from .incremental import (IncrementalDatasetMixin, build_incremental_dataset, dataset_class_names,
                          incremental_dataset_class, select_step_images)
from .incremental_voc import IncrementalVOCDataset
from .samplers import NoSingletonBatchSampler, SampleIndex, SeededSampler
from .transforms import CheckSegSample, LoadPseudoLabel

__all__ = ['IMAGE_LABELS_FILE', 'read_image_labels', 'write_image_labels', 'IncrementalVOCDataset',
           'IncrementalDatasetMixin', 'build_incremental_dataset', 'dataset_class_names',
           'incremental_dataset_class', 'select_step_images', 'NoSingletonBatchSampler', 'SampleIndex', 'SeededSampler',
           'CheckSegSample', 'LoadPseudoLabel']
