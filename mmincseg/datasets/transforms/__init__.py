from .load_pseudo_label import LoadPseudoLabel, pseudo_label_path

__all__ = ['LoadPseudoLabel', 'pseudo_label_path']
