import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmincseg import tasks


def test_voc_15_5_and_15_1_tables():
    assert tasks.get_task('15-5') == [list(range(16)), [16, 17, 18, 19, 20]]
    assert tasks.num_steps('15-1') == 6
    assert tasks.classes_of_step('15-1', 3) == [18]
    assert tasks.classes_per_step('15-1', 2) == [16, 1, 1]
    assert tasks.get_task('15-5s') == tasks.get_task('15-1')
    assert tasks.num_steps('10-1') == 11
    assert tasks.num_steps('19-1') == 2
    assert tasks.get_task('5-3')[1] == [6, 7, 8]
    assert tasks.get_task('20-0') == [list(range(21))]


def test_old_new_seen_future():
    assert tasks.old_classes('15-5', 1) == list(range(16))
    assert tasks.new_classes('15-5', 1) == [16, 17, 18, 19, 20]
    assert tasks.new_classes('15-5', 0) == list(range(1, 16))
    assert tasks.classes_seen('15-1', 1) == list(range(17))
    assert tasks.future_classes('15-1', 1) == [17, 18, 19, 20]
    assert tasks.class_names([0, 16]) == ['background', 'pottedplant']


def test_unknown_split_lists_valid_ones():
    with pytest.raises(ValueError, match=r"unknown split '15-4'.*15-5.*19-1"):
        tasks.get_task('15-4')


@pytest.mark.parametrize('step', [-1, 2, 1.0, True])
def test_step_out_of_range(step):
    with pytest.raises(ValueError, match=r'out of range.*steps 0\.\.1'):
        tasks.classes_of_step('15-5', step)


def test_bad_setting():
    with pytest.raises(ValueError, match='overlap, disjoint'):
        tasks.check_setting('overlapped')


@given(st.sampled_from(sorted(tasks.VOC_TASKS)), st.data())
def test_every_split_partitions_voc_in_channel_order(task, data):
    steps = tasks.get_task(task)
    flat = [c for s in steps for c in s]
    assert flat == list(range(tasks.NUM_VOC_CLASSES))  # channel index == class id
    step = data.draw(st.integers(0, len(steps) - 1))
    seen = tasks.classes_seen(task, step)
    assert seen == tasks.old_classes(task, step) + tasks.classes_of_step(task, step)
    assert sorted(seen + tasks.future_classes(task, step)) == list(range(21))
    assert sum(tasks.classes_per_step(task, step)) == len(seen)
