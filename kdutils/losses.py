"""Every loss the series teaches: soft targets, the knowledge-distillation loss, feature losses, sequence losses.

* ``soft_targets``, ``distillation_loss`` (with ``hard_label_loss``, its cross-entropy term): notebooks 03-09;
* ``feature_loss``: how far the student's (projected) hidden features are from the teacher's (notebook 08);
* ``sequence_cross_entropy``, ``token_distillation_loss``, ``token_kl``: the same ideas over words, at every
  real position of ``(words, positions, vocabulary)`` logits (notebook 10).

Each loss checks its arguments and says what is wrong. A training loop, which checks its arguments once before
the first batch, calls ``distillation_loss_from_log_probs``: the same math without the per-batch checks.

References: G. Hinton, O. Vinyals and J. Dean, "Distilling the Knowledge in a Neural Network",
NIPS Deep Learning Workshop, 2015 (https://arxiv.org/abs/1503.02531); A. Romero et al., "FitNets:
Hints for Thin Deep Nets", ICLR 2015 (https://arxiv.org/abs/1412.6550); Y. Kim and A. M. Rush,
"Sequence-Level Knowledge Distillation", EMNLP 2016 (https://arxiv.org/abs/1606.07947); R. Agarwal et al.,
"On-Policy Distillation of Language Models" (GKD), ICLR 2024 (https://arxiv.org/abs/2306.13649).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = [
    "DIRECTIONS",
    "FEATURE_LOSSES",
    "IGNORE_LABEL",
    "check_alpha",
    "check_feature_kind",
    "check_temperature",
    "distillation_loss",
    "distillation_loss_from_log_probs",
    "feature_loss",
    "hard_label_loss",
    "sequence_cross_entropy",
    "soft_targets",
    "token_distillation_loss",
    "token_kl",
]

#: A label equal to this has no hard target: the example only contributes the soft term.
IGNORE_LABEL = -100
#: The feature losses ``feature_loss`` knows.
FEATURE_LOSSES = ("mse", "cosine")
#: The two KL divergences ``token_kl`` computes: KL(teacher || student) and KL(student || teacher).
DIRECTIONS = ("forward", "reverse")


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


def _check_distillation_args(
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

    ``T = 1`` is the ordinary softmax; a higher ``T`` spreads the probability over more classes, so a loss
    on it weighs the wrong classes more ("dark knowledge"). No information is lost at any finite ``T``:
    ``T * log p`` minus its mean is the centred logits.
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
            Logits computed with autograd on carry the teacher's graph, and ``backward()`` then computes
            gradients for every teacher weight too (wasted work, as notebook 04 shows).
        T: temperature > 0 applied to both logits in the soft term.
        alpha: weight in ``[0, 1]`` of the soft term; ``1 - alpha`` weighs the cross-entropy.

    Raises:
        ValueError: for ``T <= 0``, ``alpha`` outside ``[0, 1]``, mismatched shapes or labels out of range.
    """
    _check_distillation_args(student_logits, labels, teacher_logits, T, alpha)
    teacher_log_probs = F.log_softmax(teacher_logits / T, dim=1)
    return distillation_loss_from_log_probs(student_logits, labels, teacher_log_probs, T, alpha)


def distillation_loss_from_log_probs(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_log_probs: torch.Tensor,
    T: float,
    alpha: float,
    *,
    all_labelled: bool = False,
) -> torch.Tensor:
    """``distillation_loss`` from the teacher's ``log_softmax(teacher_logits / T, dim=1)``, without its checks.

    For a training loop, which checks its arguments once before the first batch and computes the
    teacher's log-probabilities once for the whole training set: each batch then costs only the loss
    itself, not its checks (nor the syncs that reading a check's result back costs). The value is the
    same. ``all_labelled=True`` promises that no label is ``IGNORE_LABEL``, so the hard term is plain
    cross-entropy, without the per-batch test for unlabelled rows.
    """
    soft = F.kl_div(
        F.log_softmax(student_logits / T, dim=1),  # the input: the student's log-probabilities
        teacher_log_probs,  # the target, as log-probabilities too (log_target=True)
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student_logits, labels) if all_labelled else hard_label_loss(student_logits, labels)
    return alpha * T * T * soft + (1 - alpha) * hard


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


def check_feature_kind(kind: str) -> None:
    """Raise ``ValueError`` unless ``kind`` is one of ``FEATURE_LOSSES``."""
    if kind not in FEATURE_LOSSES:
        raise ValueError(f"feature loss must be one of {', '.join(repr(k) for k in FEATURE_LOSSES)}, got {kind!r}.")


def feature_loss(projected: torch.Tensor, teacher_features: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    r"""How far the (projected) student features are from the teacher's, averaged over the batch.

    * ``"mse"``: mean squared error over every feature of every example, as FitNets' regressor.
    * ``"cosine"``: :math:`1 - \cos(p, t)` per example, averaged; it ignores the features' length and
      lies in ``[0, 2]``, as the cosine loss of the PyTorch distillation tutorial.

    Feature distillation (FitNets calls the teacher's guiding layer a "hint") adds
    ``feature_weight * feature_loss(...)`` to ``distillation_loss`` (``kdutils.features.train_with_features``).
    Raises ``ValueError`` for mismatched shapes or an unknown ``kind``.
    """
    check_feature_kind(kind)
    _check_features(projected, teacher_features)
    if kind == "mse":
        return F.mse_loss(projected, teacher_features)
    return (1 - F.cosine_similarity(projected, teacher_features, dim=1)).mean()


# --- sequence losses: logits of shape (words, positions, vocabulary), padded positions labelled IGNORE_LABEL ---


def _check_sequence_logits(name: str, logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or not logits.is_floating_point():
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a 3-D floating point tensor (words, positions, vocabulary), got {shape}.")


def _check_sequence_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    _check_sequence_logits("student_logits", student_logits)
    _check_sequence_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student_logits {tuple(student_logits.shape)} and teacher_logits {tuple(teacher_logits.shape)} must "
            "have the same shape: the same words, positions and vocabulary."
        )


def _real_positions(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The mask of real (not padded) positions, after checking ``targets`` against ``logits``."""
    _check_sequence_logits("logits", logits)
    if not isinstance(targets, torch.Tensor) or targets.shape != logits.shape[:2] or targets.dtype != torch.int64:
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must be int64 of shape {tuple(logits.shape[:2])} (words, positions), got {shape}.")
    mask = targets != IGNORE_LABEL
    real = targets[mask]
    vocab = logits.shape[-1]
    if real.numel() == 0:
        raise ValueError("targets have no real position (all are IGNORE_LABEL): nothing to learn from.")
    if bool((real < 0).any() | (real >= vocab).any()):
        raise ValueError(
            f"targets hold tokens from {real.min().item()} to {real.max().item()}, outside the vocabulary "
            f"(0 to {vocab - 1}) the logits score; encode words with kdutils.words.encode_words."
        )
    return mask


def sequence_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats) averaged over the real positions; padded ones (``IGNORE_LABEL``) are left out."""
    mask = _real_positions(logits, targets)
    return F.cross_entropy(logits[mask], targets[mask])


def token_distillation_loss(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor,
    T: float = 1.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """Token-level KD: ``distillation_loss`` applied at every real position of every word.

    The ``(N, L, V)`` logits are flattened to one row per real position (the padded positions are
    dropped first: ``distillation_loss`` averages its KL term over every row it is given, so padding
    left in would dilute it). With ``alpha = 0`` this is ``sequence_cross_entropy``.
    """
    _check_sequence_pair(student_logits, teacher_logits)
    mask = _real_positions(student_logits, targets)
    return distillation_loss(student_logits[mask], targets[mask], teacher_logits[mask], T=T, alpha=alpha)


def token_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor, direction: str = "forward"
) -> torch.Tensor:
    r"""The KL divergence between next-token distributions, averaged over the positions in ``mask``.

    * ``"forward"``: :math:`\mathrm{KL}(p_t \| p_s) = \sum_v p_t(v) \log \frac{p_t(v)}{p_s(v)}`. Large
      wherever the teacher gives probability that the student does not: the student must *cover*
      every token the teacher allows (mode-covering).
    * ``"reverse"``: :math:`\mathrm{KL}(p_s \| p_t) = \sum_v p_s(v) \log \frac{p_s(v)}{p_t(v)}`. Large
      wherever the student gives probability that the teacher does not: the student may drop some of
      the teacher's choices and pile its mass on the teacher's likeliest ones (mode-seeking).

    The sums run over the whole vocabulary (as in GKD), so no sampling noise enters the loss itself.
    Any vocabulary size works (a 3-token example included), as long as the two models share it.
    """
    _check_sequence_pair(student_logits, teacher_logits)
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(repr(d) for d in DIRECTIONS)}, got {direction!r}.")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != student_logits.shape[:2]:
        raise ValueError(f"mask must be a bool tensor of shape {tuple(student_logits.shape[:2])} (words, positions).")
    if not bool(mask.any()):
        raise ValueError("mask selects no position: nothing to learn from.")
    log_s = F.log_softmax(student_logits[mask], dim=-1)
    log_t = F.log_softmax(teacher_logits[mask], dim=-1)
    if direction == "forward":
        per_position = (log_t.exp() * (log_t - log_s)).sum(dim=-1)
    else:
        per_position = (log_s.exp() * (log_s - log_t)).sum(dim=-1)
    return per_position.mean()
