"""A sampler whose indices carry the seed of each sample's augmentation."""
import contextlib
from typing import ContextManager, Iterator

from mmengine.dataset import DefaultSampler
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
