"""Run summaries: which split a step reports, and seeds averaged into one table row."""
import math

import pytest

from mmincseg.apis.results import comparison_table, mean_std, per_class_table, step_entry


def _record(val_miou, test_miou=None):
    record = {'step': 1, 'classes': [16], 'train_seconds': 10.0,
              'metrics': {'mIoU': val_miou, 'mIoU_base': val_miou, 'IoU.sofa': 3.0}}
    if test_miou is not None:
        record['test_metrics'] = {'mIoU': test_miou, 'mIoU_base': test_miou + 1,
                                  'IoU.sofa': 7.0}
    return record


def test_step_entry_reports_the_held_out_split_and_keeps_val():
    entry = step_entry(_record(40.0, 30.0))
    assert entry['split'] == 'test'
    assert (entry['mIoU'], entry['mIoU_base'], entry['per_class']) == (30.0, 31.0, {'sofa': 7.0})
    assert entry['val']['mIoU'] == 40.0
    plain = step_entry(_record(40.0))
    assert plain['split'] == 'val' and plain['mIoU'] == 40.0 and 'val' not in plain


def test_mean_std():
    assert mean_std([1.0, 3.0]) == '2.00 +- 1.00'
    assert mean_std([2.5]) == '2.50'
    assert mean_std([None, 4.0, None]) == '4.00'
    assert mean_std([None]) == '-'


def _summary(name, miou):
    last = {'step': 1, 'mIoU': miou, 'mIoU_base': miou - 1, 'mIoU_novel': None, 'aAcc': 90.0,
            'split': 'test', 'train_seconds': 5.0}
    return {'task': '15-5', 'method': 'mib', 'name': name, 'steps': [last]}


def test_comparison_table_averages_runs_of_one_name():
    table = comparison_table([_summary('MiB', 40.0), _summary('FT', 10.0),
                              _summary('MiB', 44.0)]).splitlines()
    assert len(table) == 4  # header, rule, MiB (2 runs), FT
    mib = table[2].split('|')
    assert mib[1].strip() == 'MiB'
    assert mib[4].strip() == '42.00 +- 2.00' and mib[2].strip() == '41.00 +- 2.00'
    assert mib[3].strip() == '-' and mib[6].strip() == 'test' and mib[7].strip() == '2'
    assert table[3].split('|')[4].strip() == '10.00'


def _run(num_steps, classes_per_step, prefix='c'):
    """A summary of ``num_steps`` steps of ``classes_per_step`` new classes each, IoUs
    decreasing with age (forgetting)."""
    steps, seen = [], []
    for step in range(num_steps):
        seen += [f'{prefix}{len(seen) + i}' for i in range(classes_per_step)]
        per_class = {'background': 90.0}
        per_class.update({n: 80.0 - 10 * (step - i // classes_per_step)
                          for i, n in enumerate(seen)})
        steps.append(dict(step=step, classes=seen[-classes_per_step:], per_class=per_class,
                          mIoU=50.0, mIoU_old=50.0, mIoU_new=50.0, mIoU_base=50.0,
                          mIoU_novel=None if step == 0 else 40.0, aAcc=90.0, split='val'))
    return dict(task='100-10', method='mib', setting='overlap', labels='gt', num_classes=151,
                steps=steps)


def test_per_class_heatmap_of_150_classes(tmp_path):
    from PIL import Image

    from mmincseg.apis.results import per_class_matrix, write_summary
    summary = _run(6, 25)  # 150 classes, as ADE20K's 100-10 (in 25s to keep the test short)
    names, steps, matrix = per_class_matrix(summary)
    assert len(names) == 150 and names[0] == 'c0' and steps == list(range(6))
    assert math.isnan(matrix[149][0]) and matrix[0][0] == 80.0 and matrix[0][5] == 30.0
    paths = write_summary(str(tmp_path), summary)
    with Image.open(paths['heatmap']) as img:
        width, height = img.size
    assert height >= 1500  # a readable row per class
    assert '| method | 1-100 | 101-150 |' in open(paths['md']).read()


def test_base_novel_columns_of_any_dataset():
    from mmincseg.apis.results import base_novel_columns
    assert base_novel_columns('15-5') == ('1-15', '16-20')
    assert base_novel_columns('20-0') == ('1-20', '-')
    assert base_novel_columns('100-10', 151) == ('1-100', '101-150')
    assert base_novel_columns('50-50', 151) == ('1-50', '51-150')


def test_per_class_table_lines_classes_up_by_name_across_orders():
    # two orders of the same three classes: the runs list them in another channel order, the
    # table matches them by name and averages the runs of one name
    def run(name, ious):
        last = dict(step=1, per_class=dict(ious), mIoU=0.0)
        return dict(name=name, method='mib', task='2-1', steps=[last])

    identity = run('MiB', [('background', 90.0), ('cat', 40.0), ('dog', 20.0), ('cow', 10.0)])
    permuted = run('MiB', [('background', 80.0), ('cow', 30.0), ('cat', 60.0)])  # no dog IoU
    ft = run('FT', [('background', 70.0), ('cat', 1.0), ('dog', 2.0), ('cow', 3.0)])
    lines = per_class_table([identity, permuted, ft]).splitlines()
    assert lines[0].split('|')[2:4] == [' MiB ', ' FT ']
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:4]]
            for line in lines[2:]}
    assert [line.split('|')[1].strip() for line in lines[2:]] == ['background', 'cat', 'dog', 'cow']
    assert rows['cat'] == ['50.00 +- 10.00', '1.00']
    assert rows['cow'] == ['20.00 +- 10.00', '3.00']
    assert rows['dog'] == ['20.00', '2.00']  # only the run that has it
