"""Train one incremental step: ``python tools/train.py CONFIG [--work-dir DIR] [--data-root DIR]``.

Same CLI as mmseg's tools/train.py plus ``--data-root``, ``--force`` and ``--print-plan`` (print
the step's plan, train nothing). The step writes into ``<work-dir>/step<t>``; the previous step is
read from ``<work-dir>/step<t-1>``.
"""
import argparse
import os
import sys

from mmengine.config import DictAction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis.plan import plan_step  # noqa: E402
from mmincseg.apis.train import train_step  # noqa: E402
from mmincseg.apis import finish_distributed  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train one class-incremental step')
    parser.add_argument('config', help='step config (with an `incremental` block)')
    parser.add_argument('--work-dir', help='run directory; the step writes into DIR/step<t>')
    parser.add_argument('--data-root', help='VOC2012-layout dataset root for every dataset')
    parser.add_argument('--resume', action='store_true',
                        help='resume the step from the last checkpoint of its directory')
    parser.add_argument('--force', action='store_true',
                        help='retrain a finished step (its directory is moved aside first)')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. incremental.step=1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--print-plan', '--dry-run', action='store_true',
                        help="print the step's plan and exit without training")
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    try:
        if args.print_plan:
            print(plan_step(args.config, args.work_dir, args.data_root, args.cfg_options)[0])
            return
        train_step(args.config, work_dir=args.work_dir, data_root=args.data_root,
                   cfg_options=args.cfg_options, resume=args.resume, force=args.force,
                   amp=args.amp, launcher=args.launcher)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        sys.exit(f'error: {e}')
    finally:
        finish_distributed()


if __name__ == '__main__':
    main()
