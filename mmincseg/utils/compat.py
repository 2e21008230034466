"""Compatibility shims for the pinned OpenMMLab stack on current torch / numpy.

Each shim names the upstream problem it works around. They act through public extension points
(mmengine's checkpoint scheme registry), never by editing or monkey-patching site-packages.
"""
import os.path as osp

import torch
from mmengine.runner import CheckpointLoader


# Upstream: torch >= 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.7
# calls ``torch.load(filename, map_location)`` for local files, and its own checkpoints hold
# ``message_hub`` state (numpy scalars, HistoryBuffer objects) that the weights-only unpickler
# rejects, so ``--resume`` and ``load_from`` of any mmengine checkpoint fail. We register a local
# loader through mmengine's public scheme registry that loads full checkpoints, as mmengine did
# on the torch releases it was written for. Checkpoints are code-equivalent, trusted files.
@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None) -> dict:
    """Load a local mmengine/PyTorch checkpoint (full pickle, as on torch < 2.6).

    Raises:
        FileNotFoundError: naming the missing file.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename} does not exist')
    return torch.load(filename, map_location=map_location, weights_only=False)
