"""mmincseg: class-incremental semantic segmentation for MMSegmentation 1.x.

Importing the package registers its datasets, transforms, models, losses, hooks, metrics and
runner in mmseg's registries (configs load it with ``custom_imports=dict(imports=['mmincseg'])``).
"""
from .version import __version__
from . import utils  # noqa: F401  (compat shims first)
from . import datasets, engine, evaluation, models  # noqa: F401,E402
from . import apis  # noqa: F401,E402  (the orchestration: resolver and IncrementalRunner)

__all__ = ['__version__']
