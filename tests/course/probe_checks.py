"""A probe of the exercise checks: many buggy answers per check, and a few right ones written differently.

    python tests/course/probe_checks.py

Not a test (pytest does not collect it): it measures. For every answer it prints the verdict and the first
words of the message, then counts false passes (a buggy answer passed), false failures (a right answer
failed), crashes (a check raised) and generic diagnoses (a buggy answer met with a message that names no
fault: the "expected X, got Y" kind). Each buggy answer carries the phrase its diagnosis should contain.
"""

from __future__ import annotations

import functools
import io
from contextlib import redirect_stdout

import torch
from torch.nn import functional as F

from kdutils import exercises

GENERIC = ("compare term by term", "should be", "the correct one", "got ")


def kd(s, y, t, T, alpha, *, soft=None, hard=None, scale=None, alpha_soft=None, alpha_hard=None):
    """The distillation loss with one part replaced (each part a function of the inputs)."""
    log_q, log_p = F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1)
    kl = soft(s, t, T) if soft else F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    ce = hard(s, y, T) if hard else F.cross_entropy(s, y)
    a_s = alpha if alpha_soft is None else alpha_soft(alpha)
    a_h = 1 - alpha if alpha_hard is None else alpha_hard(alpha)
    return a_s * (T * T if scale is None else scale(T)) * kl + a_h * ce


def loss_answers():
    p = functools.partial
    lsm = functools.partial(F.log_softmax, dim=1)
    return {
        "right: soft cross-entropy": (p(kd, soft=lambda s, t, T: -(F.softmax(t / T, 1) * lsm(s / T)).sum(1).mean()),
                                      None),
        "right: KL written out": (p(kd, soft=lambda s, t, T: (F.softmax(t / T, 1) * (lsm(t / T) - lsm(s / T)))
                                    .sum(1).mean()), None),
        "halved T**2": (p(kd, scale=lambda T: T * T / 2), "half"),
        "T**4": (p(kd, scale=lambda T: T**4), "T**4"),
        "no T**2": (p(kd, scale=lambda T: 1.0), "T**2"),
        "T not T**2": (p(kd, scale=lambda T: T), "not by T**2"),
        "reduction mean": (p(kd, soft=lambda s, t, T: F.kl_div(lsm(s / T), F.softmax(t / T, 1), reduction="mean")),
                           "reduction='mean'"),
        "reduction sum": (p(kd, soft=lambda s, t, T: F.kl_div(lsm(s / T), F.softmax(t / T, 1), reduction="sum")),
                          "reduction='sum'"),
        "softmax as input": (p(kd, soft=lambda s, t, T: F.kl_div(F.softmax(s / T, 1), F.softmax(t / T, 1),
                                                                 reduction="batchmean")), "log-probabilities"),
        "reversed KL": (p(kd, soft=lambda s, t, T: F.kl_div(lsm(t / T), F.softmax(s / T, 1), reduction="batchmean")),
                        "KL(student || teacher)"),
        "T only on student": (p(kd, soft=lambda s, t, T: F.kl_div(lsm(s / T), F.softmax(t, 1), reduction="batchmean")),
                              "only the student's"),
        "T only on teacher": (p(kd, soft=lambda s, t, T: F.kl_div(lsm(s), F.softmax(t / T, 1), reduction="batchmean")),
                              "only the teacher's"),
        "no temperature": (p(kd, soft=lambda s, t, T: F.kl_div(lsm(s), F.softmax(t, 1), reduction="batchmean")),
                           "neither side"),
        "missing exp": (p(kd, soft=lambda s, t, T: (lsm(t / T) * (lsm(t / T) - lsm(s / T))).sum(1).mean()),
                        "exp is missing"),
        "soft sign reversed": (p(kd, soft=lambda s, t, T: (F.softmax(t / T, 1) * (lsm(s / T) - lsm(t / T)))
                                 .sum(1).mean()), "wrong sign"),
        "whole loss negated": (lambda *a: -kd(*a), "wrong sign"),
        "alpha swapped": (p(kd, alpha_soft=lambda a: 1 - a, alpha_hard=lambda a: a), "alpha weights the other"),
        "alpha unused": (p(kd, alpha_soft=lambda a: 1.0, alpha_hard=lambda a: 1.0), "does not use alpha"),
        "hard at T": (p(kd, hard=lambda s, y, T: F.cross_entropy(s / T, y)), "uses the temperature"),
        "hard on probabilities": (p(kd, hard=lambda s, y, T: F.cross_entropy(F.softmax(s, 1), y)), "probabilities"),
        "nll on raw logits": (p(kd, hard=lambda s, y, T: F.nll_loss(s, y)), "nll_loss"),
        "T**2 on both": (p(kd, hard=lambda s, y, T: T * T * F.cross_entropy(s, y)), "multiplies the cross-entropy"),
        "halved cross-entropy": (p(kd, hard=lambda s, y, T: 0.5 * F.cross_entropy(s, y)), "half"),
        "no hard term": (p(kd, alpha_hard=lambda a: 0.0), "cross-entropy with the hard labels is missing"),
        "squared soft term": (p(kd, soft=lambda s, t, T: F.kl_div(lsm(s / T), F.softmax(t / T, 1),
                                                                  reduction="batchmean") ** 2), None),
        "torch NotImplementedError": (lambda *a: _raise_torch_not_implemented(), "not the exercise's stub"),
    }


def _raise_torch_not_implemented():
    raise NotImplementedError("\"softmax_lastdim_kernel_impl\" not implemented for 'Long'")


def ece_answers():
    def ece(p, y, bins, *, top=lambda c: c.max(1), which=None, weight=True, absolute=True):
        confidence, predicted = top(p)
        correct = (predicted == y).double()
        confidence = confidence.double()
        index = which(confidence, bins) if which else (confidence * bins).ceil().long().clamp(1, bins) - 1
        total = 0.0
        for k in range(bins):
            members = index == k
            if members.any():
                gap = correct[members].mean() - confidence[members].mean()
                gap = gap.abs() if absolute else gap
                total += (members.double().mean() if weight else 1.0 / bins) * gap
        return float(total)

    def quantile(c, bins):
        return (torch.argsort(torch.argsort(c)) * bins // len(c)).long()

    p = functools.partial
    return {
        "right: loop": (ece, None),
        "quantile bins": (p(ece, which=quantile), "quantile bins"),
        "merged top bins": (p(ece, which=lambda c, b: ((c * b).ceil().long().clamp(1, b) - 1).clamp(max=b - 2)),
                            "top two bins"),
        "floor edges": (p(ece, which=lambda c, b: (c * b).floor().long().clamp(max=b - 1)), "bin edge"),
        "unweighted": (p(ece, weight=False), "averaged the bins equally"),
        "no abs": (p(ece, absolute=False), "absolute value"),
        "true-class confidence": (lambda p_, y, b: ece(p_, y, b, top=lambda q: (q[torch.arange(len(y)), y],
                                                                                 q.argmax(1))), "true class"),
    }


def gap_answers():
    return {
        "right": (lambda s, d, t: (d - s) / (t - s), None),
        "percentage": (lambda s, d, t: 100 * (d - s) / (t - s), "percentage"),
        "reversed": (lambda s, d, t: (s - d) / (t - s), None),
        "geometric mean": (lambda s, d, t: (d * s) ** 0.5 / t, None),
        "clipped": (lambda s, d, t: min(1.0, (d - s) / (t - s)), None),
    }


def ensemble_answers():
    def probs(members, T):
        return torch.softmax(torch.stack(members) / T, dim=2)

    return {
        "right": (lambda members, T: probs(members, T).mean(dim=0), None),
        "averaged logits": (lambda members, T: torch.softmax(torch.stack(members).mean(0) / T, dim=1),
                            "geometric mean"),
        "geometric mean of probabilities": (lambda members, T: probs(members, T).log().mean(0).exp(),
                                            "geometric mean"),
        "sum not mean": (lambda members, T: probs(members, T).sum(0), "number of members"),
        "no temperature": (lambda members, T: probs(members, 1.0).mean(0), "temperature has no effect"),
        "log-probabilities": (lambda members, T: probs(members, T).mean(0).log(), "log-probabilities"),
    }


PROBES = {"check_ensemble_average": ensemble_answers, "check_distillation_loss": loss_answers,
          "check_expected_calibration_error": ece_answers,
          "check_gap_closed": gap_answers}


def main() -> None:
    counts = {"answers": 0, "false pass": 0, "false failure": 0, "crash": 0, "generic": 0, "named as expected": 0}
    for check_name, answers in PROBES.items():
        check = getattr(exercises, check_name)
        print(f"\n{check_name}")
        for name, (answer, phrase) in answers().items():
            counts["answers"] += 1
            right = name.startswith("right")
            try:
                with redirect_stdout(io.StringIO()):
                    result = check(answer)
            except Exception as error:  # noqa: BLE001  (a crash of the check is what this counts)
                counts["crash"] += 1
                print(f"  CRASH  {name}: {type(error).__name__}: {error}")
                continue
            if right != result.passed:
                counts["false failure" if right else "false pass"] += 1
            if not right and not result.passed:
                if phrase and phrase in result.message:
                    counts["named as expected"] += 1
                elif any(word in result.message for word in GENERIC):
                    counts["generic"] += 1
            mark = "ok " if right == result.passed else "BAD"
            print(f"  {mark}  {name}: {'PASSED' if result.passed else 'NOT YET'}: {result.message[:110]}")
    print("\n" + ", ".join(f"{key}: {value}" for key, value in counts.items()))


if __name__ == "__main__":
    main()
