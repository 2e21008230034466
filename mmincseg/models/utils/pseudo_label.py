"""PLOP's entropy-based pseudo-labelling of the background (Douillard et al., CVPR 2021, Sec. 3.2).

At a step t > 0 the pixels labelled background may belong to old classes. The frozen teacher
labels them with its arg-max class where it is confident: where its (scaled) entropy is under the
threshold of that class. The other background pixels are ignored (255). The cross-entropy of each
image is then multiplied by the share of its background pixels that got a trusted label (the
"classification adaptive factor").

What PLOP's public code does (``train.py``: ``pseudo == 'entropy'``, ``find_median``,
``entropy``, ``classif_adaptive_factor``; ``--method PLOP`` sets ``--threshold 0.001``) and what
we do, written from its description:

- **Uncertainty.** ``u = -sum_c p_c log(p_c + 1e-8) / (C_old * log(C_old) * log(C_t))`` with the
  teacher's softmax ``p`` over its ``C_old`` channels and ``C_t`` the classes seen at step t: the
  code's ``entropy`` takes the channel *mean* (not the sum) normalised by ``log C_old``, and the
  training step divides it again by ``max_entropy = log C_t``. Its maximum is therefore
  ``1 / (C_old log C_t)`` (0.022 for VOC 15-1 step 1), not 1. We compute exactly this quantity, so
  the published threshold 0.001 means what it meant there.
- **Thresholds**, one per class, computed once before the step's training over the training set
  with the teacher (PLOP's ``before`` -> ``find_median``): a 100-bin histogram over [0, 1] of ``u``
  of the pixels labelled background, per teacher arg-max class; its "median"; then at least the
  floor ``threshold`` (``max(median, 0.001)``; a class never predicted gets the floor).
  PLOP's median loop adds the bin *index* to its running sum where the bin's count is meant, so
  on real data (almost every ``u`` in the first one or two bins of width 0.01) it returns
  ``0.01 * (total / 2) / count(first bin)`` (or the same from the second bin, plus its edge
  0.01), typically between 0.005 and 0.02, usually above the true median. ``median='plop'``
  (default, what the published numbers were trained with) reproduces that rule; ``median='exact'`` is the median the paper describes,
  interpolated in the same histogram (give more bins for precision). We run the pass in
  :class:`~mmincseg.engine.hooks.PseudoLabelThresholdHook`'s ``before_train`` over the training
  loader, as PLOP does over its (augmented) one, and again on ``--resume`` (the thresholds are not
  in the checkpoint; the seeded sampler makes the pass repeatable).
- **Labels.** Pixels of a label ``< C_old`` (background at step t) with ``u <`` the threshold of
  the teacher's arg-max class take that class (0 included: a confident background stays 0); the
  other background pixels become 255. New-class and 255 pixels are unchanged.
- **Adaptive factor** per image: ``#(trusted background) / (#background + 1e-6)`` (0 for an image
  without background, as in PLOP), optionally at least ``min_factor``; each pixel's CE is multiplied
  by its image's factor. PLOP then averages over every pixel (255 included, at 0); we keep the
  project's CE average over the non-ignored pixels, as for every other method.
"""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from ...tasks import IGNORE_INDEX

MEDIANS = ('plop', 'exact')


def scaled_entropy(probs: Tensor, num_classes: int) -> Tensor:
    """PLOP's uncertainty ``u = -sum_c p_c log(p_c + 1e-8) / (C_old log(C_old) log(C_t))``.

    Args:
        probs (Tensor): Teacher probabilities, has a shape (N, C_old, H, W), ``C_old >= 2``.
        num_classes (int): ``C_t``, the classes seen at this step (background included).

    Returns:
        Tensor: Has a shape (N, H, W), values in ``[0, 1 / (C_old log C_t)]``.
    """
    num_old = probs.shape[1]
    if num_old < 2 or num_classes < 2:
        raise ValueError(f'scaled_entropy: needs at least 2 teacher channels and 2 classes, got '
                         f'{num_old} and {num_classes}')
    plogp = (probs * torch.log(probs + 1e-8)).sum(dim=1)
    return -plogp / (num_old * math.log(num_old) * math.log(num_classes))


def histogram_median(counts: Tensor, median: str = 'plop') -> float:
    """The median of values in [0, 1] from their histogram of equal bins.

    ``'exact'``: the value where the cumulative count reaches half the total, interpolated
    linearly inside its bin. ``'plop'``: PLOP's ``find_median`` loop, which walks the bins with a
    running sum that grows by each bin's *index* (where its count is meant), stops at the first
    bin ``b`` with ``running <= total / 2 <= running + counts[b]`` and returns
    ``b / B + (total / 2 - running) / counts[b] / B`` (the bin index recomputed, as there, as
    ``int(b / B * B)``; a stop on an empty bin, a division by zero there, gives its lower edge).

    Args:
        counts (Tensor): Counts per bin, has a shape (B, ).
        median (str): ``'plop'`` or ``'exact'``. Defaults to 'plop'.

    Returns:
        float: The median; 0 for an empty histogram.
    """
    if median not in MEDIANS:
        raise ValueError(f'pseudo_label.median={median!r} is not supported; use one of {MEDIANS}')
    counts = [float(c) for c in counts.tolist()]
    num_bins, total = len(counts), sum(counts)
    if total <= 0:
        return 0.0
    half = total / 2
    running = 0.0
    if median == 'exact':
        for b, count in enumerate(counts):
            if running + count >= half and count > 0:
                return (b + (half - running) / count) / num_bins
            running += count
        return 1.0
    for b in range(num_bins):
        index = int(b / num_bins * num_bins)  # PLOP's float round trip (29 / 100 * 100 -> 28)
        if running <= half <= running + counts[index]:
            break
        running += b  # sic: PLOP adds lower_border * nb_bins, the bin index
    fraction = (half - running) / counts[index] if counts[index] > 0 else 0.0
    return b / num_bins + fraction / num_bins


class EntropyHistogram:
    """Per-class histograms of :func:`scaled_entropy` on background pixels, for the thresholds.

    Args:
        num_classes (int): ``C_t``, the classes seen at this step (one histogram each).
        num_bins (int): Bins over [0, 1]. Defaults to 100 (PLOP's for entropy).
    """

    def __init__(self, num_classes: int, num_bins: int = 100) -> None:
        self.num_classes = int(num_classes)
        self.num_bins = int(num_bins)
        self.counts = torch.zeros(self.num_classes, self.num_bins, dtype=torch.long)

    @torch.no_grad()
    def update(self, old_logits: Tensor, labels: Tensor) -> None:
        """Count the pixels labelled 0 (PLOP's ``labels == 0``) by teacher class and ``u`` bin.

        Args:
            old_logits (Tensor): Teacher logits at the label size, (N, C_old, H, W).
            labels (Tensor): Step-t labels, has a shape (N, H, W).
        """
        probs = torch.softmax(old_logits.float(), dim=1)
        background = labels == 0
        values = scaled_entropy(probs, self.num_classes)[background]
        classes = probs.argmax(dim=1)[background]
        bins = (values * self.num_bins).long().clamp(min=0, max=self.num_bins - 1)
        flat = (classes * self.num_bins + bins).cpu()
        self.counts += torch.bincount(flat, minlength=self.counts.numel()).view_as(self.counts)

    def thresholds(self, floor: float = 0.001, median: str = 'plop') -> Tensor:
        """``max(median_c, floor)`` per class (the floor for a class with no pixel).

        Returns:
            Tensor: Float32, has a shape (C_t, ).
        """
        return torch.tensor([max(histogram_median(c, median), floor) for c in self.counts],
                            dtype=torch.float32)


def entropy_pseudo_labels(labels: Tensor, old_logits: Tensor, thresholds: Tensor,
                          num_classes: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Relabel the background pixels from the teacher where it is confident (PLOP's rule).

    Args:
        labels (Tensor): Step-t labels, has a shape (N, H, W): 0 background, new classes, 255.
        old_logits (Tensor): Teacher logits at the label size, has a shape (N, C_old, H, W).
        thresholds (Tensor): Per-class thresholds of :func:`scaled_entropy`, shape (>= C_old, ).
        num_classes (int): ``C_t``, the classes seen at this step.

    Returns:
        tuple[Tensor, Tensor, Tensor]: The new labels (N, H, W): trusted background pixels take
        the teacher's arg-max class, the other background pixels 255, the rest unchanged; the
        trusted background mask and the background mask (label ``< C_old``), bool (N, H, W).
    """
    if old_logits.shape[0] != labels.shape[0] or old_logits.shape[2:] != labels.shape[-2:]:
        raise ValueError(f'entropy_pseudo_labels: teacher logits {tuple(old_logits.shape)} must be '
                         f'at the size of the labels {tuple(labels.shape)}; resize them first')
    num_old = old_logits.shape[1]
    with torch.no_grad():
        probs = torch.softmax(old_logits.float(), dim=1)
        teacher_class = probs.argmax(dim=1)
        uncertainty = scaled_entropy(probs, num_classes)
        confident = uncertainty < thresholds.to(probs.device)[teacher_class]
        background = labels < num_old
        trusted = background & confident
        out = torch.where(trusted, teacher_class.to(labels.dtype), labels)
        out = torch.where(background & ~confident, torch.full_like(labels, IGNORE_INDEX), out)
    return out, trusted, background


def classif_adaptive_factor(trusted: Tensor, background: Tensor,
                            min_factor: Optional[float] = None) -> Tensor:
    """Per-image CE factor: trusted share of the background pixels (PLOP's formula).

    ``sum(trusted) / (sum(background) + 1e-6)`` per image, at least ``min_factor`` if given.

    Args:
        trusted (Tensor): Trusted background pixels, bool (N, H, W).
        background (Tensor): Background pixels, bool (N, H, W).
        min_factor (float, optional): Lower bound (PLOP's ``classif_adaptive_min_factor``, off
            by default). Defaults to None.

    Returns:
        Tensor: Float32, has a shape (N, ).
    """
    num = trusted.flatten(1).float().sum(dim=1)
    den = background.flatten(1).float().sum(dim=1)
    factor = num / (den + 1e-6)
    if min_factor:
        factor = factor.clamp(min=min_factor)
    return factor
