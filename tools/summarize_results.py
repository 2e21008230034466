"""Compare runs in the paper's layout: ``python tools/summarize_results.py RUN_DIR... [--md OUT]``.

Each RUN_DIR holds a results.json written by tools/run_incremental.py. Prints (and optionally
writes) a markdown table with the base / novel / all mIoU after the last step of each run, and
a plot of mIoU per step of all runs; ``--per-class-md`` adds the IoU of every class after the last
step (runs of one name averaged, classes matched by name across class orders).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from mmincseg.apis.results import (comparison_table, per_class_table,  # noqa: E402
                                   plot_miou_per_step)


def main() -> None:
    parser = argparse.ArgumentParser(description='Compare incremental runs')
    parser.add_argument('runs', nargs='+', help='run directories with results.json')
    parser.add_argument('--names', nargs='+', help='row names (default: method)')
    parser.add_argument('--md', help='write the table to this markdown file')
    parser.add_argument('--png', help='write the mIoU-per-step plot of all runs here')
    parser.add_argument('--per-class-md',
                        help='write the IoU of every class after the last step (a column per '
                        'name) to this markdown file')
    args = parser.parse_args()
    summaries = []
    for i, run in enumerate(args.runs):
        path = os.path.join(run, 'results.json')
        if not os.path.isfile(path):
            sys.exit(f'error: {path} does not exist; run tools/run_incremental.py first')
        with open(path) as f:
            summary = json.load(f)
        if args.names:
            summary['name'] = args.names[i]
        summaries.append(summary)
    table = comparison_table(summaries)
    print(table)
    if args.md:
        with open(args.md, 'w') as f:
            f.write(table + '\n')
    if args.png:
        plot_miou_per_step(summaries, args.png)
    if args.per_class_md:
        with open(args.per_class_md, 'w') as f:
            f.write(per_class_table(summaries) + '\n')


if __name__ == '__main__':
    main()
