"""Ensembles of teachers (notebook 09): the averaged prediction of members trained with different seeds.

The members are the series' teacher recipe with other seeds: ``kdutils.teacher.load_teacher(ds, seed=k)``,
cached like notebook 02's teacher (whose seed is the recipe's own, so it is never trained twice).

* ``average_probabilities``: the ensemble's prediction, the mean of the members' (softened)
  probabilities ``softmax(z_k / T)``.
* ``ensemble_logits``: ``T * log`` of that mean, a stand-in for logits whose softmax at temperature
  ``T`` gives back the averaged distribution, so every function that expects a teacher's logits
  (``kdutils.training.train(teacher_logits=...)``, ``distillation_loss``) distils from the ensemble.

Why probabilities and not logits: the mean of the members' probabilities is the mixture of their
predictions; where they disagree it spreads its mass over the classes they chose. The mean of their
logits is a normalised *product* of their predictions: it is sharper than any member where they
agree and lets the member with the largest logits outvote the others where they do not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .losses import check_temperature

__all__ = ["average_probabilities", "ensemble_logits"]


def _check_members(logits: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(logits, torch.Tensor):
        raise ValueError("give a list with one (N, classes) tensor of logits per member, not a single tensor.")
    members = list(logits)
    if not members:
        raise ValueError("the ensemble is empty: give one (N, classes) tensor of logits per member.")
    for k, member in enumerate(members):
        if not isinstance(member, torch.Tensor) or member.dim() != 2 or not member.is_floating_point():
            shape = tuple(member.shape) if isinstance(member, torch.Tensor) else type(member).__name__
            raise ValueError(f"member {k} must be a 2-D floating point tensor (N, classes) of logits, got {shape}.")
        if member.shape[0] == 0:
            raise ValueError(f"member {k} has no rows: there is nothing to average.")
        if member.shape != members[0].shape:
            raise ValueError(
                f"member {k} has shape {tuple(member.shape)} but member 0 has {tuple(members[0].shape)}; every "
                "member must score the same examples (in the same order) over the same classes."
            )
        if not bool(torch.isfinite(member).all()):
            raise ValueError(f"member {k} holds NaN or infinite logits.")
    return members


def average_probabilities(logits: Sequence[torch.Tensor], T: float = 1.0) -> torch.Tensor:
    """The ensemble's prediction: the mean over members of ``softmax(logits_k / T)``, shape ``(N, classes)``.

    ``logits`` is a list with one ``(N, classes)`` tensor per member, rows aligned (the same examples
    in the same order). Each row of the result sums to 1. ``T = 1`` is the ensemble's ordinary
    prediction; a higher ``T`` averages the softened distributions a student distils from.
    """
    check_temperature(T)
    members = _check_members(logits)
    return torch.stack([torch.softmax(member.double() / T, dim=1) for member in members]).mean(dim=0).to(
        members[0].dtype)


def ensemble_logits(logits: Sequence[torch.Tensor], T: float) -> torch.Tensor:
    """``T * log(average_probabilities(logits, T))``: "logits" whose softmax at ``T`` is the averaged distribution.

    ``softmax(T * log(p) / T) = softmax(log p) = p / sum(p) = p``, so passing the result as
    ``teacher_logits`` with the same ``T`` makes a distillation loss pull the student towards the
    ensemble's averaged soft labels. Used at another temperature it means nothing: rebuild it for
    each ``T``. The log is taken in float64, so tiny probabilities stay finite.
    """
    check_temperature(T)
    members = _check_members(logits)
    mean = torch.stack([torch.softmax(member.double() / T, dim=1) for member in members]).mean(dim=0)
    scale = math.log(torch.finfo(torch.float64).tiny)  # the floor of log p: finite where p underflowed
    return (T * mean.log().clamp(min=scale)).to(members[0].dtype)
