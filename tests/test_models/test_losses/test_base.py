"""Every loss module of mmincseg: built from the registry, weighted, named as mmseg reads it."""
import pytest

from mmseg.registry import MODELS

import mmincseg.models.losses as losses
from mmincseg.models.losses.base import WeightedLoss

LOSS_TYPES = [name for name in losses.__all__
              if isinstance(getattr(losses, name), type) and name.endswith('Loss')]


def test_every_loss_module_is_a_weighted_loss():
    assert len(LOSS_TYPES) == 8
    for name in LOSS_TYPES:
        assert issubclass(getattr(losses, name), WeightedLoss), name


@pytest.mark.parametrize('name', LOSS_TYPES)
def test_registry_builds_it_with_its_weight_and_name(name):
    loss = MODELS.build(dict(type=name, loss_weight=3.0, loss_name='loss_custom'))
    assert loss.loss_weight == 3.0 and loss.loss_name == 'loss_custom'
    with pytest.raises(AttributeError):
        loss.loss_name = 'loss_other'  # read-only, as mmseg's losses
