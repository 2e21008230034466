from .incremental_classifier import (IncrementalClassifier, check_head_config,
                                     incremental_classifiers, make_incremental)

__all__ = ['IncrementalClassifier', 'check_head_config', 'incremental_classifiers',
           'make_incremental']
