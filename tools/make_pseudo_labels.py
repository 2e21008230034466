"""Write SEAM pseudo-labels of a step's training images.

``python tools/make_pseudo_labels.py WEAK_CONFIG --work-dir RUN [--data-root DIR]
[--cfg-options incremental.step=2]``: everything from the weak step's plan (its SEAM config,
trained into ``RUN/step<t>/seam`` unless finished; the PNGs into ``RUN/step<t>/pseudo_labels``,
where the step reads them; their mIoU against the true masks into
``RUN/step<t>/pseudo_label_metrics.json``). tools/run_incremental.py does this by itself.

``python tools/make_pseudo_labels.py SEAM_CONFIG SEAM_CHECKPOINT --out DIR [--eval] [--force]
[--data-root DIR] [--cfg-options incremental.step=2]``: a given SEAM checkpoint, any folder.
One palette PNG of class ids per image, ``DIR/<image name>.png``; existing files are kept unless
``--force``. ``--eval`` also writes the pseudo-label mIoU against the true masks to
``DIR/../pseudo_label_metrics.json``.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis.seam import make_pseudo_labels, pseudo_labels_of_step  # noqa: E402
from mmincseg.utils.cli import add_data_model_options  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Make SEAM pseudo-labels of one step')
    parser.add_argument('config', help='weak step config (configs/*_seam/), or a SEAM config '
                        '(configs/seam/) with its checkpoint')
    parser.add_argument('checkpoint', nargs='?',
                        help='SEAMNet checkpoint of that step (with a SEAM config only)')
    parser.add_argument('--out', help='folder of the pseudo-label PNGs (with a SEAM checkpoint; '
                        "a weak config writes where its step reads them)")
    parser.add_argument('--work-dir', help='run directory of the weak config (RUN/step<t>/...)')
    parser.add_argument('--eval', action='store_true',
                        help='also measure pseudo-label mIoU against the true masks')
    parser.add_argument('--force', action='store_true', help='re-make existing files')
    add_data_model_options(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.checkpoint is None:
        if args.out or args.force or args.device:
            sys.exit('error: --out/--force/--device go with a SEAM config and its checkpoint; a '
                     'weak step config writes into RUN/step<t>/pseudo_labels (its plan)')
        try:
            plan, result = pseudo_labels_of_step(args.config, args.work_dir, args.data_root,
                                                 args.cfg_options)
        except (ValueError, FileNotFoundError) as e:
            sys.exit(f'error: {e}')
        print(json.dumps(dict(result, step=plan.step, seam_dir=plan.seam_dir), indent=2))
        return
    if not args.out:
        sys.exit('error: --out DIR is required with a SEAM checkpoint')
    try:
        result = make_pseudo_labels(args.config, args.checkpoint, args.out,
                                    data_root=args.data_root, cfg_options=args.cfg_options,
                                    force=args.force, evaluate=args.eval, device=args.device)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
