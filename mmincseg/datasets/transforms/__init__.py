from .check_seg_sample import CheckSegSample
from .eval_crop import CropIsImage
from .load_pseudo_label import LoadPseudoLabel, pseudo_label_path

__all__ = ['CheckSegSample', 'CropIsImage', 'LoadPseudoLabel', 'pseudo_label_path']
