"""Checks for the exercises of the series: a student passes their function, the check passes it or names the bug.

Each ``check_*`` runs the student's function on several crafted cases, compares it with the correct
answer and, when they differ, with the classic mistakes, so that the message says *which* mistake it
is and how to see it. Every check prints its verdict and returns a ``CheckResult`` (``passed``,
``message``), so tests and graders can use it too::

    from kdutils.exercises import check_distillation_loss
    result = check_distillation_loss(my_loss)   # prints "PASSED: ..." or "NOT YET: <diagnosis>"
    result.passed                              # True or False

What a student can rely on, in every check:

* any correct answer passes: a result in float64 or float32, a numpy scalar for a number, a numpy
  array or a list of numbers for a tensor (except for a loss, which must backpropagate), an
  equivalent formula;
* what the student's function raises, returns (NaN, a wrong shape, something that is not numbers),
  changes in place (the tensors it was given) or how long it takes
  (``TIME_LIMIT`` seconds for all of a check's calls together) becomes a verdict, never a traceback
  from the check; only the stub's ``NotImplementedError`` goes through, so the cell stops there;
* kdutils' own function, passed as the answer or called by it (under any name, through helpers, a
  callable object or ``functools.partial``), is named as such, not passed.

Stuck students ask for hints, one step at a time: ``hint("precision")``, then ``hint("precision", 2)``.

The distillation bugs are the ones reported again and again in public issue trackers: the log of raw
logits, ``reduction='mean'``, a missing ``T**2``, the KL divergence the wrong way round, ``alpha`` on
the wrong term, a teacher with gradients or in train mode, and teacher outputs out of step with the
shuffled batch. Each of them trains without an error and quietly gives a worse student.
"""

from __future__ import annotations

import copy
import functools
import inspect
import itertools
import math
import numbers
import threading
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .analysis import expected_calibration_error
from .ensembles import average_probabilities
from .losses import distillation_loss, hint_loss
from .models import StudentModel, TeacherModel, count_parameters

__all__ = [
    "HINTS",
    "TIME_LIMIT",
    "CheckResult",
    "check_add_to_bias",
    "check_distillation_loss",
    "check_distillation_step",
    "check_ensemble_average",
    "check_epoch_alignment",
    "check_expected_calibration_error",
    "check_gap_closed",
    "check_hint_loss",
    "check_parameter_count",
    "check_precision",
    "check_reverse_kl",
    "check_softmax_with_temperature",
    "hint",
]

TIME_LIMIT = 30.0  # seconds all of one check's calls of the student's function may take together
TIMEOUT_MESSAGE = "your function did not finish within"  # how a time-out verdict starts (kdutils.grade reads it)


# --- hints: one step at a time, never the answer ---------------------------------------------------------

HINTS: dict[str, tuple[str, ...]] = {
    "parameter_count": (
        "A model keeps its learnable numbers in tensors, one per weight matrix and one per bias vector; "
        "model.parameters() hands them to you one by one.",
        "Each tensor can tell you how many numbers it holds (look up Tensor.numel). Add that up over every "
        "tensor the model hands you: a bias counts as much as a weight.",
    ),
    "precision": (
        "Precision looks at the images *predicted* as a class. In matrix[i, j] the row i is the true class "
        "and the column j the prediction: which of the two does precision hold fixed?",
        "The right answers of each class sit on the diagonal. Divide them by how many images were predicted "
        "as that class (a sum along one dimension), and make a class that is never predicted come out as 0, "
        "not 0 / 0.",
    ),
    "softmax_with_temperature": (
        "Three moves: scale the logits by the temperature, make them positive with exp, then make each row "
        "sum to 1. Which way must T scale the logits so that a higher T gives a flatter distribution?",
        "exp(1000) overflows to inf. A softmax does not change when the same number is subtracted from every "
        "logit of a row, so subtract one that makes the largest exponent exp(0) = 1 (keepdim=True keeps the "
        "shapes lined up).",
    ),
    "distillation_loss": (
        "Two terms, blended by alpha: a soft one that compares the student's and the teacher's distributions, "
        "both softened by T, with a KL divergence averaged over the examples; and the usual cross-entropy "
        "with the labels.",
        "F.kl_div(input, target) expects the student's *log*-probabilities as input and the teacher's "
        "probabilities as target; its reduction must average per example, not per number. Softening by T "
        "shrinks the soft gradient by 1/T**2: scale the soft term to undo it. The hard term uses the raw logits.",
    ),
    "distillation_step": (
        "Before the teacher predicts, think of two things it must not do: behave differently from call to "
        "call (dropout), and record a graph for backpropagation.",
        "Switch the teacher to evaluation mode and compute its logits where gradient tracking is off. Then a "
        "training step's four moves, in order: the loss (with the T and alpha you were given), clearing old "
        "gradients, backpropagation, the optimizer's update.",
    ),
    "gap_closed": (
        "The gap is the distance from the scratch student to the teacher. Distillation closes part of it: how "
        "far did it move the student from scratch, as a share of that gap?",
        "Measure both differences from the scratch score. Do not clip, round or turn it into a percentage: "
        "below 0 means distillation hurt, above 1 that the student beat its teacher.",
    ),
    "epoch_alignment": (
        "Shuffle once per epoch: draw a random order of the row numbers with the generator you were given, "
        "then walk through that order in slices of batch_size.",
        "Index every per-example tensor (images, labels and the cached teacher logits) with the same slice of "
        "the order. Each batch then gets its own loss, cleared gradients, backward pass and optimizer step.",
    ),
    "add_to_bias": (
        "Leave the model you were given untouched: work on a full, independent copy of it.",
        "The output layer is the model's last Linear layer. Add shift to the one entry of its bias that "
        "belongs to class cls, where gradient tracking is off.",
    ),
    "expected_calibration_error": (
        "Start from each prediction's confidence (its largest probability) and whether it was right, then "
        "sort the predictions into bins by confidence.",
        "Bin k holds confidences in (k/bins, (k+1)/bins]: mind where a confidence exactly on an edge goes, 1.0 "
        "included. Per non-empty bin take |accuracy - mean confidence| and weight it by the bin's share of all "
        "the examples.",
    ),
    "hint_loss": (
        "It is the plain mean squared error between the two feature tensors.",
        "Square the element-wise differences and average over every number, examples and features alike, so "
        "that the loss does not grow with the batch or the feature size. Return a tensor, so it backpropagates.",
    ),
    "ensemble_average": (
        "Turn each member's logits into probabilities at temperature T first; combine the members only after.",
        "Stack the members' probabilities along a new first dimension and average over that dimension. The "
        "softmax runs over the classes (dim=1), not over the examples.",
    ),
    "reverse_kl": (
        "Work with log-probabilities of both models, from a numerically stable log of the softmax, never the "
        "log of raw logits.",
        "KL(student || teacher) sums p_s * (log p_s - log p_t) over the vocabulary: the student's probabilities "
        "weight the sum. Sum over the vocabulary, average over the rows, and keep everything in the graph.",
    ),
}


def hint(exercise: str, step: int = 1) -> None:
    """Print hint number ``step`` for an exercise, named like its check without ``check_`` (``hint("precision")``).

    The first hint points the way; each further step is more concrete; none is the answer.
    """
    if exercise not in HINTS:
        raise ValueError(f"no exercise named {exercise!r}; the exercises are: {', '.join(sorted(HINTS))}.")
    steps = HINTS[exercise]
    step = min(max(int(step), 1), len(steps))
    print(f"Hint {step} of {len(steps)}: {steps[step - 1]}")
    if step < len(steps):
        print(f"A stronger one: hint({exercise!r}, {step + 1})")
    else:
        print("That is the last hint: write what you can and run the check; it names the mistake it finds.")


# --- verdicts and the safe call of the student's function ---------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check: ``passed`` and a message (what was checked, or the diagnosis)."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'PASSED' if self.passed else 'NOT YET'}: {self.message}"

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Show nothing as a cell's value: the check has printed its verdict already."""


def _verdict(passed: bool, message: str) -> CheckResult:
    result = CheckResult(passed, message)
    print(result)
    return result


class _Diagnosis(Exception):
    """Raised inside a check to stop at the first mistake found, with its message."""


def _unwrapped(obj):
    """What a ``functools.partial`` (or a partial of a partial) finally calls; anything else as it is."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return obj


def _is_library(obj, names: tuple[str, ...]) -> bool:
    """Whether ``obj`` is one of ``names`` from kdutils or torch, whatever it is called where it is used."""
    obj = _unwrapped(obj)
    module = getattr(obj, "__module__", None) or ""
    return getattr(obj, "__name__", None) in names and module.startswith(("kdutils", "torch"))


def _borrowed(function: Callable, names: tuple[str, ...], depth: int = 0, visited: set | None = None) -> str | None:
    """The ready-made answer that ``function`` is, or calls; None when it is the student's own.

    A function from kdutils itself is borrowed whatever its name, and so is one that calls a kdutils
    function or one of ``names`` (from kdutils or torch), however it reaches it: by its own name, an
    alias (``import ... as kd``), a module attribute, a default argument, a closure, ``functools.partial``,
    a callable object, or through helpers of the student's own, followed a few calls deep. A name the
    student defined themselves does not count.
    """
    visited = set() if visited is None else visited
    function = _unwrapped(function)
    if id(function) in visited or depth > 6:
        return None
    visited.add(id(function))
    module = getattr(function, "__module__", None) or ""
    if module == "kdutils" or module.startswith("kdutils.") or _is_library(function, names):
        return f"{module}.{getattr(function, '__name__', 'function')}"
    function = getattr(function, "__func__", function)  # a bound method: its function
    if getattr(function, "__code__", None) is None and callable(function) and not isinstance(function, type):
        function = getattr(type(function).__call__, "__func__", type(function).__call__)  # a callable object
        if (getattr(function, "__module__", None) or "").startswith(("torch", "kdutils")):
            return None  # a model's forward machinery, not an answer
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    namespace = getattr(function, "__globals__", {})
    seen = []
    for cell in function.__closure__ or ():
        try:
            seen.append(cell.cell_contents)
        except ValueError:  # a closure variable not assigned yet
            pass
    seen += list(function.__defaults__ or ()) + list((function.__kwdefaults__ or {}).values())
    used, codes = set(), [code]
    while codes:
        current = codes.pop()
        used.update(current.co_names)
        codes.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    for name in sorted(used):
        if name in namespace:
            seen.append(namespace[name])
        elif name in names:  # an attribute such as torch.softmax or logits.softmax
            return name
    for obj in seen:
        if _is_library(obj, names):
            obj = _unwrapped(obj)
            return f"{obj.__module__}.{getattr(obj, '__name__', 'function')}"
    for obj in seen:  # the student's own helpers (and objects with __call__): what they call, in turn
        obj = _unwrapped(obj)
        own = getattr(obj, "__module__", None) or ""
        if callable(obj) and not own.startswith(("kdutils", "torch", "numpy", "builtins", "math", "functools")):
            borrowed = _borrowed(obj, names, depth + 1, visited)
            if borrowed:
                return borrowed
    return None


def _run(function: Callable, body: Callable[[], str], library: tuple[str, ...] = ()) -> CheckResult:
    """Run one check's body: a string is a pass message; a ``_Diagnosis`` is the mistake found.

    ``library`` names the ready-made functions the exercise asks the student to write themselves.
    """
    global _time_left
    _time_left = TIME_LIMIT
    borrowed = _borrowed(function, library)
    if borrowed:
        return _verdict(False, f"your answer is, or calls, {borrowed}, a ready-made version of what this exercise "
                               "asks you to write: write it yourself, then run the check.")
    try:
        return _verdict(True, body())
    except _Diagnosis as diagnosis:
        return _verdict(False, str(diagnosis))
    except NotImplementedError:
        raise  # the stub of the student edition, not yet written
    except Exception as error:  # a result the check could not even compare: a verdict, not a traceback
        return _verdict(False, f"the check could not use what your function returned ({type(error).__name__}: "
                               f"{error}); return what the exercise asks for.")


_time_left = math.inf  # seconds the student's function may still run in the check under way (set by _run)


def _call(function: Callable, *args):
    """Call the student's function, in a thread of its own, until the check's ``TIME_LIMIT`` is used up.

    Whatever it raises becomes a diagnosis, except ``NotImplementedError``, the stub of the student
    edition, which goes through. A function still running after the time limit is left running in the
    background (Python cannot stop a thread) and the check says so. PyTorch's warnings (such as the one
    for ``reduction='mean'``) are silenced: the check names the mistake itself.
    """
    global _time_left
    outcome = {}
    before = [tensor.detach().clone() for _, tensor in _tensors_in(args)]

    def run() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:  # noqa: B036 - even SystemExit from the student's code is a verdict
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.monotonic()
        worker.start()
        worker.join(_time_left)
        _time_left -= time.monotonic() - started
    if worker.is_alive():
        raise _Diagnosis(f"{TIMEOUT_MESSAGE} {TIME_LIMIT:g} s (the check's calls together): is there a loop that "
                         "never ends, or far more work than the exercise needs? It keeps running in the "
                         "background; restart the kernel before you run the cell again.")
    error = outcome.get("error")
    if isinstance(error, (NotImplementedError, _Diagnosis)):
        raise error  # the stub; or a diagnosis from a function the check handed to the student's (a spy loss)
    if error is not None:
        raise _Diagnosis(f"your function raised {type(error).__name__}: {error}")
    _inputs_unchanged(function, args, before)
    return outcome["value"]


def _tensors_in(args) -> list[tuple[int, torch.Tensor]]:
    """The tensors among a call's arguments, directly or in a list or tuple, with the argument's position."""
    found = []
    for position, arg in enumerate(args):
        for item in arg if isinstance(arg, (list, tuple)) else (arg,):
            if isinstance(item, torch.Tensor):
                found.append((position, item))
    return found


def _inputs_unchanged(function: Callable, args, before: list[torch.Tensor]) -> None:
    """Stop when the student's function changed a tensor it was given: the caller goes on using it."""
    for (position, tensor), copy_before in zip(_tensors_in(args), before):
        if tensor.shape != copy_before.shape or not torch.equal(tensor.detach(), copy_before):
            try:
                name = f"{list(inspect.signature(function).parameters)[position]!r} "
            except (TypeError, ValueError, IndexError):
                name = ""
            raise _Diagnosis(f"your function changed the tensor it was given as its argument {name}(number "
                             f"{position + 1}) in place, with an operation such as /=, +=, x[:] = ..., .sub_() "
                             "or .clamp_(): the caller goes on using it. Compute new tensors instead.")


def _finite(values: torch.Tensor, what: str, tip: str = "") -> None:
    """Stop with "your function returned NaN" (or inf) when ``values`` holds one, plus an optional ``tip``."""
    for bad, name in ((torch.isnan(values), "NaN"), (torch.isinf(values), "an infinite value")):
        if bool(bad.any()):
            raise _Diagnosis(f"your function returned {name} for {what}. {tip}".strip())


def _tensor(value, what: str) -> torch.Tensor:
    """The student's numbers as a float64 tensor: from a tensor of any dtype, a numpy array or a list of numbers.

    The exercises ask for numbers, not for a type: a correct list of precisions is a correct answer.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().double()
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise _Diagnosis(f"{what} should be a tensor of numbers, got {type(value).__name__}.") from None


def _number(value, what: str, tip: str = "") -> float:
    """The student's result as a finite float: a Python or numpy number, or a tensor or array with one element."""
    if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
        value = torch.as_tensor(value)
        if value.numel() != 1:
            raise _Diagnosis(f"{what} should be a single number, got {value.numel()} numbers of shape "
                             f"{tuple(value.shape)}.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Diagnosis(f"{what} should be a number, got {type(value).__name__}.")
    _finite(torch.tensor(float(value)), what, tip)
    return float(value)


def _close(a: float, b: float, rel: float = 1e-4, abs_: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def _same(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    """Whether two results agree, whatever their dtypes (both compared in float64)."""
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=atol)


# --- notebook 01: counting parameters -------------------------------------------------------------------


def check_parameter_count(count: Callable[[nn.Module], int]) -> CheckResult:
    """``count(model)`` must return the number of parameters: every weight and every bias, of any layer."""

    def body() -> str:
        frozen = nn.Sequential(nn.Linear(5, 3), nn.Linear(3, 2))
        frozen[0].requires_grad_(False)  # a frozen layer still has its parameters
        tied = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 7))
        tied[1].weight = tied[0].weight  # one tensor used twice (tied weights) is one set of parameters
        cases = [nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)),
                 nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.Linear(4, 2, bias=False)),
                 nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), nn.Linear(3, 2)),  # nested
                 frozen, tied, TeacherModel(), StudentModel()]
        for model in cases:
            got = _number(_call(count, model), "the count")
            expected = count_parameters(model)
            if got == expected:
                continue
            weights = sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))
            linear = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())
            stored = sum(v.numel() for v in model.state_dict().values())
            tensors = len(list(model.parameters()))
            layers = sum(1 for m in model.modules() if next(m.parameters(recurse=False), None) is not None)
            name = type(model).__name__
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            top_level = sum(p.numel() for m in model.children() for p in m.parameters(recurse=False))
            with_repeats = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
            if got == trainable and trainable != expected:
                raise _Diagnosis(f"you counted only the parameters that train ({trainable:,} of {expected:,}): a "
                                 "frozen layer (requires_grad=False) still has parameters. Count them all.")
            if got == top_level and top_level < expected:
                raise _Diagnosis(f"you counted only the layers directly inside the model ({top_level:,} of "
                                 f"{expected:,}): a block nested inside another holds parameters too; "
                                 "model.parameters() visits every level.")
            if got == with_repeats and with_repeats != expected:
                raise _Diagnosis(f"you counted a shared (tied) weight twice ({with_repeats:,} for {expected:,}): "
                                 "one tensor used by two layers is one set of parameters; model.parameters() "
                                 "lists it once.")
            if got == weights:
                raise _Diagnosis(f"you counted the weights ({weights:,}) but not the biases: a layer also has one "
                                 "bias per output. Count every tensor the model's parameters() hands you.")
            if got == linear:
                raise _Diagnosis(f"you counted only the nn.Linear layers ({linear:,} for a {name} that has "
                                 f"{expected:,} parameters): a convolution or a batch norm has parameters too.")
            if got == stored:
                raise _Diagnosis(f"you counted the state_dict ({stored:,}): it also holds buffers, such as batch "
                                 "norm's running statistics, that are stored but not learned. Count parameters().")
            if got in (tensors, layers):
                raise _Diagnosis(f"you counted tensors or layers ({got:.0f}), not numbers: each parameter tensor "
                                 "holds many numbers.")
            raise _Diagnosis(f"for a {name} you returned {got:,.0f}, expected {expected:,}.")
        return ("weights and biases counted for seven models (a frozen layer, a nested block and tied weights "
                "among them), the teacher's 235,146 and the student's 101,770.")

    return _run(count, body, library=("count_parameters",))


# --- notebook 02: precision from a confusion matrix ------------------------------------------------------


def _confusion_matrices() -> list[torch.Tensor]:
    """Confusion matrices to test precision on: a small one by hand, random ones, one with a class never predicted."""
    generator = torch.Generator().manual_seed(2)
    matrices = [torch.tensor([[8, 2, 0], [4, 6, 0], [0, 5, 5]])]
    for classes in (5, 10):
        noise = torch.randint(0, 6, (classes, classes), generator=generator)
        matrices.append(noise + torch.diag(torch.randint(10, 40, (classes,), generator=generator)))
    never = torch.randint(1, 9, (4, 4), generator=generator)
    never[:, 2] = 0  # class 2 is never predicted: its column sums to 0
    matrices.append(never)
    return matrices


def check_precision(precision: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """``precision(matrix)`` must give, per class, the fraction of the images *predicted* as it that are it.

    ``matrix[i, j]`` counts images of true class ``i`` predicted as ``j``. A class never predicted
    has precision 0.
    """

    def body() -> str:
        for matrix in _confusion_matrices():
            classes = matrix.shape[0]
            got = _tensor(_call(precision, matrix.clone()), "the precision")
            if got.shape != (classes,):
                raise _Diagnosis(f"return one precision per class, shape ({classes},), got shape {tuple(got.shape)}.")
            predicted = matrix.sum(dim=0)
            expected = matrix.diag() / predicted.clamp(min=1)
            if bool(torch.isnan(got).any()) and bool((predicted == 0).any()):
                never = int((predicted == 0).nonzero()[0])
                raise _Diagnosis(f"your function returned NaN for class {never}, which is never predicted (its "
                                 "column sums to 0, so you computed 0 / 0): its precision is 0.")
            _finite(got, f"the matrix {matrix.tolist()}")
            if _same(got, expected):
                continue
            if _same(got, matrix.diag() / matrix.sum(dim=1).clamp(min=1)):
                raise _Diagnosis("you divided by the row sums (the true classes): that is recall. Precision divides "
                                 "the diagonal by the number of images *predicted* as each class.")
            if _same(got, 100 * expected, atol=1e-3):
                raise _Diagnosis("your values are percentages; return fractions between 0 and 1.")
            if _same(got, matrix.diag() // predicted.clamp(min=1)):
                raise _Diagnosis("you divided integers with //, which rounds down to 0 or 1: use / for fractions.")
            raise _Diagnosis(f"expected {[round(v, 3) for v in expected.tolist()]}, got "
                             f"{[round(v, 3) for v in got.tolist()]} for the matrix {matrix.tolist()}.")
        return "the diagonal over the predictions per class, on four matrices, and 0 for a class never predicted."

    return _run(precision, body)


# --- notebook 03: softmax with a temperature ---------------------------------------------------------


def check_softmax_with_temperature(softmax_t: Callable[[torch.Tensor, float], torch.Tensor]) -> CheckResult:
    """``softmax_t(logits, T)`` must return ``softmax(logits / T)`` over the classes (the last dimension).

    The exercise asks for it without ``torch.softmax``; the check says so when the answer uses a ready-made softmax.
    """

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        cases = [(3 * torch.randn(4, 10, generator=generator), T) for T in (1.0, 4.0, 0.5)]
        cases += [(5 * torch.randn(6, 5, generator=generator), T) for T in (2.5, 3)]
        cases += [(2 * torch.randn(2, 3, 5, generator=generator), 2.0)]  # notebook 10's (batch, position, vocabulary)
        for logits, T in cases:
            got = _tensor(_call(softmax_t, logits.clone(), T), "the result")
            if got.shape != logits.shape:
                raise _Diagnosis(f"return one probability per logit, shape {tuple(logits.shape)}, got "
                                 f"{tuple(got.shape)}.")
            _finite(got, f"logits between {logits.min():.1f} and {logits.max():.1f} at T = {T}")
            z = logits.double()
            expected = torch.softmax(z / T, dim=-1)
            if _same(got, expected, atol=1e-6):
                continue
            if _same(got, torch.softmax(z * T, dim=-1), atol=1e-6):
                raise _Diagnosis("you multiplied the logits by T; divide them by T (a higher T must flatten).")
            if _same(got, torch.softmax(z / T, dim=0), atol=1e-6):
                raise _Diagnosis("you normalised over dim 0, the batch; normalise over the classes (dim=-1).")
            if z.dim() > 2 and _same(got, torch.softmax(z / T, dim=1), atol=1e-6):
                raise _Diagnosis(f"for logits of shape {tuple(z.shape)} you normalised over dim 1; the classes are "
                                 "the last dimension (dim=-1), whatever the number of dimensions before them.")
            if T != 1.0 and _same(got, torch.softmax(z, dim=-1), atol=1e-6):
                raise _Diagnosis("your result does not depend on T: divide the logits by T before the exponential.")
            if not _same(got.sum(dim=-1), torch.ones(len(z)), atol=1e-5):
                raise _Diagnosis("your rows do not sum to 1: divide exp(logits / T) by its sum over the classes.")
            raise _Diagnosis(f"at T = {T} your probabilities differ from softmax(logits / T) by up to "
                             f"{(got - expected).abs().max().item():.3g}.")
        extremes = [(torch.tensor([[1000.0, 990.0, 0.0]]), 1.0, "exp(1000) overflows to inf, and inf / inf is NaN"),
                    (torch.tensor([[-1000.0, -990.0, -1010.0]]), 1.0, "exp(-990) underflows to 0, and 0 / 0 is NaN"),
                    (torch.tensor([[500.0, 499.0, -3.0]]), 0.5, "exp(1000) overflows to inf"),
                    (torch.tensor([[1000.0, 0.0, 990.0], [-1000.0, -999.0, -1010.0]]), 1.0,
                     "a row far below the largest logit of the whole tensor underflows to 0 / 0, so one maximum "
                     "for the whole tensor is not enough")]
        for logits, T, why in extremes:
            got = _tensor(_call(softmax_t, logits.clone(), T), "the result")
            expected = torch.softmax(logits.double() / T, dim=-1)
            if got.shape == logits.shape and bool(torch.isfinite(got).all()) and _same(got, expected, 1e-6):
                continue
            if got.shape == logits.shape and bool(torch.isfinite(got).all()):
                why = (f"the right answer is {[[round(v, 6) for v in row] for row in expected.tolist()]}: clipping "
                       "or clamping the logits avoids the overflow but changes the answer")
            raise _Diagnosis(f"the logits {logits.tolist()} at T = {T} give {got.tolist()}: {why}. "
                             "Subtract each row's maximum first (a softmax does not change when the same "
                             "number is subtracted from every logit of a row).")
        return "softmax(logits / T) over the classes, six cases (one of three dimensions), stable for logits of +-1000."

    return _run(softmax_t, body, library=("soft_targets", "softmax", "log_softmax", "Softmax", "LogSoftmax"))


# --- notebook 04: the distillation loss ----------------------------------------------------------------


def _loss_variant(s, y, t, T, alpha, *, mean=False, no_t2=False, reverse=False, swap_alpha=False, batch_sum=False,
                  hard_at_T=False):
    """The distillation loss with any combination of the classic mistakes switched on."""
    log_q, log_p = F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1)
    if reverse:  # KL(student || teacher)
        log_q, log_p = log_p, log_q
    per_example = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    soft = per_example.sum() if batch_sum else per_example.mean()
    if mean:
        soft = soft / s.shape[1]
    if not no_t2:
        soft = soft * T * T
    hard = F.cross_entropy(s / T if hard_at_T else s, y, reduction="sum" if batch_sum else "mean")
    soft_weight, hard_weight = (1 - alpha, alpha) if swap_alpha else (alpha, 1 - alpha)
    return soft_weight * soft + hard_weight * hard


_LOSS_BUGS = {
    "mean": "your soft term is {C}x too small: reduction='mean' divides by the classes too; use "
            "reduction='batchmean' (the KL divergence per example, averaged over the batch).",
    "no_t2": "your gradient shrinks like 1/T**2: multiply the soft term by T**2 (T * T), so changing T does not "
             "change how much the teacher counts.",
    "reverse": "your loss is KL(student || teacher): F.kl_div(input, target) computes KL(target || input), so the "
               "input must be the student's log-probabilities and the target the teacher's (teacher and student "
               "are swapped, or the KL runs the wrong way).",
    "swap_alpha": "alpha weights the other term: alpha multiplies the soft (teacher) term and 1 - alpha the "
                  "cross-entropy with the labels (Keras' example uses the opposite convention).",
    "batch_sum": "your loss grows with the batch size: average over the batch instead of summing.",
    "hard_at_T": "your cross-entropy with the hard labels uses the temperature: compute it on the raw student "
                 "logits (T = 1).",
}


def _is_nan(value) -> bool:
    return isinstance(value, torch.Tensor) and value.numel() == 1 and bool(torch.isnan(value.detach()).any())


def _nan_diagnosis(loss_fn: Callable, what: str, *args) -> _Diagnosis:
    """Why a loss returned NaN: call it again with every logit made positive (a softmax does not change)."""
    shifted = [a.detach() + 50 if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    shifted[0].requires_grad_(True)
    try:
        again = _call(loss_fn, *shifted)
        fine_when_positive = isinstance(again, torch.Tensor) and bool(torch.isfinite(again.detach()).all())
    except _Diagnosis:
        fine_when_positive = False
    if fine_when_positive:
        return _Diagnosis(f"your function returned NaN for {what}, but not once every logit is made positive: it "
                          "takes the log of raw logits, which can be negative. Take log-probabilities instead "
                          "(F.log_softmax).")
    return _Diagnosis(f"your function returned NaN for {what}, also when every logit is positive, so not from a log "
                      "of raw logits. Print its terms one by one to find the first NaN; places to look: a log of a "
                      "number that can be negative or 0 (F.kl_div takes the log of its target, unless "
                      "log_target=True), a 0 / 0.")


def _value_and_gradient(loss_fn: Callable, s: torch.Tensor, *args) -> tuple[float, torch.Tensor]:
    """Call a loss on a fresh copy of the student's logits ``s``: its value, and its gradient with respect to ``s``."""
    student = s.clone().requires_grad_(True)
    got = _call(loss_fn, student, *args)
    if not isinstance(got, torch.Tensor):
        raise _Diagnosis(f"return the loss as a tensor, to backpropagate it; got {type(got).__name__}.")
    if got.numel() != 1:
        raise _Diagnosis(f"return one number for the batch (a 0-d tensor), got shape {tuple(got.shape)}: sum over "
                         "the classes and average over the examples.")
    if _is_nan(got):
        raise _nan_diagnosis(loss_fn, "the loss", s, *args)
    value = _number(got, "the loss")
    if not got.requires_grad:
        raise _Diagnosis("your loss carries no gradient to the student's logits (was it computed under no_grad, "
                         "or detached?).")
    (gradient,) = torch.autograd.grad(got.sum(), student, allow_unused=True)
    if gradient is None:
        raise _Diagnosis("your loss does not depend on the student's logits: no gradient reaches them.")
    return value, gradient


def _reference(loss: Callable, s: torch.Tensor, *args) -> tuple[float, torch.Tensor]:
    """A known loss's value at the student's logits ``s`` and its gradient with respect to them."""
    student = s.clone().requires_grad_(True)
    value = loss(student, *args)
    return value.item(), torch.autograd.grad(value, student)[0]


def check_distillation_loss(
    loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, float], torch.Tensor],
) -> CheckResult:
    """``loss_fn(student_logits, labels, teacher_logits, T, alpha)`` must equal ``kdutils.losses.distillation_loss``.

    The check compares values and gradients on random batches at five (T, alpha) pairs and names each
    classic mistake it recognises, alone or combined, by its gradient. A soft *cross-entropy* with the
    teacher's soft labels also passes: it is the KL divergence plus the teacher's entropy, a constant for
    the student, so it has the same gradient and trains the same student; only its value is higher.
    """

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        cross_entropy_form = False
        # The first case's alpha is not 0.5, where alpha on the wrong term would change nothing.
        for T, alpha, batch in ((2.0, 0.6, 16), (8.0, 0.7, 8), (4.0, 0.25, 12), (4.0, 0.9, 8), (2.0, 1.0, 8)):
            s = 2 * torch.randn(batch, 10, generator=generator)
            t = 3 * torch.randn(batch, 10, generator=generator)
            y = torch.randint(0, 10, (batch,), generator=generator)
            value, gradient = _value_and_gradient(loss_fn, s, y.clone(), t.clone(), T, alpha)
            expected, expected_gradient = _reference(distillation_loss, s, y, t, T, alpha)
            if torch.allclose(gradient.double(), expected_gradient.double(), rtol=1e-4, atol=1e-6):
                log_p = F.log_softmax(t / T, dim=1)
                entropy = -(log_p.exp() * log_p).sum(dim=1).mean().item()
                if _close(value, expected):
                    continue
                if _close(value, expected + alpha * T * T * entropy):
                    cross_entropy_form = True
                    continue
                with_cross_entropy = expected + alpha * T * T * entropy
                raise _Diagnosis(f"your gradient is right but the value is not: {value:.5f} at T = {T}, alpha = "
                                 f"{alpha}, where the loss is {expected:.5f} (or {with_cross_entropy:.5f} written "
                                 "with the soft cross-entropy). Is a constant added, or a term printed wrong?")
            names = list(_LOSS_BUGS)
            for count in range(1, len(names) + 1):
                for combination in itertools.combinations(names, count):
                    flags = dict.fromkeys(combination, True)
                    _, bug_gradient = _reference(functools.partial(_loss_variant, **flags), s, y, t, T, alpha)
                    if torch.allclose(gradient.double(), bug_gradient.double(), rtol=1e-4, atol=1e-6):
                        messages = [_LOSS_BUGS[name].format(C=s.shape[1]) for name in combination]
                        raise _Diagnosis(" ALSO: ".join(messages))
            if _close(value, expected):
                raise _Diagnosis("your loss has the right value but the wrong gradient: is a term detached?")
            raise _Diagnosis(f"at T = {T}, alpha = {alpha} your loss is {value:.5f}, the correct one {expected:.5f}; "
                             "compare term by term with alpha * T**2 * KL(teacher || student) + "
                             "(1 - alpha) * cross-entropy.")
        if cross_entropy_form:
            return ("same gradients as kdutils.losses.distillation_loss at T = 2, 4 and 8. Your soft term is "
                    "the cross-entropy with the teacher's soft labels: it equals the KL divergence plus the teacher's "
                    "entropy, a constant for the student, so it trains the same student; its value is higher by "
                    "alpha * T**2 * H(teacher), and it is not 0 when the student matches the teacher.")
        return "same values and gradients as kdutils.losses.distillation_loss at T = 2, 4 and 8."

    return _run(loss_fn, body, library=("distillation_loss", "token_distillation_loss"))


class _WatchedTeacher(nn.Module):
    """A teacher with dropout that records, for every forward pass, its mode and whether a graph was recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x):
        logits = self.net(x)
        self.calls.append((self.training, logits.requires_grad))
        return logits


class _WatchedSGD(torch.optim.SGD):
    """Plain SGD that counts its steps."""

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


def _one_step(student: nn.Module, images, labels, teacher_logits, T: float, alpha: float) -> nn.Module:
    """A copy of ``student`` after one correct SGD step of the distillation loss (learning rate 0.5)."""
    student = copy.deepcopy(student)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    optimizer.zero_grad()
    distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha).backward()
    optimizer.step()
    return student


def _same_weights(a: nn.Module, b: nn.Module, atol: float = 1e-6) -> bool:
    return all(torch.allclose(p, q, atol=atol) for p, q in zip(a.parameters(), b.parameters()))


def check_distillation_step(
    step: Callable[[nn.Module, nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, float, float], object],
) -> CheckResult:
    """``step(student, teacher, optimizer, images, labels, T, alpha)`` must make one distillation step.

    Teacher in ``eval()``, its logits under ``no_grad()``, then ``distillation_loss``,
    ``optimizer.zero_grad()``, ``loss.backward()``, ``optimizer.step()``. The check watches the
    teacher and the optimizer, and compares the student's new weights with a correct step from the same
    weights, at two (T, alpha) pairs that are not ``distillation_loss``'s defaults.
    """

    def body() -> str:
        for T, alpha in ((2.5, 0.6), (6.0, 0.3)):
            torch.manual_seed(0)
            teacher = _WatchedTeacher().train()  # left in train mode on purpose: the step must switch it
            student = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
            images, labels = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
            initial = copy.deepcopy(student)
            optimizer = _WatchedSGD(student.parameters(), lr=0.5)
            for p in student.parameters():  # stale gradients from an earlier step: zero_grad must clear them
                p.grad = torch.ones_like(p)
            _call(step, student, teacher, optimizer, images, labels, T, alpha)

            if not teacher.calls:
                raise _Diagnosis("your step never called the teacher.")
            if any(training for training, _ in teacher.calls):
                raise _Diagnosis("the teacher ran in train() mode: call teacher.eval() first. With dropout or batch "
                                 "norm its soft labels change from call to call.")
            if any(recorded for _, recorded in teacher.calls):
                raise _Diagnosis("the teacher's forward pass recorded a graph for backpropagation: compute its "
                                 "logits under torch.no_grad() (a .detach() afterwards comes too late, the graph "
                                 "is already built), or memory and time are spent on the teacher.")
            if any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in teacher.parameters()):
                raise _Diagnosis("gradients reached the teacher's weights: its logits must carry no gradient.")
            if optimizer.steps == 0:
                raise _Diagnosis("you never called optimizer.step() on the optimizer you were given, so the student "
                                 "does not learn from this batch (or only through an optimizer of your own).")
            if optimizer.steps > 1:
                raise _Diagnosis(f"you called optimizer.step() {optimizer.steps} times: one step per batch.")
            if not all(bool(torch.isfinite(p).all()) for p in student.parameters()):
                raise _Diagnosis("after your step the student's weights are NaN (or infinite): the loss that was "
                                 "backpropagated was not a finite number.")

            with torch.no_grad():
                teacher_logits = teacher.eval().net(images)
            if _same_weights(student, _one_step(initial, images, labels, teacher_logits, T, alpha)):
                continue
            if _same_weights(student, _one_step(initial, images, labels, teacher_logits, 4.0, 0.9)):
                raise _Diagnosis(f"your step ignored the T = {T} and alpha = {alpha} it was given and used "
                                 "distillation_loss's defaults (4.0 and 0.9): pass T=T, alpha=alpha.")
            accumulated = _one_step(initial, images, labels, teacher_logits, T, alpha)
            with torch.no_grad():
                for p in accumulated.parameters():
                    p -= 0.5  # the stale gradient of ones, times the learning rate, not cleared
            if _same_weights(student, accumulated, atol=1e-5):
                raise _Diagnosis("you did not call optimizer.zero_grad(): the gradients of the previous step were "
                                 "added to this one.")
            if all(torch.equal(a, b) for a, b in zip(student.parameters(), initial.parameters())):
                raise _Diagnosis("optimizer.step() ran but the student's weights did not move: call loss.backward() "
                                 "before optimizer.step(), and optimizer.zero_grad() before loss.backward().")
            raise _Diagnosis(f"at T = {T}, alpha = {alpha} the student's new weights differ from one step of "
                             "distillation_loss(student_logits, labels, teacher_logits, T, alpha) with the given "
                             "optimizer.")
        return "teacher in eval() under no_grad(), and the student moved exactly as one distillation step says."

    return _run(step, body)


# --- notebook 05: one epoch with cached teacher logits --------------------------------------------------


class _RowStudent(nn.Module):
    """A "student" whose logits say which example they belong to (column 0) and carry one learnable number.

    Column 1 is a parameter, ``offset``, that starts at 0. The spy loss is the mean of column 1, so each
    correct step (zero_grad, backward, step) with SGD at learning rate 0.1 lowers it by exactly 0.1.
    """

    def __init__(self) -> None:
        super().__init__()
        self.offset = nn.Parameter(torch.zeros(()))

    def forward(self, xb):
        out = torch.zeros(xb.shape[0], 10)
        out[:, 0] = xb[:, 0]  # kept apart from the offset, so a NaN offset cannot hide which example it is
        out[:, 1] = self.offset
        return out


def check_epoch_alignment(
    epoch: Callable[[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor, torch.Tensor, int,
                     torch.Generator, Callable], object],
) -> CheckResult:
    """``epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn)``: one epoch, cached targets.

    The epoch must shuffle with ``generator``, give ``loss_fn(student_logits, labels,
    teacher_logits_of_the_batch)`` the teacher's logits *of the same examples* as the images and labels,
    and take one optimizer step per batch, its gradients cleared first.
    """
    n, batch_size, lr, stale = 43, 8, 0.1, 5.0
    batches = math.ceil(n / batch_size)

    def run(seed: int) -> tuple[list[list[int]], set[str], float, int]:
        """One epoch of the student's function: each batch's rows, the problems seen, the final offset, the steps."""
        x = torch.arange(n, dtype=torch.float32).reshape(n, 1).repeat(1, 4)  # row i holds the number i
        y = torch.arange(n) % 10
        teacher_logits = torch.zeros(n, 10)
        teacher_logits[:, 0] = torch.arange(n, dtype=torch.float32)  # column 0 tells which example it is
        seen: list[list[int]] = []
        problems: set[str] = set()

        def spy_loss(student_logits, labels, teacher_logits, T=4.0, alpha=0.9):  # distillation_loss's names
            shapes = [tuple(getattr(a, "shape", ())) for a in (student_logits, labels, teacher_logits)]
            if len(shapes[0]) != 2 or len(shapes[1]) != 1 or len(shapes[2]) != 2:
                raise _Diagnosis(f"loss_fn was given tensors of shapes {shapes}: call it as loss_fn(student_logits, "
                                 "labels, teacher_logits_of_the_batch), in that order, shapes (B, 10), (B,), (B, 10).")
            rows = student_logits[:, 0].detach().round().long()
            seen.append(rows.tolist())
            if not torch.equal(teacher_logits[:, 0].detach().round().long(), rows):
                problems.add("order")
            if not torch.equal(labels, y[rows]):
                problems.add("labels")
            if teacher_logits.requires_grad:
                problems.add("grad")
            return student_logits[:, 1].mean()

        student = _RowStudent()
        student.offset.grad = torch.tensor(stale)  # left from before the epoch: each batch must clear it first
        optimizer = _WatchedSGD(student.parameters(), lr=lr)
        _call(epoch, student, optimizer, x, y, teacher_logits, batch_size, torch.Generator().manual_seed(seed),
              spy_loss)
        return seen, problems, student.offset.item(), optimizer.steps

    def body() -> str:
        seen, problems, offset, steps = run(0)
        rows = [row for batch in seen for row in batch]
        if not seen:
            raise _Diagnosis("your epoch never called loss_fn(student_logits, labels, teacher_logits_of_the_batch).")
        if "order" in problems:
            raise _Diagnosis("the teacher's logits are out of step with the shuffled batch: slice the cached "
                             "teacher logits with the same indices as the images (teacher_logits[idx]).")
        if "labels" in problems:
            raise _Diagnosis("the labels are out of step with the images: slice them with the same indices.")
        if "grad" in problems:
            raise _Diagnosis("the teacher's logits carry a gradient: compute the cache under torch.no_grad().")
        if sorted(rows) != list(range(n)):
            raise _Diagnosis(f"one epoch must visit each of the {n} examples exactly once; yours visited "
                             f"{len(rows)} rows, {len(set(rows))} distinct.")
        sizes = [len(batch) for batch in seen]
        expected_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
        if sizes != expected_sizes:
            raise _Diagnosis(f"with {n} examples and batch_size = {batch_size} the batches should hold "
                             f"{expected_sizes} examples; yours held {sizes}. Use the batch_size you were given.")
        if rows == list(range(n)):
            raise _Diagnosis("your epoch does not shuffle: draw the order with torch.randperm(n, generator=generator).")
        again, *_ = run(0)
        if again != seen:
            raise _Diagnosis("two epochs with the same seed gave different orders: draw the order from the "
                             "generator you were given (generator=generator), so that a seed repeats an epoch.")
        other, *_ = run(1)
        if other == seen:
            raise _Diagnosis("another seed gave the same order: draw the order from the generator you were given, "
                             "not from one of your own with a fixed seed.")
        if not math.isfinite(offset):
            raise _Diagnosis("after your epoch the student's weights are NaN: a loss that was NaN (or infinite) "
                             "was backpropagated. Pass loss_fn's result to backward() as it is.")
        if steps == 0:
            raise _Diagnosis("the student did not change: you never called optimizer.step() on the optimizer you "
                             "were given. For each batch: optimizer.zero_grad(), loss.backward(), optimizer.step().")
        if steps != batches:
            raise _Diagnosis(f"you called optimizer.step() {steps} times in an epoch of {batches} batches: make one "
                             "step per batch, right after that batch's backward pass.")
        if _close(offset, -lr * batches, abs_=1e-5):
            return "shuffled batches, each with its own examples' teacher logits and labels."
        if _close(offset, 0.0, abs_=1e-7):
            raise _Diagnosis("the student did not change: for each batch call loss.backward() and then "
                             "optimizer.step() (with optimizer.zero_grad() before the backward, not between).")
        if _close(offset, -lr * (stale * batches + batches * (batches + 1) / 2), abs_=1e-5):
            raise _Diagnosis("you never cleared the gradients: call optimizer.zero_grad() before each "
                             "loss.backward(), or each step also repeats all the earlier batches' gradients.")
        if _close(offset, -lr * (batches + stale), abs_=1e-5):
            raise _Diagnosis("the first batch's step also applied a gradient left from before the epoch: call "
                             "optimizer.zero_grad() before each backward (clearing after the step is one batch too "
                             "late for the first).")
        if -offset / lr > batches:
            raise _Diagnosis(f"the student moved further than this epoch's {batches} batches allow (as far as "
                             f"{-offset / lr:.3f} clean steps): a gradient was not cleared before a backward, one "
                             "from before the epoch or from an earlier batch. Call optimizer.zero_grad() before "
                             "each loss.backward().")
        raise _Diagnosis(f"the student moved as {-offset / lr:.3f} optimizer steps of this epoch's {batches} "
                         "batches would: one optimizer.step() per batch, after zero_grad() and backward().")

    return _run(epoch, body)


# --- notebook 05: gap closed ----------------------------------------------------------------------------


def check_gap_closed(gap: Callable[[float, float, float], float]) -> CheckResult:
    """``gap(scratch, distilled, teacher)`` must be ``(distilled - scratch) / (teacher - scratch)``."""

    def body() -> str:
        # Accuracies, and Hinton et al.'s MNIST error counts (lower is better), negated and as they are.
        cases = [(80.0, 82.0, 90.0), (80.0, 91.0, 90.0), (80.0, 79.0, 90.0), (0.80, 0.86, 0.90), (85, 88, 89),
                 (-146, -74, -67), (146, 74, 67), (70.0, 72.5, 95.0)]
        for scratch, distilled, teacher in cases:
            got = _number(_call(gap, scratch, distilled, teacher), "the gap closed")
            expected = (distilled - scratch) / (teacher - scratch)
            if _close(got, expected):
                continue
            if _close(got, 100 * expected):
                raise _Diagnosis("return a fraction (0.2 for a fifth of the gap), not a percentage.")
            if _close(got, min(max(expected, 0.0), 1.0)):
                if expected > 1:
                    why = f"here the student beat its teacher, {expected:.2f} of the gap (a born-again student)"
                else:
                    why = f"here the student lost to its scratch twin, {expected:.2f} of the gap: distillation hurt"
                raise _Diagnosis(f"do not clip to [0, 1]: {why}, and the number should say so.")
            if teacher != distilled and _close(got, (distilled - scratch) / (teacher - distilled)):
                raise _Diagnosis("divide by the whole gap to close, teacher - scratch, not teacher - distilled.")
            if _close(got, -expected) and teacher < scratch:
                raise _Diagnosis(f"gap({scratch}, {distilled}, {teacher}) should be {expected:.4f}, got {got:.4f}: "
                                 "with error counts (lower is better) both differences are negative and their "
                                 "signs cancel. Divide (distilled - scratch) by (teacher - scratch) as they are, "
                                 "without abs().")
            if _close(got, -expected) and expected < 0:
                raise _Diagnosis(f"gap({scratch}, {distilled}, {teacher}) should be {expected:.4f}, got {got:.4f}: "
                                 "when distillation hurts, the gap closed is negative; keep its sign (no abs()).")
            if _close(got, -expected):
                raise _Diagnosis("the sign is reversed: a distilled student better than scratch closes a positive gap.")
            if not _close(expected, round(expected)) and any(_close(got, whole(expected))
                                                             for whole in (math.floor, math.trunc, round)):
                raise _Diagnosis(f"you returned the whole number {got:g} where the fraction is {expected:.4f}: // "
                                 "(floor division), int() and round() each drop the fraction. Divide with / and "
                                 "keep it; round only when you print it.")
            if any(_close(got, round(expected, digits)) for digits in range(1, 4)):
                raise _Diagnosis(f"do not round: {expected!r} is the fraction; round only when you print it.")
            raise _Diagnosis(f"gap({scratch}, {distilled}, {teacher}) should be {expected:.4f}, got {got:.4f}.")
        return "(distilled - scratch) / (teacher - scratch), unclipped: above 1 when the student beats its teacher."

    return _run(gap, body, library=("gap_closed",))


# --- notebook 06: the bias correction -------------------------------------------------------------------


def check_add_to_bias(add_to_bias: Callable[[nn.Module, int, float], nn.Module]) -> CheckResult:
    """``add_to_bias(model, cls, shift)`` must return a *copy* whose output bias for ``cls`` is raised by ``shift``."""

    def body() -> str:
        for seed, (cls, shift) in enumerate(((7, 2.5), (0, -1.25), (9, 0.75), (3, 4.0))):
            torch.manual_seed(seed)
            model = StudentModel()
            original = copy.deepcopy(model.state_dict())
            x = torch.randn(5, 784)
            shifted = _call(add_to_bias, model, cls, shift)
            if not all(torch.equal(v, model.state_dict()[k]) for k, v in original.items()):
                raise _Diagnosis("your function changed the model it was given: shift a copy (copy.deepcopy(model)), "
                                 "so the uncorrected student is still there to compare with.")
            if not isinstance(shifted, nn.Module):
                raise _Diagnosis(f"return the shifted copy of the model, got {type(shifted).__name__}.")
            with torch.no_grad():
                difference = _tensor(_call(shifted, x), "the shifted model's output") - model(x).double()
            if difference.shape != (5, 10):
                raise _Diagnosis(f"the shifted model should give 10 logits per image, got shape "
                                 f"{tuple(difference.shape)}.")
            _finite(difference, f"the shifted model's logits (add_to_bias(model, {cls}, {shift}))")
            expected = torch.zeros(5, 10, dtype=torch.float64)
            expected[:, cls] = shift
            if _same(difference, expected):
                continue
            changed = [c for c in range(10) if not _same(difference[:, c], torch.zeros(5))]
            column = difference[:, changed[0]] if changed else None
            if len(changed) == 10 and _same(difference, torch.full((5, 10), shift, dtype=torch.float64)):
                raise _Diagnosis("you raised every class's bias: raise only the one of class cls (bias[cls]).")
            if changed == [cls] and _same(column, torch.full((5,), shift - original["fc2.bias"][cls].item())):
                raise _Diagnosis(f"you set bias[{cls}] to {shift}: add shift to it (+=), keeping what it learnt.")
            if len(changed) == 1 and changed[0] != cls:
                raise _Diagnosis(f"asked for class {cls}, you shifted class {changed[0]}: use the cls you were given.")
            if changed == [cls] and _same(column, torch.full((5,), -shift, dtype=torch.float64)):
                raise _Diagnosis(f"the logit of class {cls} moved by {-shift:g}, the opposite of shift = {shift:g}: "
                                 "add shift to the bias (+=), do not subtract it.")
            bias_before = original["fc2.bias"][cls].item()
            if changed == [cls] and _same(column, torch.full((5,), bias_before * (shift - 1), dtype=torch.float64)):
                raise _Diagnosis(f"you multiplied bias[{cls}] by shift (*=): add shift to it (+=), so every logit of "
                                 f"class {cls} rises by the same {shift:g}.")
            if changed == [cls] and _same(column, column[0].expand(5)):
                raise _Diagnosis(f"the logit of class {cls} rose by {column[0].item():.4g}, not by shift = {shift}: "
                                 "use the shift you were given.")
            if changed == [cls]:
                raise _Diagnosis(f"the logit of class {cls} changed by a different amount for different images: "
                                 "shift the output layer's bias, not its weights.")
            raise _Diagnosis(f"add_to_bias(model, {cls}, {shift}): the shifted model's outputs differ from the "
                             f"original's by more than bias[{cls}] + {shift}.")
        return "a copy whose class-7 logit is 2.5 higher for every image, the original untouched."

    return _run(add_to_bias, body, library=("add_to_bias",))


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
            (edges, edge_labels, 4), (edges, edge_labels, 8)]


def _ece_with(confidence: torch.Tensor, correct: torch.Tensor, which: torch.Tensor, bins: int, weighted=True) -> float:
    """ECE from given bin numbers (``which``; numbers outside 0..bins-1 are left out): for the mistakes' variants."""
    gaps, shares = [], []
    for k in range(bins):
        members = which == k
        if bool(members.any()):
            gaps.append(abs(correct[members].mean().item() - confidence[members].double().mean().item()))
            shares.append(members.double().mean().item())
    if not weighted:
        return sum(gaps) / len(gaps)
    return sum(share * gap for share, gap in zip(shares, gaps))


def check_expected_calibration_error(ece: Callable[[torch.Tensor, torch.Tensor, int], float]) -> CheckResult:
    """``ece(probabilities, labels, bins)`` must match ``kdutils.analysis.expected_calibration_error``.

    Bin k holds the confidences in (k/bins, (k+1)/bins]; the check includes confidences exactly on an edge.
    """

    def body() -> str:
        for probabilities, labels, bins in _ece_cases():
            got = _number(_call(ece, probabilities.clone(), labels.clone(), bins), "the ECE")
            expected = expected_calibration_error(probabilities, labels, bins)
            if _close(got, expected, rel=1e-4):
                continue
            if _close(got, 100 * expected, rel=1e-4):
                raise _Diagnosis("return a fraction between 0 and 1, not a percentage.")
            for other in (10, 15):
                if other != bins and _close(got, expected_calibration_error(probabilities, labels, other), rel=1e-4):
                    raise _Diagnosis(f"you used {other} bins when asked for {bins}: use the bins you were given.")
            confidence, predicted = probabilities.max(dim=1)
            correct = (predicted == labels).double()
            which = (confidence * bins).ceil().long().clamp(1, bins) - 1
            if _close(got, _ece_with(confidence, correct, which, bins, weighted=False), rel=1e-4):
                raise _Diagnosis("you averaged the bins equally: weight each bin's |accuracy - confidence| by its "
                                 "share of the examples.")
            floor = (confidence * bins).floor().long()
            if any(_close(got, _ece_with(confidence, correct, bin_of, bins), rel=1e-4)
                   for bin_of in (floor, floor.clamp(max=bins - 1))):
                raise _Diagnosis(f"a confidence exactly on a bin edge went to the bin above it (with {bins} bins, "
                                 f"{1 / bins:g} belongs to the first bin, and 1.0 to the last): bin k holds "
                                 "(k/bins, (k+1)/bins], closed on the right, so use ceil(confidence * bins) - 1.")
            true_class = probabilities[torch.arange(len(labels)), labels]
            if _close(got, _ece_with(true_class, correct, (true_class * bins).ceil().long().clamp(1, bins) - 1,
                                     bins), rel=1e-4):
                raise _Diagnosis("the confidence is the largest probability (of the predicted class), not the "
                                 "probability of the true class.")
            overall = correct.mean().item() - confidence.double().mean().item()
            if _close(got, overall, rel=1e-4) or _close(got, abs(overall), rel=1e-4):
                # Share-weighted signed gaps add up to the overall gap: the bins cancel one another out.
                raise _Diagnosis("your ECE equals the gap between the overall accuracy and the overall confidence. "
                                 "Either the absolute value is missing in each bin (signed gaps of over- and "
                                 "under-confident bins cancel out: take |accuracy - confidence| per bin, before "
                                 "weighting and adding), or the predictions were never grouped into bins.")
            raise _Diagnosis(f"with {bins} bins on {len(labels)} predictions the ECE should be {expected:.4f}, "
                             f"got {got:.4f}.")
        return "the share-weighted gap between accuracy and confidence per bin, as kdutils computes it."

    return _run(ece, body, library=("expected_calibration_error", "reliability_bins"))


# --- notebook 08: the hint loss ------------------------------------------------------------------------------


def check_hint_loss(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``loss_fn(projected_student_features, teacher_features)``: mean squared error, as ``hint_loss(kind="mse")``."""

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        for batch, features in ((6, 8), (5, 3), (4, 16)):
            projected = torch.randn(batch, features, generator=generator)
            teacher = torch.randn(batch, features, generator=generator)
            student = projected.clone().requires_grad_(True)
            got = _call(loss_fn, student, teacher.clone())
            value = _number(got, "the hint loss")
            expected = hint_loss(projected, teacher).item()
            difference = projected - teacher
            if _close(value, expected):
                if not (isinstance(got, torch.Tensor) and got.requires_grad):
                    raise _Diagnosis("return the loss as a tensor that carries a gradient to the student's features.")
                (gradient,) = torch.autograd.grad(got.sum(), student, allow_unused=True)
                if gradient is None or not _same(gradient, 2 * difference / difference.numel(), atol=1e-7):
                    raise _Diagnosis("the value is right but the gradient is not: is a term detached?")
                continue
            if _close(value, difference.pow(2).sum().item()):
                raise _Diagnosis("you summed the squared differences: take their mean (the loss should not grow with "
                                 "the batch or the feature size).")
            if _close(value, difference.pow(2).sum(dim=1).mean().item()):
                raise _Diagnosis("you summed over the features and averaged over the batch: average over both.")
            if _close(value, difference.abs().mean().item()):
                raise _Diagnosis("that is the mean absolute difference (L1): square the differences.")
            if _close(value, difference.pow(2).mean().sqrt().item()):
                raise _Diagnosis("you took the square root (RMSE): the hint loss is the mean of the squares itself.")
            if _close(value, expected / 2):
                raise _Diagnosis("you halved the mean squared error: take the mean of the squares as it is.")
            if _close(value, F.cosine_similarity(projected, teacher, dim=1).mean().item()):
                raise _Diagnosis("you returned the cosine similarity, which is high when features agree: a loss "
                                 "must be low then (1 - cosine), and this exercise asks for the mean squared error.")
            raise _Diagnosis(f"for {batch} examples of {features} features expected {expected:.5f}, got {value:.5f}.")
        return "the mean over every feature of every example of the squared difference."

    return _run(loss_fn, body, library=("hint_loss",))


# --- notebook 09: averaging an ensemble ----------------------------------------------------------------------


def check_ensemble_average(average) -> CheckResult:
    """``average(logits_list, T)`` must return the mean over members of ``softmax(logits / T)``."""

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        # Member 0 has much larger logits than the others, so averaging the logits instead shows.
        three = [scale * torch.randn(6, 4, generator=generator) for scale in (6.0, 1.0, 1.5)]
        two = [scale * torch.randn(5, 10, generator=generator) for scale in (4.0, 1.0)]
        four = [scale * torch.randn(3, 7, generator=generator) for scale in (1.0, 5.0, 2.0, 0.5)]
        for members, T in ((three, 1.0), (three, 4.0), (two, 4.0), (four, 1.0)):
            got = _tensor(_call(average, [m.clone() for m in members], T), "the averaged probabilities")
            expected = average_probabilities(members, T).double()
            if got.shape == (len(members), *expected.shape):
                raise _Diagnosis("you returned one distribution per member: take the mean over the members "
                                 "(dim=0 of the stacked tensor).")
            if got.shape != expected.shape:
                raise _Diagnosis(f"the result should have one row per example and one column per class, "
                                 f"{tuple(expected.shape)}; got {tuple(got.shape)}.")
            _finite(got, f"{len(members)} members at T = {T}")
            if _same(got, expected):
                continue
            stacked = torch.stack(members).double()
            if _same(got, torch.softmax(stacked.mean(dim=0) / T, dim=1)):
                raise _Diagnosis("you averaged the logits, then took the softmax: that is the geometric mean, "
                                 "sharper and dominated by the member with the largest logits. Take each member's "
                                 "softmax first, then average the probabilities.")
            if _same(got, len(members) * expected):
                raise _Diagnosis("each row sums to the number of members: divide the sum by it (take the mean).")
            if T != 1.0 and _same(got, average_probabilities(members, 1.0)):
                raise _Diagnosis("the temperature has no effect: divide each member's logits by T before the softmax.")
            if T != 1.0 and _same(got, torch.softmax(stacked * T, dim=2).mean(dim=0)):
                raise _Diagnosis("you multiplied the logits by T: divide them by T, which softens the distribution.")
            if _same(got, torch.softmax(stacked / T, dim=1).mean(dim=0)):
                raise _Diagnosis("the softmax ran over the examples (dim=0 of each member's logits): take it over "
                                 "the classes, dim=1.")
            if _same(got.exp(), expected):
                raise _Diagnosis("you returned log-probabilities: return the probabilities themselves.")
            raise _Diagnosis(f"with {len(members)} members at T = {T} the averaged probabilities differ from the "
                             f"expected ones by up to {(got - expected).abs().max().item():.3g}.")
        return "the mean of the members' softened probabilities, at T = 1 and T = 4."

    return _run(average, body, library=("average_probabilities", "ensemble_logits"))


# --- notebook 10: reverse KL ------------------------------------------------------------------------------------


def check_reverse_kl(reverse_kl: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """``reverse_kl(student_logits, teacher_logits)`` on ``(N, V)`` logits: mean over rows of KL(student || teacher).

    The on-policy students of notebook 10 minimise it: mode-seeking, it punishes the student for putting
    probability where the teacher puts little.
    """

    def reverse(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        log_s, log_t = F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
        return (log_s.exp() * (log_s - log_t)).sum(dim=-1).mean()

    def body() -> str:
        generator = torch.Generator().manual_seed(0)
        for rows, vocabulary in ((12, 27), (7, 5), (20, 3)):
            student_logits = 2 * torch.randn(rows, vocabulary, generator=generator)
            teacher_logits = 3 * torch.randn(rows, vocabulary, generator=generator)
            log_s, log_t = F.log_softmax(student_logits, dim=-1), F.log_softmax(teacher_logits, dim=-1)
            per_row_reverse = (log_s.exp() * (log_s - log_t)).sum(dim=-1)
            per_row_forward = (log_t.exp() * (log_t - log_s)).sum(dim=-1)
            expected = per_row_reverse.mean().item()
            student = student_logits.clone().requires_grad_(True)
            got = _call(reverse_kl, student, teacher_logits.clone())
            if _is_nan(got):
                raise _nan_diagnosis(reverse_kl, "the reverse KL", student_logits, teacher_logits)
            value = _number(got, "the reverse KL")
            if _close(value, expected):
                if not (isinstance(got, torch.Tensor) and got.requires_grad):
                    raise _Diagnosis("return a tensor that carries a gradient to the student's logits.")
                (gradient,) = torch.autograd.grad(got.sum(), student, allow_unused=True)
                _, expected_gradient = _reference(reverse, student_logits, teacher_logits)
                if gradient is None or not _same(gradient, expected_gradient, atol=1e-7):
                    raise _Diagnosis("the value is right but the gradient is not: the student's probabilities that "
                                     "weight the sum must stay in the graph (do not detach them).")
                continue
            if _close(value, per_row_forward.mean().item()):
                raise _Diagnosis("that is the forward KL(teacher || student): weight by the student's probabilities, "
                                 "sum_v p_s (log p_s - log p_t).")
            if _close(value, per_row_reverse.sum().item()):
                raise _Diagnosis("you summed over the rows: average over them, so the loss does not grow with the "
                                 "batch.")
            if _close(value, expected / vocabulary):
                raise _Diagnosis("you averaged over the vocabulary too: sum over the vocabulary, average over the "
                                 "rows.")
            if _close(value, (log_s - log_t).sum(dim=-1).mean().item()) or _close(value, (log_s - log_t).mean().item()):
                raise _Diagnosis("the log-ratio must be weighted by the student's probabilities p_s before the sum.")
            raise _Diagnosis(f"for {rows} rows of {vocabulary} characters expected {expected:.5f}, got {value:.5f}.")
        return "the mean over rows of sum_v p_s (log p_s - log p_t), gradient included."

    return _run(reverse_kl, body, library=("token_kl",))
