"""Every loss the series teaches: soft targets, the knowledge-distillation loss, and hint losses.

References: G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a Neural Network",
NIPS Deep Learning Workshop, 2015 (https://arxiv.org/abs/1503.02531); A. Romero et al., "FitNets:
Hints for Thin Deep Nets", ICLR 2015 (https://arxiv.org/abs/1412.6550).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = [
    "HINT_LOSSES",
    "IGNORE_LABEL",
    "check_alpha",
    "check_distillation_args",
    "check_temperature",
    "distillation_loss",
    "hard_label_loss",
    "hint_loss",
    "soft_targets",
]

#: A label equal to this has no hard target: the example only contributes the soft term.
IGNORE_LABEL = -100
#: The hint losses ``hint_loss`` knows.
HINT_LOSSES = ("mse", "cosine")


def check_temperature(T: float) -> None:
    """Raise ``ValueError`` unless ``T`` is a finite number > 0."""
    if isinstance(T, torch.Tensor):
        T = T.item()
    if not isinstance(T, (int, float)) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"temperature T must be a finite number > 0, got {T!r}; T = 1 is the plain softmax.")


def check_alpha(alpha: float) -> None:
    """Raise ``ValueError`` unless ``alpha`` lies in ``[0, 1]``."""
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.item()
    if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"alpha must lie in [0, 1], got {alpha!r}; it weighs the soft term against cross-entropy."
        )


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a 2-D tensor (batch, classes) of raw logits, got {shape}.")
    if not logits.is_floating_point():
        raise ValueError(f"{name} must be floating point logits, got dtype {logits.dtype}.")


def check_distillation_args(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor,
    T: float,
    alpha: float,
) -> None:
    """Raise ``ValueError`` with a clear message for any argument ``distillation_loss`` cannot use."""
    check_temperature(T)
    check_alpha(alpha)
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits {tuple(teacher_logits.shape)} "
            "must have the same shape: one row per example, one column per class."
        )
    batch, num_classes = student_logits.shape
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != batch:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a 1-D tensor of {batch} class indices, got {shape}.")
    if labels.dtype != torch.int64:
        raise ValueError(f"labels must be int64 class indices, got dtype {labels.dtype}.")
    out_of_range = (labels >= num_classes) | ((labels < 0) & (labels != IGNORE_LABEL))
    if bool(out_of_range.any()):  # one check per batch; the details only when something is wrong
        real = labels[labels != IGNORE_LABEL]
        raise ValueError(
            f"labels must lie in [0, {num_classes}) (or be {IGNORE_LABEL} for 'no hard label'), "
            f"got values from {real.min().item()} to {real.max().item()}."
        )


def soft_targets(logits: torch.Tensor, T: float) -> torch.Tensor:
    """The temperature-softened distribution ``softmax(logits / T)`` over the last dimension.

    ``T = 1`` is the ordinary softmax; a higher ``T`` flattens it, revealing how the model ranks
    the wrong classes ("dark knowledge").
    """
    check_temperature(T)
    if not isinstance(logits, torch.Tensor) or logits.dim() < 1 or not logits.is_floating_point():
        raise ValueError("logits must be a floating point tensor of raw scores, one per class on the last dim.")
    return F.softmax(logits / T, dim=-1)


def hard_label_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the examples that have a label; 0 for a batch with none.

    Rows labelled ``IGNORE_LABEL`` are left out (``F.cross_entropy`` alone would give NaN, 0 / 0,
    for a batch in which no row has a label: common when a few labels are spread over a large
    transfer set).
    """
    labelled = labels != IGNORE_LABEL
    if bool(labelled.all()):
        return F.cross_entropy(logits, labels)
    total = F.cross_entropy(logits, labels, ignore_index=IGNORE_LABEL, reduction="sum")
    return total / labelled.sum().clamp(min=1)


def distillation_loss(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor,
    T: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    r"""Hinton et al.'s knowledge-distillation loss, averaged over the batch.

    .. math::

        L = \alpha \, T^2 \, \mathrm{KL}\big(\mathrm{softmax}(z_t / T) \,\|\, \mathrm{softmax}(z_s / T)\big)
            + (1 - \alpha) \, \mathrm{CE}(z_s, y)

    where :math:`z_s` and :math:`z_t` are the student's and teacher's raw logits.

    * The KL term is computed from ``log_softmax`` of both logits (``F.kl_div`` expects
      log-probabilities as its input). Taking ``torch.log`` of raw logits, as a popular article
      does, gives NaN for every negative logit.
    * ``reduction="batchmean"`` sums over classes and divides by the batch size: that is the KL
      divergence per example. The default ``"mean"`` also divides by the number of classes, which
      silently shrinks the soft term by that factor (10 here).
    * The soft term's gradient with respect to the student logits scales as :math:`1/T^2`
      (one :math:`1/T` from the softened softmax, another from the smaller differences between
      softened probabilities). Multiplying by :math:`T^2` keeps the two terms' relative weight
      roughly unchanged when ``T`` changes, as the paper recommends.

    Args:
        student_logits: ``(N, C)`` raw scores of the student (the only tensor that needs a gradient).
        labels: ``(N,)`` int64 class indices; ``IGNORE_LABEL`` (-100) marks an example with no hard
            label, which then contributes only to the soft term.
        teacher_logits: ``(N, C)`` raw scores of the teacher, computed in ``eval()`` under ``no_grad()``.
        T: temperature > 0 applied to both logits in the soft term.
        alpha: weight in ``[0, 1]`` of the soft term; ``1 - alpha`` weighs the cross-entropy.

    Raises:
        ValueError: for ``T <= 0``, ``alpha`` outside ``[0, 1]``, mismatched shapes or labels out of range.
    """
    check_distillation_args(student_logits, labels, teacher_logits, T, alpha)
    soft = F.kl_div(
        F.log_softmax(student_logits / T, dim=1),  # the input: the student's log-probabilities
        F.log_softmax(teacher_logits / T, dim=1),  # the target, as log-probabilities too (log_target=True)
        reduction="batchmean",
        log_target=True,
    )
    return alpha * T * T * soft + (1 - alpha) * hard_label_loss(student_logits, labels)


def _check_kind(kind: str) -> None:
    if kind not in HINT_LOSSES:
        raise ValueError(f"hint loss must be one of {', '.join(repr(k) for k in HINT_LOSSES)}, got {kind!r}.")


def _check_features(projected: torch.Tensor, teacher_features: torch.Tensor) -> None:
    for name, value in (("projected student features", projected), ("teacher features", teacher_features)):
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or not value.is_floating_point():
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{name} must be a 2-D floating point tensor (batch, features), got {shape}.")
    if projected.shape != teacher_features.shape:
        raise ValueError(
            f"projected student features {tuple(projected.shape)} and teacher features "
            f"{tuple(teacher_features.shape)} must have the same shape: one row per example, and the "
            f"projection's out_features must equal the teacher layer's width ({teacher_features.shape[1]})."
        )


def hint_loss(projected: torch.Tensor, teacher_features: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    r"""How far the (projected) student features are from the teacher's, averaged over the batch.

    * ``"mse"``: mean squared error over every feature of every example, as FitNets' regressor.
    * ``"cosine"``: :math:`1 - \cos(p, t)` per example, averaged; it ignores the features' length and
      lies in ``[0, 2]``, as the cosine loss of the PyTorch distillation tutorial.

    Feature ("hint") distillation adds ``hint_weight * hint_loss(...)`` to ``distillation_loss``
    (``kdutils.features.train_with_hints``). Raises ``ValueError`` for mismatched shapes or an
    unknown ``kind``.
    """
    _check_kind(kind)
    _check_features(projected, teacher_features)
    if kind == "mse":
        return F.mse_loss(projected, teacher_features)
    return (1 - F.cosine_similarity(projected, teacher_features, dim=1)).mean()
