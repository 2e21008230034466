"""Pseudo-label mIoU of a SEAM checkpoint for several background scores, to choose on val.

``python tools/seam_alpha_sweep.py SEAM_CONFIG SEAM_CHECKPOINT --alphas 0.16 0.21 0.26 0.31
[--images val|train] [--ann-file LIST] [--out FILE.json] [--data-root DIR]
[--cfg-options incremental.step=2]`` labels the step's images of the SEAM config's validation
set (VOC: the masks of VOC train, SEAM's protocol; ``--ann-file
ImageSets/Segmentation/val.txt``: the val list, same folders) or of its training set
(``--images train``, the images that get pseudo-labels) and prints one line per alpha (mIoU,
aAcc, share of ignored pixels) and the best one; ``--out`` also writes the whole record as JSON
(refusing to overwrite an existing file). A weak run's SEAM of step t: its SEAM config
(configs/seam/) with ``--cfg-options incremental.step=t`` and the checkpoint
``RUN/step<t>/seam/epoch_*.pth``.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis.seam import sweep_bg_alpha  # noqa: E402
from mmincseg.utils.cli import add_data_model_options  # noqa: E402
from mmincseg.utils.io import atomic_write  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Sweep the SEAM background score (bg_alpha)')
    parser.add_argument('config', help='SEAM config (configs/seam/)')
    parser.add_argument('checkpoint', help='SEAMNet checkpoint of that step')
    parser.add_argument('--alphas', nargs='+', type=float, required=True,
                        help='background scores to try, each in (0, 1]')
    parser.add_argument('--images', choices=('val', 'train'), default='val',
                        help="the SEAM config's validation dataset (default) or its training "
                        'dataset')
    parser.add_argument('--ann-file', help="image list relative to the data root instead of "
                        "that dataset's, e.g. ImageSets/Segmentation/val.txt")
    parser.add_argument('--out', help='also write the record to this JSON file (must not exist)')
    add_data_model_options(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.out and osp.exists(args.out):
        sys.exit(f'error: --out {args.out} exists; give another file or remove it')
    try:
        result = sweep_bg_alpha(args.config, args.checkpoint, args.alphas,
                                loader=f'{args.images}_dataloader', ann_file=args.ann_file,
                                data_root=args.data_root, cfg_options=args.cfg_options,
                                device=args.device)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    print(f"{result['task']} step {result['step']}: {result['num_images']} images of "
          f"{result['images']}")
    for record in result['alphas']:
        print(f"bg_alpha {record['bg_alpha']:.3f}: mIoU {record['mIoU']:.2f}  aAcc "
              f"{record['aAcc']:.2f}  ignored {record['ignored_fraction']}")
    print(f"best: bg_alpha {result['best']}")
    if args.out:
        with atomic_write(args.out) as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
