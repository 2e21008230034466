"""An epoch-based training loop whose ``--resume`` continues exactly where a run stopped."""
from mmengine.runner import EpochBasedTrainLoop
from mmseg.registry import LOOPS

from ..utils.seeding import derive_seed, seed_everything


def iteration_seed(seed: int, iteration: int) -> int:
    """The seed of one training iteration: a hash of the run's seed and the iteration index."""
    return derive_seed(seed, iteration)


def seed_iteration(seed: int, iteration: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for one iteration."""
    seed_everything(iteration_seed(seed, iteration))


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """MMEngine's ``EpochBasedTrainLoop`` with exact resume from any checkpoint.

    MMEngine's loop restarts an interrupted epoch from its first batch, so resuming from an
    iteration checkpoint (``default_hooks.checkpoint.by_epoch=False``) trains the batches of that
    epoch twice and runs past ``max_iters``; and the random state (augmentations, dropout) after a
    resume starts again from the seed instead of where the run stopped. Here:

    - every iteration reseeds Python, NumPy and torch from ``(runner.seed, iteration)`` before its
      batch is loaded, so what an iteration draws depends only on the seed and its index;
    - a resumed epoch skips (loads and drops, in the sampler's order) the batches already trained.

    Data-loader workers (persistent or not) draw each sample's augmentation from a seed of the
    run's seed, the epoch and the sample index (``SeededSampler``, which the resolver puts in
    place of ``DefaultSampler``), so with ``randomness=dict(seed=S, deterministic=True)`` a run
    killed at any point and resumed ends with the weights of an uninterrupted run, whatever the
    number of workers. The resolver uses this loop in place of ``EpochBasedTrainLoop``; the
    arguments are the same.
    """

    def run_epoch(self) -> None:
        """Iterate one epoch, skipping the batches a resumed run already trained."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        num_batches = len(self.dataloader)
        trained = min(max(self._iter - self._epoch * num_batches, 0), num_batches)
        if trained:
            self.runner.logger.info(f'resumed inside epoch {self._epoch + 1}: skipping its first '
                                    f'{trained} of {num_batches} batches (already trained)')
        batches = iter(self.dataloader)
        for idx in range(num_batches):
            seed_iteration(self.runner.seed, self._epoch * num_batches + idx)
            try:
                data_batch = next(batches)
            except StopIteration:
                break
            if idx < trained:
                continue
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
