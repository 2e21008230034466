"""Image-level labels file of a VOC-layout dataset (used by weak supervision).

Format: one line per image, ``<image name> <class id> <class id> ...`` with the dataset's class
ids (VOC: 1..20; background is never listed). Path relative to the data root: :data:`IMAGE_LABELS_FILE`.
When the file is absent, labels are derived from the masks (see ``IncrementalVOCDataset``).
"""
import os.path as osp
from typing import Dict, List, Mapping, Sequence

from ..utils.io import atomic_write

IMAGE_LABELS_FILE = osp.join('ImageSets', 'Segmentation', 'cls_labels.txt')


def read_image_labels(path: str, num_classes: int = 21) -> Dict[str, List[int]]:
    """Read an image-level labels file into ``{name: sorted class ids}``.

    Args:
        path (str): The file.
        num_classes (int): Label values of the dataset, background included (VOC: 21).

    Raises:
        ValueError: on a malformed line, naming the file and line number.
    """
    labels: Dict[str, List[int]] = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                ids = sorted({int(p) for p in parts[1:]})
            except ValueError:
                raise ValueError(f'{path}:{lineno}: expected "<name> <class id> ...", got {line!r}')
            if any(not 1 <= i < num_classes for i in ids):
                raise ValueError(f'{path}:{lineno}: class ids must be in 1..{num_classes - 1}, '
                                 f'got {ids}')
            labels[parts[0]] = ids
    return labels


def write_image_labels(path: str, labels: Mapping[str, Sequence[int]]) -> None:
    """Write ``{name: class ids}`` atomically (temp file + rename)."""
    with atomic_write(path) as f:
        for name in sorted(labels):
            f.write(' '.join([name] + [str(int(i)) for i in sorted(set(labels[name]))]) + '\n')
