"""Write the deterministic toy dataset with the layout of VOCdevkit/VOC2012.

Example::

    python tools/make_toy_voc.py --out data/toy_voc --seed 0
    python tools/train.py configs/... --data-root data/toy_voc
"""
import argparse
import json
import sys

from mmincseg.datasets.toy_voc import make_toy_voc


def parse_args() -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description='Write a toy VOC-layout segmentation dataset.')
    parser.add_argument('--out', required=True, help='dataset root (use it as --data-root)')
    parser.add_argument('--seed', type=int, default=0, help='non-negative random seed')
    parser.add_argument('--num-train', type=int, default=600, help='number of training images')
    parser.add_argument('--num-val', type=int, default=150, help='number of validation images')
    parser.add_argument('--num-test', type=int, default=150,
                        help='number of held-out test images (tables report them)')
    parser.add_argument('--size', type=int, default=128, help='nominal image side in pixels')
    parser.add_argument('--force', action='store_true',
                        help='write into a non-empty folder that is not a toy dataset')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        stats = make_toy_voc(args.out, seed=args.seed, num_train=args.num_train,
                             num_val=args.num_val, num_test=args.num_test, size=args.size,
                             force=args.force)
    except (FileExistsError, ValueError) as e:
        sys.exit(f'make_toy_voc: error: {e}')
    print(json.dumps(stats, indent=2, sort_keys=True))


if __name__ == '__main__':
    main()
