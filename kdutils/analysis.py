"""Analysis the notebooks draw or print: confusions, confident mistakes, soft-label structure, statistics.

Computing only; the figures are in ``kdutils.plots``.

* ``confusion_matrix``, ``per_class_accuracy``, ``most_confident_mistakes``, ``mean_soft_labels_by_class``;
* ``paired_difference``: the mean difference between two sets of runs paired by seed, its sample
  standard deviation (ddof=1), its 95% confidence interval (Student's t) and the verdict it supports;
* ``agreement`` and ``expected_calibration_error``: how often two models give the same answer, and
  how far a model's confidence is from its accuracy (``reliability_bins`` per confidence bin);
* ``mean_kl_divergence`` and ``fit_temperature``: how far one model's predictions are from another's,
  and temperature scaling (notebook 09).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "PairedDifference",
    "ReliabilityBins",
    "agreement",
    "confidence_bins",
    "confusion_matrix",
    "expected_calibration_error",
    "fit_temperature",
    "mean_kl_divergence",
    "mean_soft_labels_by_class",
    "most_confident_mistakes",
    "paired_difference",
    "per_class_accuracy",
    "reliability_bins",
    "t_quantile",
]


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` counts: row = true class, column = predicted class."""
    labels, predictions = torch.as_tensor(labels), torch.as_tensor(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {tuple(labels.shape)} and predictions {tuple(predictions.shape)} differ in shape.")
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """``(C,)`` float64: the share of each class's examples that the model's top score gets right (its recall).

    ``num_classes`` defaults to the logits' width. A class with no example in ``labels`` gets NaN (0 / 0).
    """
    logits = torch.as_tensor(logits).detach().cpu()
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, classes), got shape {tuple(logits.shape)}.")
    matrix = confusion_matrix(torch.as_tensor(labels).cpu(), logits.argmax(dim=1), num_classes or logits.shape[1])
    matrix = matrix.double()
    return matrix.diag() / matrix.sum(dim=1)


def most_confident_mistakes(
    logits: torch.Tensor, labels: torch.Tensor, k: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` wrong predictions the model was surest of: ``(indices, confidences)``, surest first.

    The confidence is the softmax probability of the predicted class. Fewer than ``k`` are returned
    when the model makes fewer mistakes; ties keep their original order.
    """
    logits, labels = torch.as_tensor(logits).detach().cpu(), torch.as_tensor(labels).detach().cpu()
    if logits.dim() != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"expected logits of shape (N, classes) and labels of shape (N,), got {tuple(logits.shape)} "
            f"and {tuple(labels.shape)}."
        )
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    confidence, predicted = logits.float().softmax(dim=1).max(dim=1)
    wrong = (predicted != labels).nonzero().flatten()
    order = torch.sort(confidence[wrong], descending=True, stable=True).indices[:k]
    chosen = wrong[order]
    return chosen, confidence[chosen]


def mean_soft_labels_by_class(probabilities: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` matrix whose row ``c`` is the average probability vector over the examples of true class ``c``.

    With a teacher's temperature-softened outputs this is the class-similarity structure it has
    learned ("dark knowledge"): the off-diagonal mass of row ``c`` says which other classes images
    of ``c`` resemble. Every class must have at least one example.
    """
    probabilities = torch.as_tensor(probabilities).detach().cpu()
    labels = torch.as_tensor(labels).detach().cpu()
    if probabilities.dim() != 2 or probabilities.shape[1] != num_classes:
        raise ValueError(
            f"probabilities must be (N, {num_classes}): one row per example, one column per class; "
            f"got shape {tuple(probabilities.shape)}."
        )
    if labels.dim() != 1 or labels.shape[0] != probabilities.shape[0]:
        raise ValueError(
            f"labels must be a 1-D tensor with one class index per row of probabilities "
            f"({probabilities.shape[0]}), got shape {tuple(labels.shape)}."
        )
    labels = labels.long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got values from {labels.min().item()} to {labels.max().item()}; "
            "leave unlabelled examples (IGNORE_LABEL) out first."
        )
    counts = torch.bincount(labels, minlength=num_classes)
    if bool((counts == 0).any()):
        missing = [c for c in range(num_classes) if counts[c] == 0]
        raise ValueError(f"classes {missing} have no examples, so their average soft label is undefined.")
    sums = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    sums.index_add_(0, labels, probabilities.to(torch.float64))
    return (sums / counts.unsqueeze(1)).to(probabilities.dtype)


def _t_cdf(t: float, df: int) -> float:
    """P(X <= t) for Student's t with ``df`` degrees of freedom (Simpson's rule on its density)."""
    if t < 0:
        return 1.0 - _t_cdf(-t, df)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    steps = 2000  # even; the density is smooth, so this is exact to far below the digits we report
    h = t / steps
    total = 0.0
    for i in range(steps + 1):
        x = i * h
        weight = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += weight * math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))
    return 0.5 + total * h / 3


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom (e.g. 4.303 for 0.975, 2)."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p must lie in [0.5, 1), got {p!r}.")
    if not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be a positive integer, got {df!r}.")
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2
    for _ in range(60):  # bisection
        middle = (low + high) / 2
        low, high = (middle, high) if _t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class PairedDifference:
    """``b - a`` over runs paired by seed: mean, sample standard deviation (ddof=1), confidence interval.

    The interval's level is ``confidence`` (0.95 unless a family of comparisons asked for more).
    """

    mean: float
    std: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero."""
        return self.low > 0 or self.high < 0

    @property
    def half_width(self) -> float:
        """Half the interval's width: about the smallest true difference these runs can detect."""
        return (self.high - self.low) / 2

    def verdict(self, better: str = "better", worse: str = "worse") -> str:
        """What the interval supports: ``better`` (it lies above zero), ``worse`` (below) or no measurable difference.

        Name the two sides for the quantity compared, e.g. ``verdict("higher (worse)", "lower (better)")``
        for an error.
        """
        return better if self.low > 0 else worse if self.high < 0 else "no measurable difference"

    def __str__(self) -> str:
        level = f"{100 * self.confidence:.1f}".removesuffix(".0")  # 95, or 98.3 for an adjusted interval
        return f"{self.mean:+.2f} ({level}% CI {self.low:+.2f} to {self.high:+.2f}, n = {self.n})"


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedDifference:
    """The mean of ``b[i] - a[i]`` with its t-based confidence interval.

    ``a`` and ``b`` are results of runs paired by seed (same initial weights, same batches), so
    their difference removes what the seed does to both. The interval is
    ``mean ± t(df = n - 1) * std / sqrt(n)``; it needs at least two pairs. For ``k`` comparisons from one
    experiment, ``confidence=1 - 0.05 / k`` gives Bonferroni-adjusted intervals (the chance that any of the
    ``k`` excludes a true difference of zero stays at most 5%); the printed interval names its level.
    """
    a = [float(v) for v in a]
    b = [float(v) for v in b]
    if len(a) != len(b):
        raise ValueError(f"got {len(a)} results for a and {len(b)} for b; pair each run with one run.")
    if len(a) < 2:
        raise ValueError(f"a confidence interval needs at least 2 pairs of runs, got {len(a)}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}.")
    differences = [y - x for x, y in zip(a, b)]
    n = len(differences)
    mean = sum(differences) / n
    std = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half_width = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return PairedDifference(mean, std, mean - half_width, mean + half_width, n, confidence)


def _check_probabilities(name: str, probabilities: torch.Tensor) -> torch.Tensor:
    if not isinstance(probabilities, torch.Tensor) or probabilities.dim() != 2 or probabilities.shape[0] == 0:
        shape = tuple(probabilities.shape) if isinstance(probabilities, torch.Tensor) else type(probabilities).__name__
        raise ValueError(f"{name} must be a non-empty 2-D tensor (examples, classes), got {shape}.")
    probabilities = probabilities.detach().double()
    if bool((probabilities < 0).any()) or not torch.allclose(
        probabilities.sum(dim=1), torch.ones(len(probabilities), dtype=torch.float64), atol=1e-4
    ):
        raise ValueError(f"{name} must be probabilities: each row >= 0 and summing to 1 (apply softmax to logits).")
    return probabilities


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of rows on which two models' outputs (logits or probabilities) have the same argmax."""
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty 2-D tensor (examples, classes).")
    if a.shape != b.shape:
        raise ValueError(f"the two outputs differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}.")
    return (a.argmax(dim=1) == b.argmax(dim=1)).double().mean().item()


def expected_calibration_error(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over confidence bins.

    The predictions are grouped by their confidence (the largest probability) into ``bins`` equal
    bins over (0, 1]; ECE is the share-weighted mean of ``|accuracy - mean confidence|`` per bin
    (Guo et al., 2017). 0 is perfectly calibrated. It is ``reliability_bins(...).ece``.
    """
    return reliability_bins(probabilities, labels, bins).ece


# ---- fidelity and calibration (notebook 09) -------------------------------------------------------------------


def mean_kl_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean over rows of ``KL(p || q) = sum_c p_c log(p_c / q_c)`` in nats: how far ``q`` predicts from ``p``.

    ``p`` and ``q`` are ``(N, classes)`` probabilities (each row sums to 1), e.g. a teacher's and a
    student's ``softmax`` outputs on the same examples; ``p`` is the reference (the teacher). 0 means
    identical predictions on every row. A class with ``p_c = 0`` adds nothing; ``q_c = 0`` where
    ``p_c > 0`` makes the divergence infinite (compute the softmax in float64 to avoid underflow).
    """
    p = _check_probabilities("p", p)
    q = _check_probabilities("q", q)
    if p.shape != q.shape:
        raise ValueError(f"p and q differ in shape: {tuple(p.shape)} vs {tuple(q.shape)}; "
                         "give both models' predictions on the same examples.")
    per_row = (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(dim=1)
    return per_row.clamp(min=0).mean().item()  # >= 0; the clamp only removes rounding below zero


@dataclass(frozen=True)
class ReliabilityBins:
    """Predictions grouped by confidence: per bin, the mean confidence, the accuracy and the count.

    Bin ``k`` holds the confidences in ``(edges[k], edges[k + 1]]``; an empty bin has NaN confidence and
    accuracy and count 0. ``total`` counts every prediction grouped. ``ece`` is the expected calibration error.
    """

    edges: list[float]
    confidence: list[float]
    accuracy: list[float]
    count: list[int]
    total: int

    @property
    def ece(self) -> float:
        """The share-weighted mean over the bins of ``|accuracy - mean confidence|``."""
        return sum(n / self.total * abs(a - c) for n, a, c in zip(self.count, self.accuracy, self.confidence) if n)


def confidence_bins(confidence: torch.Tensor, correct: torch.Tensor, which: torch.Tensor, bins: int) -> ReliabilityBins:
    """Per bin, the mean ``confidence``, the mean of ``correct`` (the accuracy) and the count of predictions.

    ``which`` gives each prediction's bin, 0 to ``bins - 1``; a prediction given another number is in no
    bin (it still counts in ``total``). ``reliability_bins`` gives each prediction its bin by confidence.
    """
    confidence, correct = confidence.double(), correct.double()
    mean_confidence, accuracy, count = [], [], []
    for k in range(bins):
        members = which == k
        n = int(members.sum())
        count.append(n)
        mean_confidence.append(confidence[members].mean().item() if n else math.nan)
        accuracy.append(correct[members].mean().item() if n else math.nan)
    return ReliabilityBins([k / bins for k in range(bins + 1)], mean_confidence, accuracy, count, len(confidence))


def reliability_bins(probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> ReliabilityBins:
    """What a reliability diagram draws: accuracy against mean confidence in ``bins`` equal confidence bins.

    The confidence of a prediction is its largest probability; bin ``k`` holds the confidences in
    ``(k / bins, (k + 1) / bins]``. A well-calibrated model has accuracy close to confidence in every bin.
    """
    probabilities = _check_probabilities("probabilities", probabilities)
    if not isinstance(labels, torch.Tensor) or labels.shape != (probabilities.shape[0],):
        raise ValueError(f"labels must be a 1-D tensor with one class index per row ({probabilities.shape[0]}).")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}.")
    confidence, predicted = probabilities.max(dim=1)
    correct = predicted == labels
    which = (confidence * bins).ceil().long().clamp(1, bins) - 1  # (k/bins, (k+1)/bins] -> k; 1.0 in the last
    return confidence_bins(confidence, correct, which, bins)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, low: float = 0.05, high: float = 20.0) -> float:
    """Temperature scaling (Guo et al., 2017): the ``T`` in ``[low, high]`` minimising the NLL of ``softmax(z / T)``.

    ``z`` are the model's ``logits`` and ``labels`` the true classes. Fit ``T`` on a validation split the
    model did not train on, never on the test set; then divide the model's logits by ``T``. ``T > 1``
    softens an overconfident model, ``T < 1`` sharpens an underconfident one; the predicted class (the
    argmax) never changes, so accuracy stays the same. The NLL is convex in ``1 / T``, so a
    golden-section search over ``1 / T`` finds the minimum; a result at ``low`` or ``high`` means the
    best ``T`` lies beyond that bound.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] == 0 \
            or not logits.is_floating_point():
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a non-empty 2-D floating point tensor (examples, classes), got {shape}.")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("logits holds NaN or infinite values.")
    if not isinstance(labels, torch.Tensor) or labels.shape != (logits.shape[0],) or labels.is_floating_point():
        raise ValueError(f"labels must be a 1-D integer tensor with one class index per row ({logits.shape[0]}).")
    if bool((labels < 0).any()) or bool((labels >= logits.shape[1]).any()):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}); leave unlabelled examples out.")
    if not (0 < low < high and math.isfinite(high)):
        raise ValueError(f"need 0 < low < high, got low={low!r}, high={high!r}.")
    z = logits.detach().double()
    true_logit = z.gather(1, labels.long().unsqueeze(1)).squeeze(1)

    def nll(beta: float) -> float:
        return (torch.logsumexp(beta * z, dim=1) - beta * true_logit).mean().item()

    a, b = 1 / high, 1 / low  # search over beta = 1 / T
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(80):  # the interval shrinks by 0.618 each step: far below any digit we print
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    return 1 / ((a + b) / 2)
