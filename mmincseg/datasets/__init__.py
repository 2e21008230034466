from .image_labels import IMAGE_LABELS_FILE, read_image_labels, write_image_labels
from .incremental_voc import IncrementalVOCDataset, select_step_images
from .samplers import SampleIndex, SeededSampler
from .transforms import CheckSegSample, LoadPseudoLabel

__all__ = ['IMAGE_LABELS_FILE', 'read_image_labels', 'write_image_labels', 'IncrementalVOCDataset',
           'select_step_images', 'SampleIndex', 'SeededSampler', 'CheckSegSample',
           'LoadPseudoLabel']
