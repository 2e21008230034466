from .backbones import SeedBiSeNetV1
from .decode_heads import IncrementalClassifier, make_incremental
from .losses import *  # noqa: F401,F403
from .seam import SEAMNet
from .segmentors import IncrementalEncoderDecoder
from .utils import init_novel_classifier

__all__ = ['SeedBiSeNetV1', 'IncrementalClassifier', 'make_incremental',
           'IncrementalEncoderDecoder', 'SEAMNet', 'init_novel_classifier']
