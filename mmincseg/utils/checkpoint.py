"""Checkpoint files: MMEngine's ``last_checkpoint`` record and the state dict inside a file."""
import os.path as osp
from collections.abc import Mapping
from typing import Any, Dict, Optional

#: MMEngine's CheckpointHook writes the path of the newest checkpoint of a run into this file.
LAST_CHECKPOINT = 'last_checkpoint'


def checkpoint_record(step_dir: str) -> str:
    """The ``last_checkpoint`` record of a step directory (it may not exist)."""
    return osp.join(step_dir, LAST_CHECKPOINT)


def recorded_checkpoint(step_dir: str) -> Optional[str]:
    """The checkpoint file a step directory's ``last_checkpoint`` record names.

    A record written on another machine or before the run directory moved names a path that no
    longer exists: the file of the same name inside ``step_dir`` is taken then.

    Returns:
        str, optional: The named path (which may not exist: callers check), or None when there is
        no record or it is empty.
    """
    record = checkpoint_record(step_dir)
    if not osp.isfile(record):
        return None
    with open(record) as f:
        named = f.read().strip()
    if not named:
        return None
    if not osp.isfile(named):
        moved = osp.join(step_dir, osp.basename(named))
        if osp.isfile(moved) or not osp.isabs(named):
            return moved
    return named


def unwrap_state_dict(checkpoint: Any, prefix: Optional[str] = None) -> Dict[str, Any]:
    """The state dict of a loaded checkpoint, as MMEngine's loaders read it.

    The ``state_dict`` entry when the file has one (else the mapping itself); with ``prefix``,
    only the keys under ``prefix.``, with it removed; without, a ``module.`` prefix (DDP) removed.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else {}
    if prefix is not None:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
