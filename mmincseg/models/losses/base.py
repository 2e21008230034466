"""The base of the project's loss modules: a weight and the name mmseg keys the loss by."""
import torch.nn as nn


class WeightedLoss(nn.Module):
    """A loss module with ``loss_weight`` and a read-only ``loss_name``.

    mmseg's decode heads key each loss by its module's ``loss_name`` and the segmentor sums the
    items whose name starts with ``loss_``; every loss of :mod:`mmincseg.models.losses` keeps
    both here.

    Args:
        loss_weight (float): Multiplier of the loss.
        loss_name (str): Name of the loss item.
    """

    def __init__(self, loss_weight: float, loss_name: str) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        """str: Name of the loss item (the ``loss_`` prefix makes the segmentor sum it)."""
        return self._loss_name
