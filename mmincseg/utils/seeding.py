"""Seeds derived from a run's seed and counters, so random draws do not depend on history."""
import contextlib
import random
from typing import Iterator

import numpy as np
import torch


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed hashed from ``seed`` and the integer ``keys`` (iteration, epoch, sample...)."""
    entropy = [int(seed) % 2**32, *(int(k) for k in keys)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def seed_everything(value: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device) with ``value``."""
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


@contextlib.contextmanager
def seeded(value: int) -> Iterator[None]:
    """Run the block with Python, NumPy and torch (CPU) seeded by ``value``, then restore the
    random states of before: what the block draws depends on ``value`` alone, and what is drawn
    after it (e.g. dropout in the main process) does not depend on the block."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    seed_everything(value)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
