"""Benchmark inference, incremental training steps, the data pipeline and SEAM; render the table.

Examples::

    python tools/analysis_tools/benchmark.py --json docs/benchmarks.json     # full, ~5-10 min CPU
    python tools/analysis_tools/benchmark.py --quick --json /tmp/bench.json  # tiny, smoke test
    python tools/analysis_tools/benchmark.py --render docs/benchmarks.json --md docs/benchmarks.md

The measuring helpers are the ``bench_*`` modules beside this script, imported as
``tools.analysis_tools.*`` from the repository root (put on ``sys.path`` below).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from tools.analysis_tools.bench_report import render_markdown  # noqa: E402
from tools.analysis_tools.bench_run import run_benchmark  # noqa: E402


def parse_args() -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description='mmincseg speed/memory benchmark.')
    parser.add_argument('--quick', action='store_true', help='tiny sizes (smoke test)')
    parser.add_argument('--json', help='write the benchmark document here')
    parser.add_argument('--device', help="'cpu' or 'cuda[:i]' (default: cuda if available)")
    parser.add_argument('--threads', type=int,
                        help='torch intra-op threads (default: one per core)')
    parser.add_argument('--data-root',
                        help='existing toy VOC for the pipeline section (default: generate one)')
    parser.add_argument('--render', metavar='JSON',
                        help='render an existing benchmark JSON instead of measuring')
    parser.add_argument('--md', help='write the markdown table here')
    args = parser.parse_args()
    if not (args.json or args.render or args.md):
        parser.error('give --json OUT to measure, and/or --render JSON --md OUT to render')
    if args.render and not args.md:
        parser.error('--render JSON needs --md OUT')
    return args


def _write(path: str, text: str) -> None:
    from mmincseg.utils.io import atomic_write
    with atomic_write(path) as f:
        f.write(text)


def main() -> None:
    args = parse_args()
    if args.render:
        try:
            with open(args.render) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit(f'benchmark: cannot read {args.render}: {e}. Run '
                     '`python tools/analysis_tools/benchmark.py --json OUT` first.')
    else:
        doc = run_benchmark(quick=args.quick, device=args.device, data_root=args.data_root,
                            threads=args.threads,
                            log=lambda msg: print(msg, file=sys.stderr, flush=True))
        if args.json:
            _write(args.json, json.dumps(doc, indent=2) + '\n')
            print(f'wrote {args.json}', file=sys.stderr)
    if args.md:
        _write(args.md, render_markdown(doc))
        print(f'wrote {args.md}', file=sys.stderr)
    for target in doc.get('targets', []):
        status = 'n/a' if target['met'] is None else ('met' if target['met'] else 'MISSED')
        print(f"{target['ratio']:40s} {target['value']!s:>10} {target['target']:>8}  {status}")


if __name__ == '__main__':
    main()
