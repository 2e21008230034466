"""Run every step of a split and write the run summary.

``python tools/run_incremental.py CONFIG --work-dir DIR [--data-root DIR] [--steps 0 1]``
CONFIG is any step config of the split. Finished steps are skipped; ``--resume`` continues a
crashed step; weakly supervised steps (``labels='seam'``) train their SEAM and make their
pseudo-labels first. Writes DIR/step<t>/, DIR/results.json, DIR/results.md,
DIR/miou_per_step.png. ``--print-plan`` (or ``--dry-run``) prints each step's plan instead.
"""
import argparse
import os
import sys

from mmengine.config import DictAction

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis.results import step_table  # noqa: E402
from mmincseg.apis.run import describe_run, run_incremental  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train all steps of a class-incremental split')
    parser.add_argument('config', help='any step config of the split')
    parser.add_argument('--work-dir', required=True, help='run directory')
    parser.add_argument('--data-root', help='VOC2012-layout dataset root for every dataset')
    parser.add_argument('--steps', type=int, nargs='+', help='only these steps')
    parser.add_argument('--resume', action='store_true', help='continue an interrupted step')
    parser.add_argument('--step0', help='reuse this finished step-0 directory (FT/LwF/ILT/MiB '
                        'share step 0)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='config overrides for every step')
    parser.add_argument('--print-plan', '--dry-run', action='store_true',
                        help="print each step's plan (classes, teacher, folders, pseudo-labels) "
                        'and exit without training')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        if args.print_plan:
            print(describe_run(args.config, args.work_dir, data_root=args.data_root,
                               steps=args.steps, cfg_options=args.cfg_options))
            return
        summary = run_incremental(args.config, args.work_dir, data_root=args.data_root,
                                  steps=args.steps, cfg_options=args.cfg_options,
                                  resume=args.resume, step0=args.step0)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        sys.exit(f'error: {e}')
    print(f"\n{summary['method']} {summary['task']} ({summary['setting']}, {summary['labels']})")
    print(step_table(summary))
    print(f'\nresults: {os.path.join(args.work_dir, "results.md")}')


if __name__ == '__main__':
    main()
