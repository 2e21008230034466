import pickle

import numpy as np
import pytest
from mmengine.dataset import DefaultSampler

from mmincseg.datasets import SampleIndex, SeededSampler
from mmincseg.datasets.samplers import sample_random_state


def test_sample_index_is_an_int_that_survives_pickling():
    index = SampleIndex(7, seed=123)
    assert index == 7 and int(index) == 7 and [0, 1, 2, 3, 4, 5, 6, 7][index] == 7
    back = pickle.loads(pickle.dumps(index))  # as sent to data-loader workers
    assert back == 7 and back.seed == 123


def test_order_is_the_default_samplers_and_seeds_depend_on_seed_epoch_index():
    data = list(range(10))
    plain, seeded = DefaultSampler(data, seed=3), SeededSampler(data, seed=3)
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        seeded.set_epoch(epoch)
        assert list(seeded) == list(plain)
    seeds = {epoch: {int(i): i.seed for i in _at(seeded, epoch)} for epoch in (0, 1)}
    assert seeds[0] == {int(i): i.seed for i in _at(SeededSampler(data, seed=3), 0)}
    assert len(set(seeds[0].values())) == 10  # one seed per sample
    assert all(seeds[0][i] != seeds[1][i] for i in data)  # a new draw every epoch
    other = {int(i): i.seed for i in _at(SeededSampler(data, seed=4), 0)}
    assert all(other[i] != seeds[0][i] for i in data)


def test_a_seeded_sample_draws_from_its_seed_and_leaves_the_caller_alone():
    index = SampleIndex(2, seed=99)
    np.random.seed(0)
    with sample_random_state(index):
        first = np.random.rand(3)
    after = np.random.rand(2)
    np.random.rand(5)  # whatever ran before
    with sample_random_state(index):
        np.testing.assert_array_equal(np.random.rand(3), first)
    np.random.seed(0)
    np.testing.assert_array_equal(np.random.rand(2), after)  # the caller's stream is untouched
    np.random.seed(0)
    with sample_random_state(2):  # a plain int draws from the caller's stream
        np.testing.assert_array_equal(np.random.rand(2), after)


def _at(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize('n, batch, expected', [
    (17, 8, [8, 9]),          # the one left over joins the batch before
    (18, 8, [8, 8, 2]),
    (16, 8, [8, 8]),
    (9, 8, [9]),
    (5, 8, [5]),              # a step smaller than a batch still trains
    (1, 8, [1]),
    (3, 1, [1, 1, 1]),
])
def test_no_singleton_batch_sampler(n, batch, expected):
    from mmincseg.datasets import NoSingletonBatchSampler
    sampler = NoSingletonBatchSampler(list(range(n)), batch)
    batches = list(sampler)
    assert [len(b) for b in batches] == expected and len(sampler) == len(expected)
    assert sorted(i for b in batches for i in b) == list(range(n))  # nothing dropped or repeated
    dropping = NoSingletonBatchSampler(list(range(n)), batch, drop_last=True)
    assert [len(b) for b in dropping] == [batch] * (n // batch) == [batch] * len(dropping)
