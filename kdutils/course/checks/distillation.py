"""Checks of notebooks 03 and 04: softmax with a temperature, and the distillation loss.

The distillation bugs are the ones reported again and again in public issue trackers: the log of raw
logits, ``reduction='mean'``, a missing ``T**2``, the KL divergence the wrong way round, ``alpha`` on
the wrong term. Each of them trains without an error and quietly gives a worse student. The check
models the loss part by part (``LOSS_FAULTS``): the faults of each part, alone or two together, are
recognised by the gradient they give, and a match is confirmed at a second temperature before it is named.
The training step's check is in ``step``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import torch
from torch.nn import functional as F

from ...losses import distillation_loss
from .harness import Diagnosis, check_finite, close, plain_tensor, run_check, same, to_number, to_tensor
from .verdicts import CheckResult

__all__ = ["LOSS_FAULTS", "check_distillation_loss", "check_softmax_with_temperature", "is_nan", "nan_diagnosis",
           "reference", "value_and_gradient"]


def _probabilities(answer) -> torch.Tensor:
    """The student's softmax as float64; half precision is named, since its rounding hides every other fault."""
    if isinstance(answer, torch.Tensor) and answer.dtype in (torch.float16, torch.bfloat16):
        raise Diagnosis(f"your probabilities are {str(answer.dtype).removeprefix('torch.')}, whose rounding "
                        "(about 1e-3) is too coarse to compare: compute and return them in the logits' "
                        "dtype (float32 here).")
    return to_tensor(answer, "the result")


def check_softmax_with_temperature(softmax_t: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``softmax_t(logits, T)`` must return ``softmax(logits / T)`` over the classes (the last dimension).

    The exercise asks for it without ``torch.softmax``; the check says so when the answer uses a ready-made softmax.
    """

    def body(call) -> str:
        generator = torch.Generator().manual_seed(0)
        cases = [(3 * torch.randn(4, 10, generator=generator), T) for T in (1.0, 4.0, 0.5)]
        cases += [(5 * torch.randn(6, 5, generator=generator), T) for T in (2.5, 3)]
        cases += [(2 * torch.randn(2, 3, 5, generator=generator), 2.0)]  # notebook 10's (batch, position, vocabulary)
        for logits, T in cases:
            got = _probabilities(call(softmax_t, logits.clone(), T))
            if got.shape != logits.shape:
                raise Diagnosis(f"return one probability per logit, shape {tuple(logits.shape)}, got "
                                f"{tuple(got.shape)}.")
            check_finite(got, f"logits between {logits.min():.1f} and {logits.max():.1f} at T = {T}")
            z = logits.double()
            expected = torch.softmax(z / T, dim=-1)
            if same(got, expected, atol=1e-6):
                continue
            if same(got, torch.softmax(z * T, dim=-1), atol=1e-6):
                raise Diagnosis("you multiplied the logits by T; divide them by T (a higher T must flatten).")
            if same(got, torch.softmax(z / T, dim=0), atol=1e-6):
                raise Diagnosis("you normalised over dim 0, the batch; normalise over the classes (dim=-1).")
            if z.dim() > 2 and same(got, torch.softmax(z / T, dim=1), atol=1e-6):
                raise Diagnosis(f"for logits of shape {tuple(z.shape)} you normalised over dim 1; the classes are "
                                "the last dimension (dim=-1), whatever the number of dimensions before them.")
            if T != 1.0 and same(got, torch.softmax(z, dim=-1), atol=1e-6):
                raise Diagnosis("your result does not depend on T: divide the logits by T before the exponential.")
            if T != 1.0 and same(got, torch.softmax(z / T**2, dim=-1), atol=1e-6):
                raise Diagnosis("you divided the logits by T twice (by T**2): divide them by T once.")
            if same(got, torch.log_softmax(z / T, dim=-1), atol=1e-6):
                raise Diagnosis("you returned log-probabilities (the log of the softmax): return the probabilities "
                                "themselves, exp(logits / T) over its row sum.")
            scaled = z / T
            if same(got, scaled / scaled.sum(dim=-1, keepdim=True), atol=1e-6):
                raise Diagnosis("an exp is missing: you divided the scaled logits by their sum, but probabilities "
                                "are exp(logits / T) over the row sum of exp(logits / T).")
            if same(got, torch.softmax(z - z.max(dim=0, keepdim=True).values, dim=-1) ** (1 / T), atol=1e-6) or \
                    same(got, torch.softmax((z - z.max(dim=0, keepdim=True).values) / T, dim=-1), atol=1e-6):
                raise Diagnosis("you subtracted each column's maximum (dim=0): subtract each row's maximum, "
                                "max(dim=-1, keepdim=True), which leaves each row's softmax unchanged.")
            if T != 1.0 and same(got, torch.softmax(z, dim=-1) / T, atol=1e-6):
                raise Diagnosis("you divided the probabilities by T: divide the logits by T, before the "
                                "exponential.")
            if not same(got.sum(dim=-1), torch.ones(len(z)), atol=1e-5):
                raise Diagnosis("your rows do not sum to 1: divide exp(logits / T) by its sum over the classes.")
            raise Diagnosis(f"at T = {T} your probabilities differ from softmax(logits / T) by up to "
                            f"{(got - expected).abs().max().item():.3g}.")
        extremes = [(torch.tensor([[1000.0, 990.0, 0.0]]), 1.0, "exp(1000) overflows to inf, and inf / inf is NaN"),
                    (torch.tensor([[-1000.0, -990.0, -1010.0]]), 1.0, "exp(-990) underflows to 0, and 0 / 0 is NaN"),
                    (torch.tensor([[500.0, 499.0, -3.0]]), 0.5, "exp(1000) overflows to inf"),
                    (torch.tensor([[1000.0, 0.0, 990.0], [-1000.0, -999.0, -1010.0]]), 1.0,
                     "a row far below the largest logit of the whole tensor underflows to 0 / 0, so one maximum "
                     "for the whole tensor is not enough")]
        for logits, T, why in extremes:
            got = _probabilities(call(softmax_t, logits.clone(), T))
            expected = torch.softmax(logits.double() / T, dim=-1)
            if got.shape == logits.shape and bool(torch.isfinite(got).all()) and same(got, expected, 1e-6):
                continue
            if got.shape == logits.shape and bool(torch.isfinite(got).all()):
                why = (f"the right answer is {[[round(v, 6) for v in row] for row in expected.tolist()]}: clipping "
                       "or clamping the logits avoids the overflow but changes the answer")
            raise Diagnosis(f"the logits {logits.tolist()} at T = {T} give {got.tolist()}: {why}. "
                            "Subtract each row's maximum first (a softmax does not change when the same "
                            "number is subtracted from every logit of a row).")
        return "softmax(logits / T) over the classes, six cases (one of three dimensions), stable for logits of +-1000."

    return run_check(softmax_t, body, library=("soft_targets", "softmax", "log_softmax", "Softmax", "LogSoftmax"))


# --- notebook 04: the distillation loss ----------------------------------------------------------------

#: Each part of the loss that can go wrong, and the ways it goes wrong: {part: {fault: diagnosis}}.
#: ``{C}`` is the number of classes. The check tries each fault alone, then two faults of different parts.
LOSS_FAULTS: dict[str, dict[str, str]] = {
    "reduction": {
        "mean": "your soft term is {C}x too small: reduction='mean' divides by the classes too; use "
                "reduction='batchmean' (the KL divergence per example, averaged over the batch).",
        "sum": "your soft term sums over the batch (reduction='sum'), so it grows with the batch size: use "
               "reduction='batchmean' (summed over the classes, averaged over the examples).",
    },
    "scale": {
        "none": "your gradient shrinks like 1/T**2: multiply the soft term by T**2 (T * T), so changing T does not "
                "change how much the teacher counts.",
        "T": "you multiplied the soft term by T, not by T**2 (T * T): its gradient still shrinks like 1/T.",
        "T4": "you multiplied the soft term by T**2 twice (T**4): once is what undoes the 1/T**2 of softening.",
        "half": "your soft term is half of what it should be: alpha * T**2 * KL has no factor 1/2 (is T**2 / 2, or "
                "a 0.5, in your soft term?).",
    },
    "direction": {
        "reverse": "your loss is KL(student || teacher): F.kl_div(input, target) computes KL(target || input), so "
                   "the input must be the student's log-probabilities and the target the teacher's (teacher and "
                   "student are swapped, or the KL runs the wrong way).",
    },
    "input": {
        "probabilities": "F.kl_div's input must be log-probabilities: you gave it probabilities (softmax where "
                         "log_softmax belongs, for the student's side).",
    },
    "weights": {
        "log": "your KL divergence weights log(p / q) by the teacher's log-probabilities, not by its "
               "probabilities: an exp is missing (p = exp(log p)).",
    },
    "temperature": {
        "student only": "only the student's logits are divided by T: soften the teacher's logits with the same T.",
        "teacher only": "only the teacher's logits are divided by T: soften the student's logits with the same T.",
        "none": "neither side is divided by T: soften both the student's and the teacher's logits (logits / T) "
                "in the soft term.",
        "multiplied": "the logits are multiplied by T: divide them by T, which softens the distributions.",
    },
    "sign": {
        "soft": "your soft term has the wrong sign: a KL divergence is >= 0; it is sum p * (log p - log q), teacher "
                "p first (is log q - log p reversed?).",
        "loss": "your whole loss has the wrong sign: minimising it pushes the student away from the labels and the "
                "teacher. Remove the minus.",
    },
    "weighting": {
        "swapped": "alpha weights the other term: alpha multiplies the soft (teacher) term and 1 - alpha the "
                   "cross-entropy with the labels (Keras' example uses the opposite convention).",
        "hard unweighted": "the cross-entropy is not weighted by 1 - alpha: the loss is alpha * (soft term) + "
                           "(1 - alpha) * (cross-entropy).",
        "soft unweighted": "the soft term is not weighted by alpha: the loss is alpha * (soft term) + (1 - alpha) * "
                           "(cross-entropy).",
        "unused": "your loss does not use alpha: it weights the soft term by alpha and the cross-entropy by "
                  "1 - alpha.",
    },
    "hard": {
        "at T": "your cross-entropy with the hard labels uses the temperature: compute it on the raw student "
                "logits (T = 1).",
        "probabilities": "your cross-entropy is given probabilities (a softmax first): F.cross_entropy applies "
                         "log_softmax itself; give it the raw logits.",
        "raw nll": "F.nll_loss expects log-probabilities, and you gave it raw logits: use F.cross_entropy on the "
                   "logits (or nll_loss on log_softmax of them).",
        "T**2": "T**2 multiplies the cross-entropy too: only the soft term needs it (its gradient shrinks with T, "
                "the cross-entropy's does not).",
        "half": "your cross-entropy term is half of what it should be: (1 - alpha) * cross-entropy has no factor 1/2.",
    },
    "terms": {
        "no hard": "the cross-entropy with the hard labels is missing: add (1 - alpha) * F.cross_entropy(logits, "
                   "labels).",
        "no soft": "the soft term (the teacher's) is missing: add alpha * T**2 * KL(teacher || student).",
    },
    "batch": {
        "sum": "your loss grows with the batch size: average over the batch instead of summing.",
    },
}


def _loss_with(s, y, t, T, alpha, **faults):
    """The distillation loss with the given faults ({part: fault}, see ``LOSS_FAULTS``) switched on."""
    fault = faults.get
    Ts, Tt = {"student only": (T, 1.0), "teacher only": (1.0, T), "none": (1.0, 1.0),
              "multiplied": (1 / T, 1 / T)}.get(fault("temperature"), (T, T))
    log_q, log_p = F.log_softmax(s / Ts, dim=1), F.log_softmax(t / Tt, dim=1)
    if fault("direction") == "reverse":  # KL(student || teacher)
        log_q, log_p = log_p, log_q
    weight = log_p if fault("weights") == "log" else log_p.exp()
    student_side = log_q.exp() if fault("input") == "probabilities" else log_q
    per_example = (weight * (log_p - student_side)).sum(dim=1)
    if fault("sign") == "soft":
        per_example = -per_example
    summed = "sum" in (fault("reduction"), fault("batch"))
    soft = per_example.sum() if summed else per_example.mean()
    if fault("reduction") == "mean":
        soft = soft / s.shape[1]
    soft = soft * {"none": 1.0, "T": T, "T4": T**4, "half": T * T / 2}.get(fault("scale"), T * T)
    reduction = "sum" if fault("batch") == "sum" else "mean"
    hard_input = {"at T": s / T, "probabilities": F.softmax(s, dim=1)}.get(fault("hard"), s)
    if fault("hard") == "raw nll":
        hard = F.nll_loss(s, y, reduction=reduction)
    else:
        hard = F.cross_entropy(hard_input, y, reduction=reduction)
    hard = hard * {"T**2": T * T, "half": 0.5}.get(fault("hard"), 1.0)
    soft_weight, hard_weight = {"swapped": (1 - alpha, alpha), "hard unweighted": (alpha, 1.0),
                                "soft unweighted": (1.0, 1 - alpha), "unused": (1.0, 1.0)}.get(fault("weighting"),
                                                                                               (alpha, 1 - alpha))
    if fault("terms") == "no hard":
        hard_weight = 0.0
    if fault("terms") == "no soft":
        soft_weight = 0.0
    loss = soft_weight * soft + hard_weight * hard
    return -loss if fault("sign") == "loss" else loss


def _fault_combinations():
    """Every single fault, then every pair of faults in different parts: ({part: fault}, ...)."""
    singles = [(part, fault) for part, faults in LOSS_FAULTS.items() for fault in faults]
    yield from ({part: fault} for part, fault in singles)
    for (part_a, fault_a), (part_b, fault_b) in itertools.combinations(singles, 2):
        if part_a != part_b:
            yield {part_a: fault_a, part_b: fault_b}


def _confirmation_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, float]:
    """A batch at another T and alpha, where faults that coincide at the failing case's T give other gradients."""
    generator = torch.Generator().manual_seed(1)
    s, t = 2 * torch.randn(8, 10, generator=generator), 3 * torch.randn(8, 10, generator=generator)
    return s, torch.randint(0, 10, (8,), generator=generator), t, 5.0, 0.35


def _name_the_faults(call, loss_fn, gradient, s, y, t, T, alpha) -> Diagnosis | None:
    """The diagnosis whose faults give exactly the student's gradient here and at a second case; None if none do."""
    confirmation = None
    for faults in _fault_combinations():
        if faults.get("terms") == "no soft" and len(faults) > 1:
            continue  # with no soft term, a fault of the soft term changes nothing
        faulty = functools.partial(_loss_with, **faults)
        if not same(gradient, reference(faulty, s, y, t, T, alpha)[1], atol=1e-6):
            continue
        if confirmation is None:  # the student's gradient at the second case, computed once
            cs, cy, ct, cT, calpha = _confirmation_case()
            confirmation = (value_and_gradient(call, loss_fn, cs, cy.clone(), ct.clone(), cT, calpha)[1],
                            (cs, cy, ct, cT, calpha))
        their_gradient, case = confirmation
        if same(their_gradient, reference(faulty, *case)[1], atol=1e-6):
            return Diagnosis(" ALSO: ".join(LOSS_FAULTS[part][fault].format(C=s.shape[1])
                                            for part, fault in faults.items()))
    return None


def is_nan(value) -> bool:
    """Whether the student's result is a one-number tensor holding NaN."""
    return isinstance(value, torch.Tensor) and value.numel() == 1 and bool(torch.isnan(value.detach()).any())


def nan_diagnosis(call: Callable, loss_fn: Callable, what: str, *args) -> Diagnosis:
    """Why a loss returned NaN: call it again with every logit made positive (a softmax does not change)."""
    shifted = [a.detach() + 50 if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    shifted[0].requires_grad_(True)
    try:
        again = call(loss_fn, *shifted)
        fine_when_positive = isinstance(again, torch.Tensor) and bool(torch.isfinite(again.detach()).all())
    except Diagnosis:
        fine_when_positive = False
    if fine_when_positive:
        return Diagnosis(f"your function returned NaN for {what}, but not once every logit is made positive: it "
                         "takes the log of raw logits, which can be negative. Take log-probabilities instead "
                         "(F.log_softmax).")
    return Diagnosis(f"your function returned NaN for {what}, also when every logit is positive, so not from a log "
                     "of raw logits. Print its terms one by one to find the first NaN; places to look: a log of a "
                     "number that can be negative or 0 (F.kl_div takes the log of its target, unless "
                     "log_target=True), a 0 / 0.")


def value_and_gradient(call: Callable, loss_fn: Callable, s: torch.Tensor, *args) -> tuple[float, torch.Tensor]:
    """Call a loss on a fresh copy of the student's logits ``s``: its value, and its gradient with respect to ``s``.

    The backward pass runs within the check's time budget too: it runs code of the student's (a custom
    autograd function, a hook).
    """
    student = s.clone().requires_grad_(True)
    got = call(loss_fn, student, *args)
    if not isinstance(got, torch.Tensor):
        raise Diagnosis(f"return the loss as a tensor, to backpropagate it; got {type(got).__name__}.")
    plain_tensor(got, "the loss")
    if got.numel() != 1:
        raise Diagnosis(f"return one number for the batch (a 0-d tensor), got shape {tuple(got.shape)}: sum over "
                        "the classes and average over the examples.")
    if is_nan(got):
        raise nan_diagnosis(call, loss_fn, "the loss", s, *args)
    value = to_number(got, "the loss")
    if not got.requires_grad:
        raise Diagnosis("your loss carries no gradient to the student's logits (was it computed under no_grad, "
                        "or detached?).")
    (gradient,) = call(lambda: torch.autograd.grad(got.sum(), student, allow_unused=True))
    if gradient is None:
        raise Diagnosis("your loss does not depend on the student's logits: no gradient reaches them.")
    return value, plain_tensor(gradient, "the gradient")


def reference(loss: Callable, s: torch.Tensor, *args) -> tuple[float, torch.Tensor]:
    """A known loss's value at the student's logits ``s`` and its gradient with respect to them."""
    student = s.clone().requires_grad_(True)
    value = loss(student, *args)
    return value.item(), torch.autograd.grad(value, student)[0]


def check_distillation_loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor],
) -> CheckResult:
    """``loss_fn(student_logits, labels, teacher_logits, T, alpha)`` must equal ``kdutils.losses.distillation_loss``.

    The check compares values and gradients on random batches at five (T, alpha) pairs and names each
    mistake of ``LOSS_FAULTS`` it recognises, alone or two together, by its gradient. A soft
    *cross-entropy* with the teacher's soft labels also passes: it is the KL divergence plus the teacher's
    entropy, a constant for the student, so it has the same gradient and trains the same student; only
    its value is higher.
    """

    def body(call) -> str:
        generator = torch.Generator().manual_seed(0)
        cross_entropy_form = False
        # The first case's alpha is not 0.5, where alpha on the wrong term would change nothing.
        for T, alpha, batch in ((2.0, 0.6, 16), (8.0, 0.7, 8), (4.0, 0.25, 12), (4.0, 0.9, 8), (2.0, 1.0, 8)):
            s = 2 * torch.randn(batch, 10, generator=generator)
            t = 3 * torch.randn(batch, 10, generator=generator)
            y = torch.randint(0, 10, (batch,), generator=generator)
            value, gradient = value_and_gradient(call, loss_fn, s, y.clone(), t.clone(), T, alpha)
            expected, expected_gradient = reference(distillation_loss, s, y, t, T, alpha)
            if same(gradient, expected_gradient, atol=1e-6):
                log_p = F.log_softmax(t / T, dim=1)
                entropy = -(log_p.exp() * log_p).sum(dim=1).mean().item()
                if close(value, expected):
                    continue
                if close(value, expected + alpha * T * T * entropy):
                    cross_entropy_form = True
                    continue
                with_cross_entropy = expected + alpha * T * T * entropy
                raise Diagnosis(f"your gradient is right but the value is not: {value:.5f} at T = {T}, alpha = "
                                f"{alpha}, where the loss is {expected:.5f} (or {with_cross_entropy:.5f} written "
                                "with the soft cross-entropy). Is a constant added, or a term printed wrong?")
            if close(value, expected):  # before naming faults: a detached soft term has the gradient of none
                raise Diagnosis("your loss has the right value but the wrong gradient: is a term detached?")
            named = _name_the_faults(call, loss_fn, gradient, s, y, t, T, alpha)
            if named is not None:
                raise named
            raise Diagnosis(f"at T = {T}, alpha = {alpha} your loss is {value:.5f}, the correct one {expected:.5f}; "
                            "compare term by term with alpha * T**2 * KL(teacher || student) + "
                            "(1 - alpha) * cross-entropy.")
        if cross_entropy_form:
            return ("same gradients as kdutils.losses.distillation_loss at T = 2, 4 and 8. Your soft term is "
                    "the cross-entropy with the teacher's soft labels: it equals the KL divergence plus the teacher's "
                    "entropy, a constant for the student, so it trains the same student; its value is higher by "
                    "alpha * T**2 * H(teacher), and it is not 0 when the student matches the teacher.")
        return "same values and gradients as kdutils.losses.distillation_loss at T = 2, 4 and 8."

    return run_check(loss_fn, body, library=("distillation_loss", "token_distillation_loss"))
