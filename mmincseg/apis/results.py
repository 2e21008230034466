"""Run summaries: results.json, the paper-style markdown table and the mIoU-per-step plot."""
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence

from ..tasks import class_names, get_task
from ..utils.io import atomic_write

PSEUDO_LABEL_METRICS_FILE = 'pseudo_label_metrics.json'
SUMMARY_KEYS = ('mIoU', 'mIoU_old', 'mIoU_new', 'mIoU_base', 'mIoU_novel', 'aAcc')


def _num(v) -> Optional[float]:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else round(v, 2)


def _summary_metrics(metrics: dict) -> dict:
    return {key: _num(metrics.get(key)) for key in SUMMARY_KEYS}


def step_entry(step_result: dict) -> dict:
    """One ``steps[]`` entry of results.json from a step's ``step_result.json``.

    A step evaluated on a held-out test split (``test_metrics``) reports that split (``split:
    'test'``) and keeps its val numbers under ``val``; otherwise it reports val.
    """
    test = step_result.get('test_metrics')
    metrics = test if test else step_result.get('metrics', {})
    entry = {'step': step_result.get('step'),
             'classes': class_names(step_result.get('classes', [])),
             'split': 'test' if test else 'val'}
    entry.update(_summary_metrics(metrics))
    entry['per_class'] = {k[4:]: _num(v) for k, v in metrics.items() if k.startswith('IoU.')}
    if test:
        entry['val'] = _summary_metrics(step_result.get('metrics', {}))
    entry['train_seconds'] = step_result.get('train_seconds')
    return entry


def pseudo_label_miou(step_dir: str) -> Optional[float]:
    """mIoU of a weak step's pseudo-labels against the true masks (``pseudo_label_metrics.json``
    written by ``make_pseudo_labels(evaluate=True)``), None for steps on true masks."""
    path = osp.join(step_dir, PSEUDO_LABEL_METRICS_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return _num(json.load(f).get('mIoU'))


def fmt(v) -> str:
    """Format a metric for a markdown table ('-' when absent)."""
    return '-' if v is None else f'{v:.2f}'


def step_table(summary: dict) -> str:
    """Markdown table of every step of a run (old/new/all and the paper's base/novel columns;
    weakly supervised runs add the mIoU of each step's pseudo-labels)."""
    weak = any(s.get('pseudo_label_mIoU') is not None for s in summary['steps'])
    extra_title, extra_rule = (' pseudo-label mIoU |', '---:|') if weak else ('', '')
    lines = [
        '| step | classes | mIoU old | mIoU new | mIoU all | base (1-N) | novel | aAcc | train s |'
        + extra_title, '|---:|---|---:|---:|---:|---:|---:|---:|---:|' + extra_rule
    ]
    for s in summary['steps']:
        classes = ', '.join(s['classes'])
        if len(classes) > 40:
            classes = classes[:37] + '...'
        extra = f" {fmt(s.get('pseudo_label_mIoU'))} |" if weak else ''
        lines.append(f"| {s['step']} | {classes} | {fmt(s['mIoU_old'])} | {fmt(s['mIoU_new'])} "
                     f"| {fmt(s['mIoU'])} | {fmt(s['mIoU_base'])} | {fmt(s['mIoU_novel'])} "
                     f"| {fmt(s['aAcc'])} | {s.get('train_seconds') or '-'} |" + extra)
    return '\n'.join(lines)


def base_novel_columns(task: str) -> tuple:
    """Column titles of the paper's tables, e.g. ``('1-15', '16-20')`` for 15-5."""
    steps = get_task(task)
    base = steps[0]
    if len(steps) == 1:
        return f'1-{base[-1]}', '-'
    return f'1-{base[-1]}', f'{steps[1][0]}-{steps[-1][-1]}'


def mean_std(values: Sequence[Optional[float]]) -> str:
    """``mean +- std`` (population std) of the present values, ``-`` when none is; one value
    prints alone."""
    present = [v for v in values if v is not None]
    if not present:
        return '-'
    if len(present) == 1:
        return fmt(present[0])
    mean = sum(present) / len(present)
    std = math.sqrt(sum((v - mean)**2 for v in present) / len(present))
    return f'{mean:.2f} +- {std:.2f}'


def comparison_table(summaries: Sequence[dict], title: str = 'method') -> str:
    """The paper's Table 2 layout: one row per run, base / novel / all mIoU after the last step.

    Runs of the same name (``summary['name']``, else the method) share one row: mean +- std over
    them (e.g. training seeds), ``runs`` says how many. ``split`` is the split the numbers come
    from (``test`` when the steps evaluated a held-out test split).
    """
    if not summaries:
        return ''
    base_col, novel_col = base_novel_columns(summaries[0]['task'])
    groups: Dict[str, List[dict]] = {}
    for s in summaries:
        groups.setdefault(s.get('name') or s['method'], []).append(s)
    lines = [f'| {title} | {base_col} | {novel_col} | all | aAcc | split | runs '
             '| train s (all steps) |',
             '|---|---:|---:|---:|---:|---|---:|---:|']
    for label, runs in groups.items():
        lasts = [r['steps'][-1] for r in runs]
        seconds = [sum(x.get('train_seconds') or 0 for x in r['steps']) for r in runs]
        split = '/'.join(sorted({x.get('split', 'val') for x in lasts}))
        cells = [mean_std([x[k] for x in lasts]) for k in ('mIoU_base', 'mIoU_novel', 'mIoU',
                                                             'aAcc')]
        lines.append(f"| {label} | {' | '.join(cells)} | {split} | {len(runs)} "
                     f"| {sum(seconds) / len(seconds):.0f} |")
    return '\n'.join(lines)


def write_summary(work_dir: str, summary: dict) -> Dict[str, str]:
    """Write ``results.json``, ``results.md`` and ``miou_per_step.png`` into ``work_dir``."""
    paths = {k: osp.join(work_dir, n) for k, n in
             (('json', 'results.json'), ('md', 'results.md'), ('png', 'miou_per_step.png'))}
    with atomic_write(paths['json']) as f:
        json.dump(summary, f, indent=2)
    splits = sorted({s.get('split', 'val') for s in summary['steps']})
    md = (f"# {summary['method']} on {summary['task']} ({summary['setting']}, labels: "
          f"{summary['labels']})\n\nEvaluated on: {' + '.join(splits)} split.\n\n"
          f"{step_table(summary)}\n\nAfter the last step:\n\n"
          f'{comparison_table([summary])}\n')
    with atomic_write(paths['md']) as f:
        f.write(md)
    plot_miou_per_step([summary], paths['png'])
    return paths


def plot_miou_per_step(summaries: List[dict], path: str) -> None:
    """Plot mIoU all/old/new per step for one or more runs into a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for s in summaries:
        steps = [x['step'] for x in s['steps']]
        name = s.get('name') or s['method']
        for key, style in (('mIoU', '-o'), ('mIoU_base', '--s')):
            ys = [x[key] if x[key] is not None else float('nan') for x in s['steps']]
            ax.plot(steps, ys, style, label=f'{name} {key}')
    ax.set_xlabel('step')
    ax.set_ylabel('mIoU (%)')
    ax.set_title(f"{summaries[0]['task']} ({summaries[0]['setting']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_write(path, 'wb') as f:
        fig.savefig(f, dpi=100, format='png')
    plt.close(fig)
