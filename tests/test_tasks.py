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


def test_split_that_does_not_cover_the_classes_says_so_and_lists_valid_ones():
    with pytest.raises(ValueError, match=r"split '15-4'.*does not cover the 20 classes.*"
                                         r"leave 5, not a positive multiple of 4.*15-5.*19-1"):
        tasks.get_task('15-4')
    with pytest.raises(ValueError, match=r"'10-5-4'.*learn 19 \(10 \+ 5 \+ 4\)"):
        tasks.get_task('10-5-4')
    with pytest.raises(ValueError, match=r"'100-50'.*step 0 alone asks for 100"):
        tasks.get_task('100-50')  # a VOC split by default
    with pytest.raises(ValueError, match=r"'100-30'.*150 classes.*100-10, 100-5, 100-50"):
        tasks.get_task('100-30', num_classes=151)


@pytest.mark.parametrize('name', ['abc', '15_5', '15-5x', '0-20', '10-0-10', '15-2-3s', ''])
def test_malformed_split_names(name):
    with pytest.raises(ValueError, match=r'incremental\.task'):
        tasks.split_sizes(name)


# Every VOC split as it was written out before splits were parsed (the old table).
OLD_VOC_TABLE = {
    '20-0': [list(range(21))],
    '19-1': [list(range(20)), [20]],
    '15-5': [list(range(16)), [16, 17, 18, 19, 20]],
    '15-1': [list(range(16))] + [[c] for c in range(16, 21)],
    '10-1': [list(range(11))] + [[c] for c in range(11, 21)],
    '10-5-5': [list(range(11)), list(range(11, 16)), list(range(16, 21))],
    '5-3': [list(range(6))] + [list(range(s, s + 3)) for s in range(6, 21, 3)],
}


@pytest.mark.parametrize('task', sorted(OLD_VOC_TABLE))
def test_voc_splits_resolve_to_the_classes_of_the_old_table(task):
    assert tasks.get_task(task) == OLD_VOC_TABLE[task]
    assert tasks.get_task(task, num_classes=21, order=list(range(1, 21))) == OLD_VOC_TABLE[task]


def test_aliases():
    assert tasks.get_task('15-5s') == tasks.get_task('15-1')
    for alias in ('offline', 'joint'):
        assert tasks.get_task(alias) == tasks.get_task('20-0')
        assert tasks.get_task(alias, 151) == tasks.get_task('150-0', 151) == [list(range(151))]
    assert tasks.joint_task() == '20-0' and tasks.joint_task(151) == '150-0'


def test_ade20k_splits():
    ade = tasks.NUM_ADE20K_CLASSES
    assert tasks.split_sizes('100-50', ade) == [100, 50]
    assert tasks.split_sizes('100-10', ade) == [100] + [10] * 5
    assert tasks.split_sizes('50-50', ade) == [50, 50, 50]
    assert tasks.split_sizes('100-5', ade) == [100] + [5] * 10
    steps = tasks.get_task('100-10', ade)
    assert steps[0] == list(range(101)) and steps[-1] == list(range(141, 151))
    assert tasks.classes_per_step('100-10', 2, ade) == [101, 10, 10]
    assert tasks.get_task('10-5-5-5', 26)[3] == list(range(21, 26))  # any class count


def test_orders_permute_the_classes_and_keep_background_first():
    split = tasks.get_split('15-5', order=list(range(20, 0, -1)))
    assert split.steps[0] == (0, ) + tuple(range(20, 5, -1)) and split.steps[1] == (5, 4, 3, 2, 1)
    assert split.channels == (0, ) + tuple(range(20, 0, -1)) and not split.is_identity
    assert tasks.get_split('15-5').is_identity
    rand = tasks.resolve_order('random:3')
    assert sorted(rand) == list(range(1, 21)) and rand == tasks.resolve_order('random:3')
    assert rand != tasks.resolve_order('random:4')


def test_mib_ade20k_orders_reproduce_mibs_steps():
    ade = tasks.NUM_ADE20K_CLASSES
    # MiB's 100-50b step 1 and 100-10b step 1 (its tasks.py), as sets
    assert set(tasks.get_task('100-10', ade, 'b')[1]) == {11, 16, 50, 64, 66, 73, 89, 92, 145, 146}
    assert set(tasks.get_task('100-10', ade, 'c')[5]) == {15, 21, 72, 75, 88, 93, 103, 107, 122,
                                                          150}
    for name in ('b', 'c'):
        order = tasks.resolve_order(name, ade)
        assert sorted(order) == list(range(1, 151))
        assert set(tasks.get_task('100-50', ade, name)[1]) == set(
            c for s in tasks.get_task('100-10', ade, name)[1:] for c in s)
    assert set(tasks.get_task('50-50', ade, 'b')[0]) == {
        0, 1, 9, 14, 18, 22, 24, 25, 27, 28, 29, 32, 38, 42, 45, 46, 47, 48, 49, 54, 56, 58, 61,
        62, 63, 69, 74, 75, 76, 77, 81, 82, 84, 90, 93, 96, 100, 103, 104, 109, 117, 119, 121, 123,
        128, 129, 130, 134, 135, 136, 144}


@pytest.mark.parametrize('order, match', [
    ([1, 2, 3], r'missing \[4, 5'),
    (list(range(1, 20)) + [1], r'repeated \[1\]'),
    (list(range(0, 20)), r'not classes of the dataset \[0\]'),
    ('b', r"unknown class order 'b'.*ADE20K"),
    ('random:x', r"unknown class order 'random:x'"),
])
def test_bad_orders_say_what_is_wrong(order, match):
    with pytest.raises(ValueError, match=match):
        tasks.get_split('15-5', order=order)


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
