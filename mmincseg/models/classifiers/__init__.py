from .incremental_classifier import (IncrementalClassifier, check_head_config,
                                     incremental_classifiers, make_incremental)
from .novel_init import init_novel_classifier

__all__ = ['IncrementalClassifier', 'check_head_config', 'incremental_classifiers',
           'init_novel_classifier', 'make_incremental']
