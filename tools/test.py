"""Evaluate a step checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out DIR]``.

Reports mIoU / mIoU_old / mIoU_new / mIoU_base / mIoU_novel / aAcc and per-class IoU with the
same dataset, pipeline and metric as the end-of-training validation. ``--out DIR`` writes one
PNG of class indices per image (``DIR/<name>.png``, original size).
"""
import argparse
import json
import os
import sys

from mmengine.config import DictAction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis.train import test_step  # noqa: E402
from mmincseg.apis import finish_distributed  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test one class-incremental step')
    parser.add_argument('config', help='step config')
    parser.add_argument('checkpoint', help='checkpoint file of that step')
    parser.add_argument('--work-dir', help='run directory (logs go to DIR/step<t>)')
    parser.add_argument('--data-root', help='VOC2012-layout dataset root for every dataset')
    parser.add_argument('--out', help='write prediction PNGs (class indices) into this folder')
    parser.add_argument('--show-dir', help='write prediction overlays into this folder')
    parser.add_argument('--json', help='also write the metrics to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    try:
        metrics = test_step(args.config, args.checkpoint, work_dir=args.work_dir,
                            data_root=args.data_root, cfg_options=args.cfg_options,
                            out=args.out, show_dir=args.show_dir, launcher=args.launcher)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    finally:
        finish_distributed()
    if args.json and int(os.environ.get('RANK', '0')) == 0:
        with open(args.json, 'w') as f:
            json.dump(metrics, f, indent=2)
    print(json.dumps({k: v for k, v in metrics.items() if not k.startswith('IoU.')}))


if __name__ == '__main__':
    main()
