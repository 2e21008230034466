from .compat import load_from_local
from .io import atomic_write

__all__ = ['load_from_local', 'atomic_write']
