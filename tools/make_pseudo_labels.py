"""Write SEAM pseudo-labels of a step's training images.

``python tools/make_pseudo_labels.py SEAM_CONFIG SEAM_CHECKPOINT --out DIR [--eval] [--force]
[--data-root DIR] [--cfg-options incremental.step=2]``
One palette PNG of class ids per image, ``DIR/<image name>.png``; existing files are kept unless
``--force``. ``--eval`` also writes the pseudo-label mIoU against the true masks to
``DIR/../pseudo_label_metrics.json``. A weak step config reads them from
``<run>/step<t>/pseudo_labels`` (tools/run_incremental.py makes them by itself).
"""
import argparse
import json
import os
import sys

from mmengine.config import DictAction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis.seam import make_pseudo_labels  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Make SEAM pseudo-labels of one step')
    parser.add_argument('config', help='SEAM config (configs/seam/)')
    parser.add_argument('checkpoint', help='SEAMNet checkpoint of that step')
    parser.add_argument('--out', required=True, help='folder of the pseudo-label PNGs')
    parser.add_argument('--eval', action='store_true',
                        help='also measure pseudo-label mIoU against the true masks')
    parser.add_argument('--force', action='store_true', help='re-make existing files')
    parser.add_argument('--data-root', help='VOC2012-layout dataset root for every dataset')
    parser.add_argument('--device', help='torch device (default: cuda if available)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. incremental.step=2')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        result = make_pseudo_labels(args.config, args.checkpoint, args.out,
                                    data_root=args.data_root, cfg_options=args.cfg_options,
                                    force=args.force, evaluate=args.eval, device=args.device)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
