"""Show what a WILSON step learned from: ``image | target of each labelled new class |
pseudo-label | true mask`` per training image of the step (WILSON's counterpart of
``tools/visualize_cams.py``).

``python tools/visualize_localizer.py CONFIG --work-dir RUN --step 1 --out DIR [--names N1 N2 |
--num 4] [--data-root DIR] [--cfg-options ...]`` reads the finished step ``RUN/step<t>`` (and
its previous step, the teacher) and writes ``DIR/<image name>_localizer.png``.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis import plan_step  # noqa: E402
from mmincseg.apis.wilson import visualize_localizer  # noqa: E402
from mmincseg.utils.cli import add_data_model_options  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Visualise a WILSON step's online targets")
    parser.add_argument('config', help='a WILSON step config (configs/wilson/)')
    parser.add_argument('--work-dir', required=True, help='the run directory holding step<t>/')
    parser.add_argument('--step', type=int, default=1, help='the WILSON step (default 1)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--names', nargs='+', help='image names (default: the first --num)')
    parser.add_argument('--num', type=int, default=4, help='number of images without --names')
    add_data_model_options(parser, cfg_help='override config keys as the run did')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        plan, cfg = plan_step(args.config, work_dir=args.work_dir, data_root=args.data_root,
                              cfg_options=args.cfg_options, step=args.step)
        files = visualize_localizer(plan, cfg, args.out, names=args.names,
                                    num_images=args.num, device=args.device)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    print('\n'.join(files))


if __name__ == '__main__':
    main()
