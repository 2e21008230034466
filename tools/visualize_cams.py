"""Show SEAM CAMs: ``image | CAM of each labelled class | pseudo-label | true mask`` per image.

``python tools/visualize_cams.py SEAM_CONFIG SEAM_CHECKPOINT --out DIR [--names N1 N2 | --num 4]
[--data-root DIR] [--cfg-options ...]`` writes ``DIR/<image name>_cams.png``.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis.seam import visualize_cams  # noqa: E402
from mmincseg.utils.cli import add_data_model_options  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Visualise SEAM CAMs and pseudo-labels')
    parser.add_argument('config', help='SEAM config (configs/seam/)')
    parser.add_argument('checkpoint', help='SEAMNet checkpoint of that step')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--names', nargs='+', help='image names (default: the first --num)')
    parser.add_argument('--num', type=int, default=4, help='number of images without --names')
    add_data_model_options(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        files = visualize_cams(args.config, args.checkpoint, args.out, names=args.names,
                               num_images=args.num, data_root=args.data_root,
                               cfg_options=args.cfg_options, device=args.device)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    print('\n'.join(files))


if __name__ == '__main__':
    main()
