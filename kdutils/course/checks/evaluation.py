"""Checks of notebooks 05-07: the gap closed, the bias correction, the expected calibration error."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from ...analysis import confidence_bins, expected_calibration_error
from ...models import StudentModel
from .harness import Diagnosis, check_finite, close, run_check, same, to_number, to_tensor
from .verdicts import CheckResult

__all__ = ["check_add_to_bias", "check_expected_calibration_error", "check_gap_closed"]


# --- notebook 05: gap closed ----------------------------------------------------------------------------


def check_gap_closed(gap: Callable[[float, float, float], float]) -> CheckResult:
    """``gap(scratch, distilled, teacher)`` must be ``(distilled - scratch) / (teacher - scratch)``."""

    def body(call) -> str:
        # Accuracies, and Hinton et al.'s MNIST error counts (lower is better), negated and as they are.
        cases = [(80.0, 82.0, 90.0), (80.0, 91.0, 90.0), (80.0, 79.0, 90.0), (0.80, 0.86, 0.90), (85, 88, 89),
                 (-146, -74, -67), (146, 74, 67), (70.0, 72.5, 95.0)]
        for scratch, distilled, teacher in cases:
            got = to_number(call(gap, scratch, distilled, teacher), "the gap closed")
            expected = (distilled - scratch) / (teacher - scratch)
            if close(got, expected):
                continue
            if close(got, 100 * expected):
                raise Diagnosis("return a fraction (0.2 for a fifth of the gap), not a percentage.")
            if close(got, min(max(expected, 0.0), 1.0)):
                if expected > 1:
                    why = f"here the student beat its teacher, {expected:.2f} of the gap (a born-again student)"
                else:
                    why = f"here the student lost to its scratch twin, {expected:.2f} of the gap: distillation hurt"
                raise Diagnosis(f"do not clip to [0, 1]: {why}, and the number should say so.")
            if teacher != distilled and close(got, (distilled - scratch) / (teacher - distilled)):
                raise Diagnosis("divide by the whole gap to close, teacher - scratch, not teacher - distilled.")
            if close(got, -expected) and teacher < scratch:
                raise Diagnosis(f"gap({scratch}, {distilled}, {teacher}) should be {expected:.4f}, got {got:.4f}: "
                                "with error counts (lower is better) both differences are negative and their "
                                "signs cancel. Divide (distilled - scratch) by (teacher - scratch) as they are, "
                                "without abs().")
            if close(got, -expected) and expected < 0:
                raise Diagnosis(f"gap({scratch}, {distilled}, {teacher}) should be {expected:.4f}, got {got:.4f}: "
                                "when distillation hurts, the gap closed is negative; keep its sign (no abs()).")
            if close(got, -expected):
                raise Diagnosis("the sign is reversed: a distilled student better than scratch closes a positive gap.")
            if not close(expected, round(expected)) and any(close(got, whole(expected))
                                                            for whole in (math.floor, math.trunc, round)):
                raise Diagnosis(f"you returned the whole number {got:g} where the fraction is {expected:.4f}: // "
                                "(floor division), int() and round() each drop the fraction. Divide with / and "
                                "keep it; round only when you print it.")
            if any(close(got, round(expected, digits)) for digits in range(1, 4)):
                raise Diagnosis(f"do not round: {expected!r} is the fraction; round only when you print it.")
            raise Diagnosis(f"gap({scratch}, {distilled}, {teacher}) should be {expected:.4f}, got {got:.4f}.")
        return "(distilled - scratch) / (teacher - scratch), unclipped: above 1 when the student beats its teacher."

    return run_check(gap, body, library=("gap_closed",))


# --- notebook 06: the bias correction -------------------------------------------------------------------


def check_add_to_bias(add_to_bias: Callable[[nn.Module, int, float], nn.Module]) -> CheckResult:
    """``add_to_bias(model, cls, shift)`` must return a *copy* whose output bias for ``cls`` is raised by ``shift``."""

    def body(call) -> str:
        for seed, (cls, shift) in enumerate(((7, 2.5), (0, -1.25), (9, 0.75), (3, 4.0))):
            torch.manual_seed(seed)
            model = StudentModel()
            original = copy.deepcopy(model.state_dict())
            x = torch.randn(5, 784)
            shifted = call(add_to_bias, model, cls, shift)
            if not all(torch.equal(v, model.state_dict()[k]) for k, v in original.items()):
                raise Diagnosis("your function changed the model it was given: shift a copy (copy.deepcopy(model)), "
                                "so the uncorrected student is still there to compare with.")
            if not isinstance(shifted, nn.Module):
                raise Diagnosis(f"return the shifted copy of the model, got {type(shifted).__name__}.")
            with torch.no_grad():
                difference = to_tensor(call(shifted, x), "the shifted model's output") - model(x).double()
            if difference.shape != (5, 10):
                raise Diagnosis(f"the shifted model should give 10 logits per image, got shape "
                                f"{tuple(difference.shape)}.")
            check_finite(difference, f"the shifted model's logits (add_to_bias(model, {cls}, {shift}))")
            expected = torch.zeros(5, 10, dtype=torch.float64)
            expected[:, cls] = shift
            if same(difference, expected):
                continue
            changed = [c for c in range(10) if not same(difference[:, c], torch.zeros(5))]
            column = difference[:, changed[0]] if changed else None
            if len(changed) == 10 and same(difference, torch.full((5, 10), shift, dtype=torch.float64)):
                raise Diagnosis("you raised every class's bias: raise only the one of class cls (bias[cls]).")
            if changed == [cls] and same(column, torch.full((5,), shift - original["fc2.bias"][cls].item())):
                raise Diagnosis(f"you set bias[{cls}] to {shift}: add shift to it (+=), keeping what it learnt.")
            if len(changed) == 1 and changed[0] != cls:
                raise Diagnosis(f"asked for class {cls}, you shifted class {changed[0]}: use the cls you were given.")
            if changed == [cls] and same(column, torch.full((5,), -shift, dtype=torch.float64)):
                raise Diagnosis(f"the logit of class {cls} moved by {-shift:g}, the opposite of shift = {shift:g}: "
                                "add shift to the bias (+=), do not subtract it.")
            bias_before = original["fc2.bias"][cls].item()
            if changed == [cls] and same(column, torch.full((5,), bias_before * (shift - 1), dtype=torch.float64)):
                raise Diagnosis(f"you multiplied bias[{cls}] by shift (*=): add shift to it (+=), so every logit of "
                                f"class {cls} rises by the same {shift:g}.")
            if changed == [cls] and same(column, column[0].expand(5)):
                raise Diagnosis(f"the logit of class {cls} rose by {column[0].item():.4g}, not by shift = {shift}: "
                                "use the shift you were given.")
            if changed == [cls]:
                raise Diagnosis(f"the logit of class {cls} changed by a different amount for different images: "
                                "shift the output layer's bias, not its weights.")
            raise Diagnosis(f"add_to_bias(model, {cls}, {shift}): the shifted model's outputs differ from the "
                            f"original's by more than bias[{cls}] + {shift}.")
        return "a copy whose class-7 logit is 2.5 higher for every image, the original untouched."

    return run_check(add_to_bias, body, library=("add_to_bias",))


# --- notebook 07: expected calibration error ---------------------------------------------------------------


def _ece_cases() -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(probabilities, labels, bins): random predictions, and predictions whose confidence sits on bin edges."""
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(3 * torch.randn(200, 10, generator=generator), dim=1)
    labels = torch.randint(0, 10, (200,), generator=generator)
    labels[:120] = probabilities[:120].argmax(dim=1)  # right 60% of the time or more
    # Confidences of exactly 1/4, 1/2, 5/8, 3/4 and 1 (exact in binary): on the edges of 4 and 8 bins.
    edges = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.5, 0.25, 0.125, 0.125], [0.5, 0.5, 0.0, 0.0],
                          [0.625, 0.125, 0.125, 0.125], [0.75, 0.25, 0.0, 0.0], [0.75, 0.125, 0.125, 0.0],
                          [1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.375, 0.375, 0.125, 0.125],
                          [0.5, 0.125, 0.125, 0.25]])
    edge_labels = torch.tensor([0, 0, 1, 0, 1, 0, 0, 2, 0, 3])
    return [(probabilities, labels, 10), (probabilities, labels, 15), (probabilities[:37], labels[:37], 7),
            (edges, edge_labels, 4), (edges, edge_labels, 8), (*_alternating_case(), 5)]


def _alternating_case() -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions whose bins (of 5) are in turn all right and all wrong: each bin's gap has the other sign than
    its neighbours', so merging any two bins (the top two, say) changes the ECE."""
    confidences = torch.tensor([0.15, 0.15, 0.3, 0.35, 0.5, 0.45, 0.7, 0.65, 0.7, 0.9, 0.85])
    rest = (1 - confidences) / 9  # the other nine classes share what is left, each below the top one
    probabilities = torch.cat([confidences[:, None], rest[:, None].expand(-1, 9)], dim=1).double()
    right = torch.tensor([1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1])
    return probabilities, torch.where(right.bool(), 0, 1)


def _ece_with(confidence: torch.Tensor, correct: torch.Tensor, which: torch.Tensor, bins: int, weighted=True) -> float:
    """ECE from given bin numbers (``which``; numbers outside 0..bins-1 are in no bin): for the mistakes' variants."""
    grouped = confidence_bins(confidence, correct, which, bins)
    if weighted:
        return grouped.ece
    gaps = [abs(a - c) for a, c, n in zip(grouped.accuracy, grouped.confidence, grouped.count) if n]
    return sum(gaps) / len(gaps)


def check_expected_calibration_error(ece: Callable[[torch.Tensor, torch.Tensor, int], float]) -> CheckResult:
    """``ece(probabilities, labels, bins)`` must match ``kdutils.analysis.expected_calibration_error``.

    Bin k holds the confidences in (k/bins, (k+1)/bins]; the check includes confidences exactly on an edge.
    """

    def body(call) -> str:
        for probabilities, labels, bins in _ece_cases():
            got = to_number(call(ece, probabilities.clone(), labels.clone(), bins), "the ECE")
            expected = expected_calibration_error(probabilities, labels, bins)
            if close(got, expected, rel=1e-4):
                continue
            if close(got, 100 * expected, rel=1e-4):
                raise Diagnosis("return a fraction between 0 and 1, not a percentage.")
            for other in (10, 15):
                if other != bins and close(got, expected_calibration_error(probabilities, labels, other), rel=1e-4):
                    raise Diagnosis(f"you used {other} bins when asked for {bins}: use the bins you were given.")
            confidence, predicted = probabilities.max(dim=1)
            correct = (predicted == labels).double()
            which = (confidence * bins).ceil().long().clamp(1, bins) - 1
            if close(got, _ece_with(confidence, correct, which, bins, weighted=False), rel=1e-4):
                raise Diagnosis("you averaged the bins equally: weight each bin's |accuracy - confidence| by its "
                                "share of the examples.")
            floor = (confidence * bins).floor().long()
            if any(close(got, _ece_with(confidence, correct, bin_of, bins), rel=1e-4)
                   for bin_of in (floor, floor.clamp(max=bins - 1))):
                raise Diagnosis(f"a confidence exactly on a bin edge went to the bin above it (with {bins} bins, "
                                f"{1 / bins:g} belongs to the first bin, and 1.0 to the last): bin k holds "
                                "(k/bins, (k+1)/bins], closed on the right, so use ceil(confidence * bins) - 1.")
            if close(got, _ece_with(confidence, correct, which.clamp(max=bins - 2), bins), rel=1e-4):
                raise Diagnosis(f"your top two bins are one: with {bins} bins, bin {bins - 1} holds ("
                                f"{(bins - 1) / bins:g}, 1] on its own. Is a range one short (range(bins - 1)), or "
                                "the bin number clamped to bins - 2?")
            ranks = torch.argsort(torch.argsort(confidence, stable=True), stable=True)
            if close(got, _ece_with(confidence, correct, ranks * bins // len(labels), bins), rel=1e-4):
                raise Diagnosis("your bins hold the same number of predictions each (quantile bins): the ECE's bins "
                                "are of equal width instead, bin k holds the confidences in (k/bins, (k+1)/bins].")
            true_class = probabilities[torch.arange(len(labels)), labels]
            if close(got, _ece_with(true_class, correct, (true_class * bins).ceil().long().clamp(1, bins) - 1,
                                    bins), rel=1e-4):
                raise Diagnosis("the confidence is the largest probability (of the predicted class), not the "
                                "probability of the true class.")
            overall = correct.mean().item() - confidence.double().mean().item()
            if close(got, overall, rel=1e-4) or close(got, abs(overall), rel=1e-4):
                # Share-weighted signed gaps add up to the overall gap: the bins cancel one another out.
                raise Diagnosis("your ECE equals the gap between the overall accuracy and the overall confidence. "
                                "Either the absolute value is missing in each bin (signed gaps of over- and "
                                "under-confident bins cancel out: take |accuracy - confidence| per bin, before "
                                "weighting and adding), or the predictions were never grouped into bins.")
            raise Diagnosis(f"with {bins} bins on {len(labels)} predictions the ECE should be {expected:.4f}, "
                            f"got {got:.4f}.")
        return "the share-weighted gap between accuracy and confidence per bin, as kdutils computes it."

    return run_check(ece, body, library=("expected_calibration_error", "reliability_bins"))
