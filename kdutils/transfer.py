"""Label budgets, transfer sets and the omitted-class bias fix (notebooks 05 and 06).

* ``balanced_subset``: a seeded, class-balanced choice of ``n`` labelled examples.
* ``hide_labels``: every image stays in the transfer set, but only the chosen ones keep their hard
  label; the others get ``IGNORE_LABEL`` and learn only from the teacher's soft targets.
* ``without_class``: the transfer set with every example of one class removed (Hinton et al., 2015,
  section 3: the student never sees a "3" yet learns to recognise it from the teacher's soft labels).
* ``calibrate_bias``: choose how much to raise the omitted class's output bias on *held-out training
  data*, never on the test set; ``add_to_bias`` applies it to a copy of the model.
* ``gap_closed``: the fraction of the teacher-student accuracy gap that distillation closes.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .data import Split, balanced_positions
from .losses import IGNORE_LABEL

__all__ = [
    "BiasCalibration",
    "add_to_bias",
    "balanced_subset",
    "calibrate_bias",
    "complement",
    "gap_closed",
    "hide_labels",
    "without_class",
]


def _check_labels(labels: torch.Tensor) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype != torch.int64:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a 1-D int64 tensor of class indices (e.g. ds.train.y), got {shape}.")
    if labels.numel() == 0:
        raise ValueError("labels is empty: there is nothing to choose from.")
    return labels


def _check_index_tensor(indices, size: int, name: str) -> torch.Tensor:
    indices = torch.as_tensor(indices)
    if indices.dim() != 1 or indices.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} must be a 1-D tensor of integer positions, got {tuple(indices.shape)} "
                         f"of dtype {indices.dtype}.")
    indices = indices.long()
    if indices.numel() and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(f"{name} must lie in [0, {size}), got values from {indices.min().item()} "
                         f"to {indices.max().item()}.")
    if indices.unique().numel() != indices.numel():
        raise ValueError(f"{name} contains repeated positions; each example may be chosen once.")
    return indices


def balanced_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Sorted positions of ``n`` examples, ``n / C`` drawn at random from each of the ``C`` classes.

    The classes are those present in ``labels``. The draw depends only on ``seed``, and a larger
    ``n`` with the same seed is *not* guaranteed to contain a smaller one (draw the large subset
    and slice it if you need nested subsets).

    Raises ``ValueError`` when ``n`` is not a positive multiple of the number of classes, or when a
    class has fewer than ``n / C`` examples.
    """
    labels = _check_labels(labels)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    classes = labels.unique()
    classes = classes[classes != IGNORE_LABEL]
    if classes.numel() == 0:
        raise ValueError("labels holds no class indices (only IGNORE_LABEL): nothing to balance over.")
    num_classes = classes.numel()
    if n > labels.numel():
        raise ValueError(f"n={n} is larger than the {labels.numel()} examples available; choose a smaller n.")
    if n < num_classes or n % num_classes:
        lower = max(num_classes, n // num_classes * num_classes)
        raise ValueError(
            f"n={n} cannot be split evenly over the {num_classes} classes; choose a multiple of "
            f"{num_classes}, e.g. {lower} or {lower + num_classes}."
        )
    per_class = n // num_classes
    counts = torch.stack([(labels == c).sum() for c in classes])
    if counts.min() < per_class:
        c, have = classes[counts.argmin()].item(), counts.min().item()
        raise ValueError(f"class {c} has only {have} examples, fewer than the {per_class} per class "
                         f"that n={n} needs; choose n <= {have * num_classes}.")
    return balanced_positions(labels, per_class, seed)


def complement(indices: torch.Tensor, size: int) -> torch.Tensor:
    """Sorted positions in ``range(size)`` that are *not* in ``indices`` (e.g. the rest after a hold-out)."""
    indices = _check_index_tensor(indices, size, "indices")
    keep = torch.ones(size, dtype=torch.bool)
    keep[indices] = False
    return keep.nonzero().flatten()


def hide_labels(split: Split, labelled: torch.Tensor) -> Split:
    """All of ``split``'s images; hard labels only at positions ``labelled``, ``IGNORE_LABEL`` elsewhere.

    Training with a teacher on the result uses every image for the soft term and only the
    labelled ones for cross-entropy. Without a teacher, ``kdutils.training.train`` refuses it.
    """
    if not isinstance(split, Split):
        raise TypeError(f"hide_labels expects a kdutils.data.Split (e.g. ds.train), got {type(split).__name__}.")
    labelled = _check_index_tensor(labelled, len(split), "labelled")
    y = torch.full_like(split.y, IGNORE_LABEL)
    y[labelled] = split.y[labelled]
    return Split(split.x, y)


def without_class(split: Split, omitted: int, num_classes: int = 10) -> tuple[Split, torch.Tensor]:
    """``split`` with every example of class ``omitted`` removed, and the positions that were kept.

    Slice anything aligned with ``split`` (such as cached teacher logits) with the returned
    positions so it stays aligned with the smaller split.
    """
    if not isinstance(split, Split):
        raise TypeError(f"without_class expects a kdutils.data.Split (e.g. ds.train), got {type(split).__name__}.")
    if isinstance(omitted, bool) or not isinstance(omitted, int) or not 0 <= omitted < num_classes:
        raise ValueError(f"omitted must be a class index in [0, {num_classes}), got {omitted!r}.")
    if not bool((split.y == omitted).any()):
        raise ValueError(f"class {omitted} does not occur in this split, so there is nothing to omit.")
    kept = (split.y != omitted).nonzero().flatten()
    if kept.numel() == 0:
        raise ValueError(f"every example is of class {omitted}; removing it leaves an empty transfer set.")
    return split.subset(kept), kept


@dataclass(frozen=True)
class BiasCalibration:
    """The result of ``calibrate_bias``: every candidate shift and the held-out accuracy it gives."""

    omitted: int
    shifts: list[float]
    accuracy: list[float]  # overall accuracy on the held-out examples, per shift
    class_accuracy: list[float]  # accuracy on the held-out examples of the omitted class, per shift

    @property
    def best_index(self) -> int:
        """The first shift with the highest overall accuracy (the smallest, if shifts are ascending)."""
        return max(range(len(self.accuracy)), key=lambda i: (self.accuracy[i], -i))

    @property
    def best_shift(self) -> float:
        return self.shifts[self.best_index]


def calibrate_bias(
    logits: torch.Tensor, labels: torch.Tensor, omitted: int, shifts: Sequence[float] | torch.Tensor
) -> BiasCalibration:
    """Try adding each of ``shifts`` to the ``omitted`` class's logit; record held-out accuracy.

    ``logits`` and ``labels`` must come from *held-out training data* (examples the student was not
    trained on, drawn from the training set): choosing the shift on the test set would make the
    test accuracy an optimistic, tuned number. Adding a constant to one logit is exactly adding it
    to that class's output bias, so ``add_to_bias(model, omitted, result.best_shift)`` applies it.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError("logits must be a 2-D floating point tensor (examples, classes) of raw scores.")
    labels = _check_labels(labels)
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"logits has {logits.shape[0]} rows but labels has {labels.shape[0]}; they must match.")
    num_classes = logits.shape[1]
    if isinstance(omitted, bool) or not isinstance(omitted, int) or not 0 <= omitted < num_classes:
        raise ValueError(f"omitted must be a class index in [0, {num_classes}), got {omitted!r}.")
    members = labels == omitted
    if not bool(members.any()):
        raise ValueError(
            f"the held-out examples contain no example of class {omitted}, so the shift cannot be chosen; "
            "hold out examples of every class (e.g. with balanced_subset)."
        )
    shifts = [float(s) for s in torch.as_tensor(shifts, dtype=torch.float64).reshape(-1).tolist()]
    if not shifts:
        raise ValueError("shifts is empty; give the candidate values to try, e.g. torch.arange(0, 10.25, 0.25).")
    accuracy, class_accuracy = [], []
    for shift in shifts:
        shifted = logits.clone()
        shifted[:, omitted] += shift
        correct = shifted.argmax(dim=1) == labels
        accuracy.append(correct.float().mean().item())
        class_accuracy.append(correct[members].float().mean().item())
    return BiasCalibration(omitted, shifts, accuracy, class_accuracy)


def add_to_bias(model: nn.Module, cls: int, shift: float) -> nn.Module:
    """A copy of ``model`` whose output bias for class ``cls`` is raised by ``shift``.

    The output layer is the model's last ``nn.Linear``; the original model is left unchanged.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears or linears[-1].bias is None:
        raise ValueError("the model needs a final nn.Linear layer with a bias to shift.")
    out_features = linears[-1].out_features
    if isinstance(cls, bool) or not isinstance(cls, int) or not 0 <= cls < out_features:
        raise ValueError(f"cls must be a class index in [0, {out_features}), got {cls!r}.")
    shifted = copy.deepcopy(model)
    last = [m for m in shifted.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.bias[cls] += float(shift)
    return shifted


def gap_closed(scratch: float, distilled: float, teacher: float) -> float:
    """``(distilled - scratch) / (teacher - scratch)``: 1 means as good as the teacher, 0 no gain.

    Works with accuracies or (negated) error counts alike. Hinton et al. (2015) on MNIST: 146 test
    errors alone, 74 distilled, 67 for the teacher, so ``gap_closed(-146, -74, -67)`` is about 0.91.
    Negative when distillation hurt; above 1 when the student beat the teacher.
    """
    if teacher == scratch:
        raise ValueError("the teacher and the scratch student score the same; there is no gap to close.")
    return (distilled - scratch) / (teacher - scratch)
