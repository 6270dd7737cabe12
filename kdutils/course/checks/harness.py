"""The check harness: run a check's body, call the student's function safely, turn what it returns into numbers.

* ``run_check(function, body, library)``: the verdict of one check. The body gets ``call``, the only way
  it calls the student's code; it returns a pass message or raises ``Diagnosis`` with the mistake found.
  An error the check did not foresee becomes a verdict too, never a traceback; only the student
  edition's stub goes through (its ``NotImplementedError`` says "write this function"), so the cell
  stops at the stub. A ``NotImplementedError`` from anywhere else (PyTorch raises it for an operation it
  lacks) is a diagnosis like any other error.
* ``TimeBudget``: the seconds all of one check's calls of the student's code may take together
  (``TIME_LIMIT``). Each call runs in a thread of its own; one still running when the budget is spent is
  left running in the background (Python cannot stop a thread) and the check says so.
* A tensor the student's function was given and changed in place is a diagnosis: the caller goes on using it.
* ``to_tensor``, ``to_number``, ``check_finite``, ``close``, ``same``: any correct answer passes, in
  float32 or float64, as a numpy number or array or a list of numbers. A tensor or number of a class of
  the student's own (a subclass that redefines comparisons) is refused: the check compares plain values.
* ``WATCH``: ``None`` in a student's notebook. The grader (``kdutils.course.sandbox``) sets it, in its
  own copy of this module, to a function that raises when something the checks rely on was changed;
  ``watch()`` calls it after every call of the student's code and before every comparison.
"""

from __future__ import annotations

import inspect
import math
import numbers
import threading
import time
import warnings
from collections.abc import Callable

import torch

from .borrowed import borrowed
from .verdicts import STUB_MESSAGE_START, TIMEOUT_MESSAGE, CheckResult

__all__ = [
    "TIME_LIMIT",
    "WATCH",
    "Diagnosis",
    "TimeBudget",
    "check_finite",
    "close",
    "is_stub",
    "run_check",
    "same",
    "to_number",
    "to_tensor",
    "watch",
]

TIME_LIMIT = 30.0  # seconds all of one check's calls of the student's function may take together
#: Set by the grader only (see the module's docstring); called by ``watch()``.
WATCH: Callable[[], None] | None = None
#: The tensor types a student's function may return (a Parameter is a tensor of the model's).
PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def watch() -> None:
    """Let the grader look, if it is watching: it raises when the check can no longer be trusted."""
    if WATCH is not None:
        WATCH()


def is_stub(error: BaseException) -> bool:
    """Whether ``error`` is the student edition's stub, not yet replaced by an answer."""
    return isinstance(error, NotImplementedError) and str(error).startswith(STUB_MESSAGE_START)


class Diagnosis(Exception):
    """Raised inside a check to stop at the first mistake found, with its message."""


class TimeBudget:
    """The seconds the student's code may still run within one check, shared by all of the check's calls."""

    def __init__(self, seconds: float) -> None:
        self.limit = seconds
        self.left = seconds

    def call(self, function: Callable, *args):
        """Call ``function(*args)`` in a thread of its own, for at most the seconds left; return its result.

        Whatever it raises becomes a ``Diagnosis``, except the student edition's stub, which goes
        through. PyTorch's warnings (such as the one for ``reduction='mean'``) are silenced: the check
        names the mistake itself.
        """
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
            worker.join(max(self.left, 0.0))
            self.left -= time.monotonic() - started
        if worker.is_alive():
            raise Diagnosis(f"{TIMEOUT_MESSAGE} {self.limit:g} s (the check's calls together): is there a loop that "
                            "never ends, or far more work than the exercise needs? It keeps running in the "
                            "background; restart the kernel before you run the cell again.")
        watch()
        error = outcome.get("error")
        if isinstance(error, Diagnosis) or is_stub(error):
            raise error  # the stub; or a diagnosis from a function the check handed to the student's (a spy loss)
        if isinstance(error, NotImplementedError):
            raise Diagnosis(f"your function raised NotImplementedError: {error}. This is not the exercise's stub "
                            "(that one says 'write this function'): something your code calls does not support "
                            "what it was given, such as an operation PyTorch lacks for this dtype or shape.")
        if error is not None:
            raise Diagnosis(f"your function raised {type(error).__name__}: {error}")
        _inputs_unchanged(function, args, before)
        return outcome["value"]


def _verdict(passed: bool, message: str) -> CheckResult:
    result = CheckResult(passed, message)
    print(result)
    return result


def run_check(function: Callable, body: Callable[[Callable], str], library: tuple[str, ...] = ()) -> CheckResult:
    """Run one check's ``body(call)``: a string is a pass message; a ``Diagnosis`` is the mistake found.

    ``call(f, *args)`` calls the student's code within the check's ``TimeBudget`` of ``TIME_LIMIT``
    seconds. ``library`` names the ready-made functions the exercise asks the student to write themselves.
    """
    found = borrowed(function, library)
    if found:
        return _verdict(False, f"your answer is, or calls, {found}, a ready-made version of what this exercise "
                               "asks you to write: write it yourself, then run the check.")
    budget = TimeBudget(TIME_LIMIT)
    try:
        return _verdict(True, body(budget.call))
    except Diagnosis as diagnosis:
        return _verdict(False, str(diagnosis))
    except NotImplementedError as error:
        if is_stub(error):
            raise  # the stub of the student edition, not yet written
        return _verdict(False, f"the check stopped on NotImplementedError: {error}; return what the exercise "
                               "asks for.")
    except Exception as error:  # a result the check could not even compare: a verdict, not a traceback
        return _verdict(False, f"the check could not use what your function returned ({type(error).__name__}: "
                               f"{error}); return what the exercise asks for.")


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
            raise Diagnosis(f"your function changed the tensor it was given as its argument {name}(number "
                            f"{position + 1}) in place, with an operation such as /=, +=, x[:] = ..., .sub_() "
                            "or .clamp_(): the caller goes on using it. Compute new tensors instead.")


def check_finite(values: torch.Tensor, what: str, tip: str = "") -> None:
    """Stop with "your function returned NaN" (or inf) when ``values`` holds one, plus an optional ``tip``."""
    for bad, name in ((torch.isnan(values), "NaN"), (torch.isinf(values), "an infinite value")):
        if bool(bad.any()):
            raise Diagnosis(f"your function returned {name} for {what}. {tip}".strip())


def to_tensor(value, what: str) -> torch.Tensor:
    """The student's numbers as a float64 tensor: from a tensor of any dtype, a numpy array or a list of numbers.

    The exercises ask for numbers, not for a type: a correct list of precisions is a correct answer.
    """
    if isinstance(value, torch.Tensor):
        return plain_tensor(value, what).detach().double()
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise Diagnosis(f"{what} should be a tensor of numbers, got {type(value).__name__}.") from None


def plain_tensor(value: torch.Tensor, what: str) -> torch.Tensor:
    """``value`` when it is a plain tensor; a subclass (which may redefine every operation) is a diagnosis."""
    if type(value) not in PLAIN_TENSORS:
        raise Diagnosis(f"{what} should be a plain torch.Tensor, got a {type(value).__name__}, a subclass of it: "
                        "return the tensor itself (the check compares plain values).")
    return value


def to_number(value, what: str, tip: str = "") -> float:
    """The student's result as a finite float: a Python or numpy number, or a tensor or array with one element."""
    if isinstance(value, torch.Tensor):
        value = plain_tensor(value, what)
    if isinstance(value, torch.Tensor) or type(value).__module__ == "numpy":
        value = torch.as_tensor(value)
        if value.numel() != 1:
            raise Diagnosis(f"{what} should be a single number, got {value.numel()} numbers of shape "
                            f"{tuple(value.shape)}.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise Diagnosis(f"{what} should be a number, got {type(value).__name__}.")
    if type(value) not in (int, float):
        raise Diagnosis(f"{what} should be a plain number, got a {type(value).__name__}: return a float.")
    check_finite(torch.tensor(float(value)), what, tip)
    return float(value)


def close(a: float, b: float, rel: float = 1e-4, abs_: float = 1e-6) -> bool:
    watch()
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def same(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Whether two results agree, whatever their dtypes (both compared in float64)."""
    watch()
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol)
