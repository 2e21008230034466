"""Write the deterministic toy dataset with the layout of ADE20K (ADEChallengeData2016).

Example::

    python tools/make_toy_ade.py --out data/toyade --seed 0
    python tools/run_incremental.py configs/mib/bisenet_r18_toyade_100-50_step0.py \
        --data-root data/toyade --work-dir work_dirs/toyade_mib
"""
import argparse
import json
import sys

from mmincseg.datasets.toy_ade import make_toy_ade


def parse_args() -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description='Write a toy ADE20K-layout dataset.')
    parser.add_argument('--out', required=True, help='dataset root (use it as --data-root)')
    parser.add_argument('--seed', type=int, default=0, help='non-negative random seed')
    parser.add_argument('--num-train', type=int, default=1500, help='number of training images')
    parser.add_argument('--num-val', type=int, default=300, help='number of validation images')
    parser.add_argument('--size', type=int, default=96, help='nominal image side in pixels')
    parser.add_argument('--force', action='store_true',
                        help='write into a non-empty folder that is not a toy dataset')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        stats = make_toy_ade(args.out, seed=args.seed, num_train=args.num_train,
                             num_val=args.num_val, size=args.size, force=args.force)
    except (FileExistsError, ValueError) as e:
        sys.exit(f'make_toy_ade: error: {e}')
    summary = {split: {k: v for k, v in s.items() if k != 'class_image_counts'}
               for split, s in stats.items()}
    print(json.dumps(summary, indent=2, sort_keys=True))


if __name__ == '__main__':
    main()
