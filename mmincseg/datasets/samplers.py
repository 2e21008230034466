"""Samplers: indices that carry the seed of each sample's augmentation; batches without a
singleton last batch."""
import contextlib
from typing import ContextManager, Iterator, List

from mmengine.dataset import DefaultSampler
from torch.utils.data import BatchSampler, Sampler
from mmseg.registry import DATA_SAMPLERS

from ..utils.seeding import derive_seed, seeded


class SampleIndex(int):
    """A dataset index that also carries the seed its sample's random transforms draw from.

    It is an ``int``, so a dataset (or wrapper) that knows nothing of it indexes as usual; one that
    loads the sample in :func:`sample_random_state` makes its augmentation a function of the seed
    alone.
    """

    seed: int

    def __new__(cls, index: int, seed: int) -> 'SampleIndex':
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):  # pickled to data-loader workers
        return SampleIndex, (int(self), self.seed)


def sample_random_state(index: int) -> ContextManager:
    """The random state a sample is loaded in: seeded from a :class:`SampleIndex` (and restored
    afterwards, so the caller's random stream is untouched), the caller's own for a plain ``int``.
    """
    seed = getattr(index, 'seed', None)
    return seeded(seed) if seed is not None else contextlib.nullcontext()


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """MMEngine's ``DefaultSampler`` whose indices seed their sample: (run seed, epoch, index).

    Data-loader workers, persistent ones included, keep random streams of their own that depend on
    which samples they loaded before; after ``--resume`` fresh workers start elsewhere, so a
    resumed run would augment differently from an uninterrupted one. Seeding every sample from the
    run's seed, the epoch (``set_epoch``, called by ``DistSamplerSeedHook``) and its dataset index
    makes each augmentation independent of workers, their number and the run's history. The
    order of the indices is the ``DefaultSampler``'s.
    """

    def __iter__(self) -> Iterator[int]:
        for index in super().__iter__():
            yield SampleIndex(index, derive_seed(self.seed, self.epoch, index))


@DATA_SAMPLERS.register_module()
class NoSingletonBatchSampler(BatchSampler):
    """Batches of ``batch_size`` whose last batch never holds a single sample.

    A remainder of one sample joins the batch before it (``batch_size + 1`` samples); nothing is
    dropped, so a step with fewer images than a batch still trains. BatchNorm in train mode cannot
    normalise one sample whose map is 1x1 (BiSeNet's context path pools globally: "Expected more
    than 1 value per channel when training"), which a dataset of ``k * batch_size + 1`` images
    would otherwise hit once per epoch. A dataset of one image still yields that one image.

    Args:
        sampler (Sampler): The index sampler (e.g. ``SeededSampler``).
        batch_size (int): Samples per batch.
        drop_last (bool): Drop an incomplete last batch instead. Defaults to False.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False) -> None:
        super().__init__(sampler, batch_size, drop_last)

    def __iter__(self) -> Iterator[List[int]]:
        if self.drop_last or self.batch_size == 1:  # batch_size 1: every batch is one sample
            yield from super().__iter__()
            return
        held = None
        for batch in super().__iter__():
            if held is not None:
                if len(batch) == 1:
                    batch = held + batch
                else:
                    yield held
            held = batch
        if held is not None:
            yield held

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        if self.drop_last or self.batch_size == 1:
            return full + (0 if self.drop_last else int(rest > 0))
        return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)
