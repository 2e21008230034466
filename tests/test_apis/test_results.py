"""Run summaries: which split a step reports, and seeds averaged into one table row."""
import pytest

from mmincseg.apis.results import comparison_table, mean_std, step_entry


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
