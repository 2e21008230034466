from .check_seg_sample import CheckSegSample
from .load_pseudo_label import LoadPseudoLabel, pseudo_label_path

__all__ = ['CheckSegSample', 'LoadPseudoLabel', 'pseudo_label_path']
