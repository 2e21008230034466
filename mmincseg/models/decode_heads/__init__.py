from .incremental_classifier import IncrementalClassifier, incremental_classifiers, make_incremental

__all__ = ['IncrementalClassifier', 'incremental_classifiers', 'make_incremental']
