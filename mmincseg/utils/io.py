"""Small file helpers: every file mmincseg writes goes through a temp file + rename."""
import contextlib
import os
import os.path as osp
import tempfile
from typing import Iterator


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'w') -> Iterator:
    """Open a temporary file beside ``path`` and move it onto ``path`` only on success.

    An interrupted writer leaves no partial ``path`` (the temp file is removed). The file gets
    the permissions a plain ``open(path, 'w')`` would give (``mkstemp`` makes it owner-only).
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
