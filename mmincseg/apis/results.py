"""Run summaries: results.json, the paper-style markdown table, the mIoU-per-step plot and the
per-class x per-step IoU heatmap (the picture of forgetting)."""
import json
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence

from ..tasks import NUM_VOC_CLASSES, class_names, split_sizes
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
    names = step_result.get('class_names')  # datasets other than VOC name their classes
    entry = {'step': step_result.get('step'),
             'classes': class_names(step_result.get('classes', []), *([names] if names else [])),
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


def base_novel_columns(task: str, num_classes: int = NUM_VOC_CLASSES) -> tuple:
    """Column titles of the paper's tables, e.g. ``('1-15', '16-20')`` for VOC 15-5,
    ``('1-100', '101-150')`` for ADE20K 100-50: the first classes learned and the later ones
    (with a class order: the first 100 of the order)."""
    sizes = split_sizes(task, num_classes)
    if len(sizes) == 1:
        return f'1-{sizes[0]}', '-'
    return f'1-{sizes[0]}', f'{sizes[0] + 1}-{sum(sizes)}'


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
    them (training seeds, class orders: per-class IoUs are keyed by class, so runs of different
    orders average as they are), ``runs`` says how many. ``split`` is the split the numbers come
    from (``test`` when the steps evaluated a held-out test split).
    """
    if not summaries:
        return ''
    base_col, novel_col = base_novel_columns(summaries[0]['task'],
                                             summaries[0].get('num_classes', NUM_VOC_CLASSES))
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


def per_class_table(summaries: Sequence[dict], title: str = 'class') -> str:
    """IoU of every class after the last step: one row per class, one column per run name.

    Runs of one name share a column (mean +- std over them, as :func:`comparison_table`); a
    class is found by its name, so runs of different class orders line up by the original
    class. Rows follow the first appearance of each class in the runs' last steps (the first
    run's channel order), background first; ``-`` where a run has no IoU for the class.
    """
    groups: Dict[str, List[dict]] = {}
    for s in summaries:
        groups.setdefault(s.get('name') or s['method'], []).append(s['steps'][-1])
    rows: List[str] = []
    for lasts in groups.values():
        for last in lasts:
            rows += [n for n in last.get('per_class', {}) if n not in rows]
    lines = [f"| {title} | {' | '.join(groups)} |", '|---|' + '---:|' * len(groups)]
    for name in rows:
        cells = [mean_std([x.get('per_class', {}).get(name) for x in lasts])
                 for lasts in groups.values()]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return '\n'.join(lines)


def write_summary(work_dir: str, summary: dict) -> Dict[str, str]:
    """Write ``results.json``, ``results.md``, ``miou_per_step.png`` and the per-class IoU
    heatmap ``per_class_iou.png`` into ``work_dir``."""
    paths = {k: osp.join(work_dir, n) for k, n in
             (('json', 'results.json'), ('md', 'results.md'), ('png', 'miou_per_step.png'),
              ('heatmap', 'per_class_iou.png'))}
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
    plot_per_class_iou(summary, paths['heatmap'])
    return paths


def per_class_matrix(summary: dict) -> tuple:
    """Per-class IoU of every step: ``(class names, steps, matrix)``, the matrix of shape
    (num classes, num steps), NaN where a class is not learned yet (or has no pixels). Classes
    in the order they were learned (the metric's channel order), background left out."""
    names: List[str] = []
    for entry in summary['steps']:
        names += [n for n in entry.get('per_class', {}) if n not in names and n != 'background']
    steps = [entry['step'] for entry in summary['steps']]
    matrix = [[float('nan') if entry.get('per_class', {}).get(n) is None
               else entry['per_class'][n] for entry in summary['steps']] for n in names]
    return names, steps, matrix


def plot_per_class_iou(summary: dict, path: str) -> None:
    """The picture of forgetting: a class x step heatmap of IoU (%), rows in the order the
    classes were learned, a line under each step's new classes; readable for 150 classes
    (row height and label size follow the class count)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    names, steps, matrix = per_class_matrix(summary)
    if not names:
        return
    data = np.asarray(matrix, dtype=float)
    rows = len(names)
    font = 7 if rows <= 40 else max(4.5, 7 - rows / 60)  # points
    height = min(max(3.0, 1.0 + rows * (font + 2.5) / 72), 30.0)  # a text line per row
    width = min(max(3.5, 2.2 + 0.45 * len(steps)), 14.0)
    fig, ax = plt.subplots(figsize=(width, height))
    cmap = plt.get_cmap('viridis').copy()
    cmap.set_bad('#dddddd')  # not learned yet
    image = ax.imshow(np.ma.masked_invalid(data), aspect='auto', cmap=cmap, vmin=0, vmax=100,
                      interpolation='nearest')
    ax.set_xticks(range(len(steps)))
    ax.set_xticklabels([str(s) for s in steps], fontsize=7)
    ax.set_yticks(range(rows))
    ax.set_yticklabels(names, fontsize=font)
    ax.set_xlabel('step')
    first_nan = [int(np.argmax(~np.isnan(row))) if not np.isnan(row).all() else len(steps)
                 for row in data]
    for i in range(1, rows):  # separate the classes of consecutive steps
        if first_nan[i] != first_nan[i - 1]:
            ax.axhline(i - 0.5, color='white', linewidth=0.8)
    ax.set_title(f"{summary['method']} {summary['task']}: IoU per class (%)", fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    fig.tight_layout()
    with atomic_write(path, 'wb') as f:
        fig.savefig(f, dpi=110, format='png')
    plt.close(fig)


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
