"""Share of the training-batch pixels that are batch padding (outside each sample's image).

Examples::

    # the toy pipeline (the real dataloader of a step config)
    python tools/analysis_tools/padding_share.py configs/mib/bisenet_r18_toyvoc_15-5_step1.py \
        --data-root data/toyvoc --batch-size 8 --epochs 3
    # the VOC pipeline on a synthetic folder of VOC's image sizes (375 x 500 and 500 x 375)
    python tools/analysis_tools/padding_share.py configs/mib/bisenet_r18_voc_15-5_step1.py \
        --synthetic-voc /tmp/sized_voc --batch-size 16
"""
import argparse
import json
import os
import sys
import tempfile

from mmengine.config import DictAction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from mmincseg.apis.train import load_step_config  # noqa: E402
from tools.analysis_tools.batch_padding import padding_share, write_sized_voc  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description='Measure the batch padding of training batches')
    parser.add_argument('config', help='step config (with an `incremental` block)')
    parser.add_argument('--data-root', help='VOC2012-layout dataset root')
    parser.add_argument('--synthetic-voc', metavar='DIR',
                        help='write a VOC-layout folder of VOC image sizes here and measure on it')
    parser.add_argument('--sizes', default='375x500,500x375',
                        help='image sizes HxW of --synthetic-voc (default: %(default)s)')
    parser.add_argument('--num-images', type=int, default=64,
                        help='images of --synthetic-voc (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, help='override train_dataloader.batch_size')
    parser.add_argument('--epochs', type=int, default=1, help='passes over the training set')
    parser.add_argument('--stride', type=int, default=8,
                        help='output stride of the distilled logits (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    data_root = args.data_root
    if args.synthetic_voc:
        sizes = [tuple(int(v) for v in s.split('x')) for s in args.sizes.split(',')]
        data_root = write_sized_voc(args.synthetic_voc, sizes, args.num_images, args.seed)
    with tempfile.TemporaryDirectory() as work_dir:
        cfg = load_step_config(args.config, work_dir=work_dir, data_root=data_root,
                               cfg_options=args.cfg_options)
        result = padding_share(cfg, args.epochs, args.batch_size, args.stride, args.seed)
    print(json.dumps(result, indent=1))
    print(f"share of distilled pixels that were padding: before "
          f"{100 * result['pixel_share']:.2f}% of the pixels "
          f"({100 * result['cell_share']:.2f}% of the 1/{args.stride} logit cells), after 0%")


if __name__ == '__main__':
    main()
