from .backbones import SeedBiSeNetV1
from .classifiers import IncrementalClassifier, init_novel_classifier, make_incremental
from .losses import *  # noqa: F401,F403
from .seam import SEAMNet
from .segmentors import IncrementalEncoderDecoder
from .wilson import WilsonLocalizer

__all__ = ['SeedBiSeNetV1', 'IncrementalClassifier', 'make_incremental',
           'IncrementalEncoderDecoder', 'SEAMNet', 'init_novel_classifier',
           'WilsonLocalizer']
