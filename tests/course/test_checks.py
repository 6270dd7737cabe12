"""Every exercise check (kdutils.course.checks, imported by students from kdutils.exercises) passes correct
answers, names each classic mistake, and never crashes or hangs.

The kinds of trouble a class runs into, each tested here: correct answers in another dtype or as numpy
numbers, equivalent formulas, realistic bugs with their diagnosis, functions that raise, return NaN or
the wrong type, or never return, and kdutils' own function handed in as the answer.
"""

import copy
import threading

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kdutils import exercises, losses
from kdutils.analysis import expected_calibration_error
from kdutils.course.checks import harness
from kdutils.course.checks.verdicts import STUB_MESSAGE, TIMEOUT_MESSAGE
from kdutils.ensembles import average_probabilities
from kdutils.exercises import (
    CheckResult,
    check_add_to_bias,
    check_distillation_loss,
    check_distillation_step,
    check_ensemble_average,
    check_epoch_alignment,
    check_expected_calibration_error,
    check_feature_loss,
    check_gap_closed,
    check_parameter_count,
    check_precision,
    check_reverse_kl,
    check_softmax_with_temperature,
    hint,
)
from kdutils.losses import distillation_loss, feature_loss, soft_targets
from kdutils.models import count_parameters
from kdutils.transfer import add_to_bias, gap_closed

CHECKS = [getattr(exercises, name) for name in exercises.__all__ if name.startswith("check_")]


def assert_passes(result: CheckResult) -> None:
    assert isinstance(result, CheckResult) and result.passed, result.message
    assert bool(result) and str(result).startswith("PASSED: ")


def assert_diagnoses(result: CheckResult, *phrases: str) -> None:
    assert isinstance(result, CheckResult) and not result.passed, "a buggy answer passed"
    assert str(result).startswith("NOT YET: ")
    for phrase in phrases:
        assert phrase in result.message, f"expected {phrase!r} in: {result.message}"


# --- what every check does, whatever the student's function does ----------------------------------------


def test_every_check_has_stepped_hints_and_every_hint_a_check():
    assert sorted(exercises.HINTS) == sorted(check.__name__.removeprefix("check_") for check in CHECKS)
    assert all(len(steps) >= 2 for steps in exercises.HINTS.values())


def test_a_hint_comes_one_step_at_a_time(capsys):
    hint("precision")
    first = capsys.readouterr().out
    assert first.startswith("Hint 1 of 2: ") and "hint('precision', 2)" in first
    hint("precision", 2)
    second = capsys.readouterr().out
    assert second.startswith("Hint 2 of 2: ") and "last hint" in second and second != first
    hint("precision", 9)  # past the last: the last one again
    assert capsys.readouterr().out == second
    with pytest.raises(ValueError, match="the exercises are: .*precision"):
        hint("precison")


def test_no_hint_spells_an_answer():
    # The hints of the old stubs were the answer in words; none of these may hold code of an answer.
    answers = ["sum(dim=0)", "p.numel() for p", "dim=0).clamp", "T * T", "(distilled - scratch) / (teacher - scratch)",
               "teacher_logits[idx]", "copy.deepcopy", "ceil(confidence * bins) - 1", ".mean(dim=0)",
               "log_softmax(", "torch.no_grad()", "reduction='batchmean'", "randperm"]
    for exercise, steps in exercises.HINTS.items():
        for step in steps:
            assert not [a for a in answers if a in step], (exercise, step)


def test_a_check_prints_its_verdict(capsys):
    check_gap_closed(lambda s, d, t: (d - s) / (t - s))
    assert capsys.readouterr().out.startswith("PASSED: ")


def test_a_check_as_the_last_line_of_a_cell_shows_only_its_printed_verdict(capsys):
    # A check cell ends with the check call, so Jupyter would also show the returned value.
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.user_ns["check"] = check_gap_closed
    shell.run_cell("check(lambda scratch, distilled, teacher: (distilled - scratch) / (teacher - scratch))")
    shown = capsys.readouterr().out
    assert shown.startswith("PASSED: ") and "CheckResult" not in shown
    shell.run_cell("repr(check(lambda scratch, distilled, teacher: 0.0))")
    assert "CheckResult(passed=False)" in capsys.readouterr().out  # repr itself is unchanged


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_stub_of_the_student_edition_goes_through_every_check(check):
    def stub(*args):
        raise NotImplementedError(STUB_MESSAGE.format(exercise=check.__name__.removeprefix("check_")))

    with pytest.raises(NotImplementedError, match="write this function"):
        check(stub)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_a_not_implemented_error_from_torch_is_a_diagnosis_not_the_stub(check):
    def buggy(*args):  # what torch raises for an operation it lacks: not the student's unfinished stub
        raise NotImplementedError("\"addmm_impl_cpu_\" not implemented for 'Half'")

    assert_diagnoses(check(buggy), "NotImplementedError", "not the exercise's stub")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_an_error_in_the_students_code_is_a_verdict_not_a_traceback(check):
    assert_diagnoses(check(lambda *args: 1 / 0), "your function raised ZeroDivisionError: division by zero")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("returned", [None, "text", [1, 2], {"a": 1}, torch.zeros(2, 3, 4), np.ones(3)],
                         ids=["None", "str", "list", "dict", "3-d tensor", "numpy array"])
def test_a_result_of_the_wrong_kind_is_a_verdict_that_says_what_was_wrong(check, returned):
    result = check(lambda *args: returned)
    assert isinstance(result, CheckResult) and not result.passed
    # Each check names the kind it received, the shape it expected, or the step that is missing; the harness's
    # fallback for a result it could not use at all would be a less useful answer.
    assert not result.message.startswith("the check could not use what your function returned"), result.message
    told = (type(returned).__name__, "shape", "single number", "never called", "a tensor", "one number",
            "one row per example", "expected")
    assert any(phrase in result.message for phrase in told), result.message


@pytest.fixture
def hanging():
    """A function that never returns while the test runs (it is released afterwards, so no thread is left)."""
    release = threading.Event()
    yield lambda *args: release.wait(60)
    release.set()


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_a_function_that_never_returns_times_out_with_a_clear_message(check, hanging, monkeypatch):
    monkeypatch.setattr(harness, "TIME_LIMIT", 0.2)
    result = check(hanging)
    assert_diagnoses(result, "did not finish within 0.2 s", "restart the kernel")
    assert result.message.startswith(TIMEOUT_MESSAGE)


def test_the_time_limit_covers_all_of_a_checks_calls_together(monkeypatch):
    """Many calls that each stay under the limit still stop the check once they add up to it."""
    import time

    monkeypatch.setattr(harness, "TIME_LIMIT", 0.5)

    def slow_but_correct(s, d, t):
        time.sleep(0.1)
        return (d - s) / (t - s)

    started = time.monotonic()
    result = check_gap_closed(slow_but_correct)  # 7 calls of 0.1 s: 0.7 s, more than the 0.5 s allowed
    assert_diagnoses(result, "did not finish within 0.5 s", "calls together")
    assert time.monotonic() - started < 2.0
    monkeypatch.setattr(harness, "TIME_LIMIT", 5.0)
    assert_passes(check_gap_closed(slow_but_correct))  # the same calls within a larger budget


def test_each_check_gets_a_time_budget_of_its_own(monkeypatch):
    # The budget is an object made for each check, not a module global that one check could leave spent.
    import time

    monkeypatch.setattr(harness, "TIME_LIMIT", 2.0)

    def slow_but_correct(s, d, t):
        time.sleep(0.15)
        return (d - s) / (t - s)

    # 8 calls of 0.15 s each time: 1.2 s, within each check's own 2 s (a busy machine has 0.8 s to spare),
    # while three checks sharing one budget would need 3.6 s
    for _ in range(3):
        assert_passes(check_gap_closed(slow_but_correct))
    budget = harness.TimeBudget(1.0)
    assert budget.call(lambda x: x + 1, 1) == 2 and 0.9 < budget.left <= 1.0


def test_exercises_is_only_the_students_door_to_the_checks():
    for name in exercises.__all__:
        module = getattr(exercises, name).__module__ if callable(getattr(exercises, name)) else None
        assert module is None or module.startswith("kdutils.course.checks."), (name, module)


NAN = float("nan")
RETURNS_NAN = {
    check_parameter_count: lambda model: NAN,
    check_precision: lambda matrix: torch.full((len(matrix),), NAN),
    check_softmax_with_temperature: lambda z, T: z * NAN,
    check_distillation_loss: lambda s, y, t, T, alpha: (s * NAN).sum(),
    check_gap_closed: lambda s, d, t: np.float32(NAN),
    check_expected_calibration_error: lambda p, y, bins: torch.tensor(NAN),
    check_feature_loss: lambda p, t: (p * NAN).mean(),
    check_ensemble_average: lambda ls, T: ls[0] * NAN,
    check_reverse_kl: lambda s, t: (s * NAN).mean(),
}


@pytest.mark.parametrize("check", list(RETURNS_NAN), ids=lambda c: c.__name__)
def test_nan_from_the_students_function_is_reported_as_such(check):
    result = check(RETURNS_NAN[check])
    assert_diagnoses(result, "your function returned NaN")
    assert "it takes the log of raw logits" not in result.message, "a NaN of another cause was blamed on the log"


def test_nan_in_the_students_epoch_or_shifted_model_is_reported_as_such():
    def nan_epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        for idx in torch.randperm(len(y), generator=generator).split(batch_size):
            loss = loss_fn(student(x[idx]), y[idx], teacher_logits[idx]) * NAN
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    assert_diagnoses(check_epoch_alignment(nan_epoch), "weights are NaN")

    def nan_step(student, teacher, optimizer, images, labels, T, alpha):
        teacher.eval()
        with torch.no_grad():
            teacher_logits = teacher(images)
        loss = distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha) * NAN
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    assert_diagnoses(check_distillation_step(nan_step), "weights are NaN")


def test_an_epoch_that_calls_the_loss_with_its_arguments_swapped_is_told_the_order():
    def swapped(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        for idx in torch.randperm(len(y), generator=generator).split(batch_size):
            loss = loss_fn(y[idx], student(x[idx]), teacher_logits[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    assert_diagnoses(check_epoch_alignment(swapped), "in that order", "(B, 10), (B,), (B, 10)")

    def nan_bias(model, cls, shift):
        shifted = copy.deepcopy(model)
        with torch.no_grad():
            shifted.fc2.bias[cls] += NAN
        return shifted

    result = check_add_to_bias(nan_bias)
    assert_diagnoses(result, "returned NaN", "shifted model's logits")
    assert "weights" not in result.message


LIBRARY = [
    (check_parameter_count, count_parameters, "count_parameters"),
    (check_softmax_with_temperature, soft_targets, "soft_targets"),
    (check_distillation_loss, distillation_loss, "distillation_loss"),
    (check_gap_closed, gap_closed, "gap_closed"),
    (check_add_to_bias, add_to_bias, "add_to_bias"),
    (check_expected_calibration_error, expected_calibration_error, "expected_calibration_error"),
    (check_feature_loss, feature_loss, "feature_loss"),
    (check_ensemble_average, average_probabilities, "average_probabilities"),
]


@pytest.mark.parametrize(("check", "library", "name"), LIBRARY, ids=[name for _, _, name in LIBRARY])
def test_kdutils_own_function_is_named_not_passed(check, library, name):
    assert_diagnoses(check(library), "kdutils.", name, "write it yourself")


def test_a_function_that_calls_kdutils_own_answer_is_named_not_passed():
    assert_diagnoses(check_distillation_loss(lambda s, y, t, T, alpha: distillation_loss(s, y, t, T=T, alpha=alpha)),
                     "calls, kdutils.losses.distillation_loss")
    assert_diagnoses(check_distillation_loss(lambda s, y, t, T, a: losses.distillation_loss(s, y, t, T, a)),
                     "distillation_loss")
    assert_diagnoses(check_ensemble_average(lambda ls, T: [average_probabilities(ls, T)][0]), "average_probabilities")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: torch.softmax(z / T, dim=-1)), "softmax")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: F.log_softmax(z / T, dim=-1).exp()), "log_softmax")


def test_kdutils_own_answer_under_another_name_or_wrapped_is_named_not_passed():
    import functools

    namespace = {}
    exec(  # as in a notebook: an aliased import, and a module imported under another name
        "from kdutils.losses import distillation_loss as kd\n"
        "import kdutils.ensembles as ens\n"
        "from torch import softmax as sm\n"
        "def aliased(s, y, t, T, alpha):\n"
        "    return kd(s, y, t, T, alpha)\n"
        "def through_module(ls, T):\n"
        "    return ens.average_probabilities(ls, T)\n"
        "def torch_alias(z, T):\n"
        "    return sm(z / T, -1)\n",
        namespace,
    )
    assert_diagnoses(check_distillation_loss(namespace["aliased"]), "kdutils.losses.distillation_loss")
    assert_diagnoses(check_ensemble_average(namespace["through_module"]), "average_probabilities")
    assert_diagnoses(check_softmax_with_temperature(namespace["torch_alias"]), "softmax", "write it yourself")
    assert_diagnoses(check_distillation_loss(functools.partial(distillation_loss)), "kdutils.losses")
    assert_diagnoses(check_gap_closed(functools.partial(functools.partial(gap_closed))), "gap_closed")

    def with_a_default(s, y, t, T, alpha, loss=distillation_loss):
        return loss(s, y, t, T, alpha)

    def make_closure():
        loss = functools.partial(distillation_loss)
        return lambda s, y, t, T, alpha: loss(s, y, t, T, alpha)

    assert_diagnoses(check_distillation_loss(with_a_default), "distillation_loss", "write it yourself")
    assert_diagnoses(check_distillation_loss(make_closure()), "distillation_loss", "write it yourself")


def test_kdutils_own_answer_behind_helpers_or_in_a_callable_object_is_named_not_passed():
    namespace = {}
    exec(  # as in a notebook: helpers of the student's own that end in the library's function
        "import torch\n"
        "from kdutils.losses import distillation_loss\n"
        "from kdutils.models import count_parameters\n"
        "def _inner(*a):\n"
        "    return distillation_loss(*a)\n"
        "def _outer(*a):\n"
        "    return _inner(*a)\n"
        "def answer(*a):\n"
        "    return _outer(*a)\n"
        "def _soft(z):\n"
        "    return torch.softmax(z, -1)\n"
        "def _scaled(z, T):\n"
        "    return _soft(z / T)\n"
        "def my_softmax(z, T):\n"
        "    return _scaled(z, T)\n"
        "class Counter:\n"
        "    def __call__(self, model):\n"
        "        return count_parameters(model)\n",
        namespace,
    )
    assert_diagnoses(check_distillation_loss(namespace["answer"]), "kdutils.losses.distillation_loss")
    assert_diagnoses(check_softmax_with_temperature(namespace["my_softmax"]), "softmax", "write it yourself")
    assert_diagnoses(check_parameter_count(namespace["Counter"]()), "count_parameters", "write it yourself")


def test_a_helper_of_the_students_own_with_a_library_name_is_not_mistaken_for_it():
    namespace = {}
    exec(  # as in a notebook: the student's own softmax, used by their answer
        "import torch\n"
        "def softmax(z):\n"
        "    e = torch.exp(z - z.max(dim=-1, keepdim=True).values)\n"
        "    return e / e.sum(dim=-1, keepdim=True)\n"
        "def my_softmax(z, T):\n"
        "    return softmax(z / T)\n",
        namespace,
    )
    assert_passes(check_softmax_with_temperature(namespace["my_softmax"]))
    # The distillation step may, and should, use kdutils' loss: only the loss exercise forbids it.
    assert_passes(check_distillation_step(correct_step))


def in_place_answers():
    """A correct answer for each check that changes a tensor it was given, and that argument's name."""

    def loss(s, y, t, T, alpha):
        t /= T
        soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t, dim=1), reduction="batchmean")
        return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)

    def hint(projected, teacher_features):
        return teacher_features.sub_(projected).pow(2).mean()

    def average(logits_list, T):
        for z in logits_list:
            z /= T
        return torch.stack([F.softmax(z, dim=1) for z in logits_list]).mean(dim=0)

    def reverse(student_logits, teacher_logits):
        teacher_logits -= teacher_logits.logsumexp(dim=-1, keepdim=True)
        log_s = F.log_softmax(student_logits, dim=-1)
        return (log_s.exp() * (log_s - teacher_logits)).sum(dim=-1).mean()

    def ece(probabilities, labels, bins):
        probabilities.clamp_(min=1e-3)
        return ece_with(probabilities, labels, bins)

    def step(student, teacher, optimizer, images, labels, T, alpha):
        images.sub_(0.1307).div_(0.3081)
        correct_step(student, teacher, optimizer, images, labels, T, alpha)

    def epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        order = torch.randperm(len(y), generator=generator)
        x[:], y[:], teacher_logits[:] = x[order], y[order], teacher_logits[order]  # aligned, but the caller's
        for begin in range(0, len(y), batch_size):
            rows = slice(begin, begin + batch_size)
            loss = loss_fn(student(x[rows]), y[rows], teacher_logits[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return [(check_distillation_loss, loss, "'t'"), (check_feature_loss, hint, "'teacher_features'"),
            (check_ensemble_average, average, "'logits_list'"), (check_reverse_kl, reverse, "'teacher_logits'"),
            (check_expected_calibration_error, ece, "'probabilities'"), (check_distillation_step, step, "'images'"),
            (check_epoch_alignment, epoch, "'x'")]


@pytest.mark.parametrize(("check", "answer", "name"), in_place_answers(), ids=lambda v: getattr(v, "__name__", ""))
def test_an_answer_that_changes_a_tensor_it_was_given_is_told_so(check, answer, name):
    assert_diagnoses(check(answer), f"changed the tensor it was given as its argument {name}", "in place")


# --- notebook 01: parameter count ---------------------------------------------------------------------------


def test_parameter_count_bugs_on_frozen_nested_and_tied_models_are_named():
    assert_diagnoses(check_parameter_count(lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)),
                     "frozen layer")
    assert_diagnoses(check_parameter_count(lambda m: sum(p.numel() for c in m.children()
                                                         for p in c.parameters(recurse=False))), "nested")
    assert_diagnoses(check_parameter_count(lambda m: sum(p.numel() for _, p in m.named_parameters(
        remove_duplicate=False))), "tied")


def test_parameter_count_check():
    assert_passes(check_parameter_count(lambda m: sum(p.numel() for p in m.parameters())))
    assert_passes(check_parameter_count(lambda m: np.int64(sum(p.numel() for p in m.parameters()))))
    assert_passes(check_parameter_count(lambda m: torch.tensor(sum(p.numel() for p in m.parameters()))))
    assert_passes(check_parameter_count(lambda m: float(sum(np.prod(p.shape) for p in m.parameters()))))
    weights_only = lambda m: sum(p.numel() for name, p in m.named_parameters() if name.endswith("weight"))  # noqa: E731
    assert_diagnoses(check_parameter_count(weights_only), "not the biases")
    assert_diagnoses(check_parameter_count(lambda m: len(list(m.parameters()))), "not numbers")
    assert_diagnoses(check_parameter_count(lambda m: sum(v.numel() for v in m.state_dict().values())),
                     "state_dict", "buffers")
    linear_only = lambda m: sum(p.numel() for l in m.modules() if isinstance(l, nn.Linear) for p in l.parameters())  # noqa: E731, E741
    assert_diagnoses(check_parameter_count(linear_only), "only the nn.Linear layers")


# --- notebook 02: precision ---------------------------------------------------------------------------------


def test_precision_check():
    assert_passes(check_precision(lambda m: m.diag() / m.sum(dim=0).clamp(min=1)))
    assert_passes(check_precision(lambda m: torch.nan_to_num(m.diag().double() / m.sum(dim=0))))
    assert_passes(check_precision(lambda m: np.nan_to_num(np.diag(m.numpy()) / m.numpy().sum(axis=0))))
    assert_passes(check_precision(lambda m: [float(m[j, j] / max(int(m[:, j].sum()), 1)) for j in range(len(m))]))
    assert_diagnoses(check_precision(lambda m: m.diag() / m.sum(dim=1).clamp(min=1)), "that is recall")
    assert_diagnoses(check_precision(lambda m: 100 * m.diag() / m.sum(dim=0).clamp(min=1)), "percentages")
    assert_diagnoses(check_precision(lambda m: m.diag() / m.sum(dim=0)), "returned NaN for class 2",
                     "never predicted", "0 / 0")
    assert_diagnoses(check_precision(lambda m: m.diag()[:3] / m.sum(dim=0)[:3]), "one precision per class")
    assert_diagnoses(check_precision(lambda m: m.diag() // m.sum(dim=0).clamp(min=1)), "divided integers with //")

    def zeroes_the_matrix(m):
        precision = m.diag() / m.sum(dim=0).clamp(min=1)
        m.fill_diagonal_(0)
        return precision

    assert_diagnoses(check_precision(zeroes_the_matrix), "changed the tensor it was given as its argument 'm'")


# --- notebook 03: softmax with a temperature -----------------------------------------------------------------


def stable_softmax(z, T):
    e = torch.exp(z / T - (z / T).max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


def test_softmax_bugs_beyond_the_formula_are_named():
    def in_place(z, T):
        z /= T
        return stable_softmax(z, 1.0)

    def over_dim_1(z, T):
        e = torch.exp(z / T - (z / T).max(dim=1, keepdim=True).values)
        return e / e.sum(dim=1, keepdim=True)

    def global_max(z, T):
        e = torch.exp(z / T - (z / T).max())
        return e / e.sum(dim=-1, keepdim=True)

    assert_diagnoses(check_softmax_with_temperature(in_place), "its argument 'z' (number 1) in place", "/=")
    assert_diagnoses(check_softmax_with_temperature(over_dim_1), "normalised over dim 1", "dim=-1")
    assert_diagnoses(check_softmax_with_temperature(global_max), "one maximum for the whole tensor is not enough")


def test_a_softmax_that_clamps_the_logits_is_told_so_not_told_it_overflowed():
    def clamped(z, T):
        e = torch.exp((z / T).clamp(-80, 80))
        return e / e.sum(dim=-1, keepdim=True)

    result = check_softmax_with_temperature(clamped)
    assert_diagnoses(result, "clipping or clamping the logits", "Subtract each row's maximum")
    assert "NaN" not in result.message and "overflows" not in result.message


def test_softmax_with_temperature_check():
    assert_passes(check_softmax_with_temperature(stable_softmax))
    assert_passes(check_softmax_with_temperature(lambda z, T: stable_softmax(z.double(), T)))  # float64 is fine
    assert_passes(check_softmax_with_temperature(lambda z, T: stable_softmax(z, T).numpy()))

    def only_large_maxima(z, T):  # guards against overflow only: exp(-990) still underflows to 0
        z = z / T
        e = torch.exp(z - z.max(dim=-1, keepdim=True).values.clamp(min=0))
        return e / e.sum(dim=-1, keepdim=True)

    def unstable(z, T):
        e = torch.exp(z / T)
        return e / e.sum(dim=-1, keepdim=True)

    assert_diagnoses(check_softmax_with_temperature(unstable), "exp(1000) overflows", "maximum")
    assert_diagnoses(check_softmax_with_temperature(only_large_maxima), "[-1000.0, -990.0, -1010.0]", "underflows")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: stable_softmax(z * T * T, T)), "multiplied")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: stable_softmax(z.T, T).T), "dim 0")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: stable_softmax(z, 1.0)), "does not depend on T")
    assert_diagnoses(check_softmax_with_temperature(lambda z, T: torch.exp(z / T)), "do not sum to 1")


# --- notebook 04: the distillation loss ----------------------------------------------------------------------


def correct_loss(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def log_target_loss(s, y, t, T, alpha):  # the same KL, with the teacher's log-probabilities, in float64
    soft = F.kl_div(F.log_softmax(s.double() / T, dim=1), F.log_softmax(t.double() / T, dim=1), log_target=True,
                    reduction="batchmean")
    return alpha * T**2 * soft + (1 - alpha) * F.cross_entropy(s.double(), y)


def soft_cross_entropy_loss(s, y, t, T, alpha):  # the PyTorch tutorial's form: KL + the teacher's entropy
    soft = -(F.softmax(t / T, dim=1) * F.log_softmax(s / T, dim=1)).sum(dim=1).mean()
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def log_of_logits(s, y, t, T, alpha):  # the article's loss
    soft = nn.KLDivLoss()(torch.log(s / T), F.softmax(t / T, dim=1)) * (T * T)
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def mean_reduction(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="mean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def missing_t_squared(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def kl_wrong_direction(s, y, t, T, alpha):  # teacher and student swapped
    soft = F.kl_div(F.log_softmax(t / T, dim=1), F.softmax(s / T, dim=1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def alpha_on_the_other_term(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return (1 - alpha) * T * T * soft + alpha * F.cross_entropy(s, y)


def mean_and_no_t_squared(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="mean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(s, y)


def cross_entropy_with_mean(s, y, t, T, alpha):  # the soft cross-entropy form, averaged over the classes too
    soft = -(F.softmax(t / T, dim=1) * F.log_softmax(s / T, dim=1)).mean()
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def hard_term_at_temperature(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s / T, y)


def defaults_hard_coded(s, y, t, T, alpha):
    return correct_loss(s, y, t, 4.0, 0.9)


def detached(s, y, t, T, alpha):
    return correct_loss(s.detach(), y, t, T, alpha)


def soft_term_detached(s, y, t, T, alpha):
    soft = F.kl_div(F.log_softmax(s.detach() / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def plus_one(s, y, t, T, alpha):
    return correct_loss(s, y, t, T, alpha) + 1.0


def test_correct_losses_pass():
    assert_passes(check_distillation_loss(correct_loss))
    assert_passes(check_distillation_loss(log_target_loss))
    assert_passes(check_distillation_loss(lambda s, y, t, T, alpha: correct_loss(s, y, t, T, alpha).reshape(1)))


def test_the_soft_cross_entropy_passes_and_the_check_says_how_it_differs_from_kl():
    result = check_distillation_loss(soft_cross_entropy_loss)
    assert_passes(result)
    assert "teacher's entropy" in result.message and "same student" in result.message


@pytest.mark.parametrize(
    ("buggy", "phrases"),
    [
        (log_of_logits, ["returned NaN", "not once every logit is made positive", "log of raw logits",
                         "log_softmax"]),
        (mean_reduction, ["10x too small", "reduction='mean'", "batchmean"]),
        (missing_t_squared, ["shrinks like 1/T**2", "multiply the soft term by T**2"]),
        (kl_wrong_direction, ["KL(student || teacher)"]),
        (alpha_on_the_other_term, ["alpha weights the other term"]),
        (mean_and_no_t_squared, ["10x too small", "ALSO", "1/T**2"]),
        (cross_entropy_with_mean, ["10x too small"]),
        (hard_term_at_temperature, ["cross-entropy with the hard labels uses the temperature"]),
        (detached, ["no gradient"]),
        (soft_term_detached, ["right value but the wrong gradient", "detached"]),
        (defaults_hard_coded, ["at T = 2.0, alpha = 0.6"]),
        (plus_one, ["gradient is right but the value is not"]),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_each_classic_loss_bug_gets_its_diagnosis(buggy, phrases):
    assert_diagnoses(check_distillation_loss(buggy), *phrases)


def test_log_probabilities_as_the_kl_target_are_named_among_the_nans_causes():
    def log_target_forgotten(s, y, t, T, alpha):
        soft = F.kl_div(F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1), reduction="batchmean")
        return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)

    assert_diagnoses(check_distillation_loss(log_target_forgotten), "returned NaN", "log_target=True")

    def log_target_said(s, y, t, T, alpha):
        soft = F.kl_div(F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1), reduction="batchmean",
                        log_target=True)
        return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)

    assert_passes(check_distillation_loss(log_target_said))


def test_a_loss_that_is_not_one_number_is_diagnosed():
    def per_example(s, y, t, T, alpha):
        return F.cross_entropy(s, y, reduction="none")

    assert_diagnoses(check_distillation_loss(per_example), "one number for the batch")
    assert_diagnoses(check_distillation_loss(lambda *args: correct_loss(*args).item()), "as a tensor")


# --- notebook 04: one training step ------------------------------------------------------------------------


def correct_step(student, teacher, optimizer, images, labels, T, alpha):
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(images)
    loss = distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def step_with(student, teacher, optimizer, images, labels, T, alpha, *, train_mode=False, teacher_grad=False,
              zero_grad=True, steps=1, loss_T=None, loss_alpha=None, zero_after_backward=False):
    """A distillation step with one realistic bug switched on."""
    if not train_mode:
        teacher.eval()
    with torch.set_grad_enabled(teacher_grad):
        teacher_logits = teacher(images)
    loss = distillation_loss(student(images), labels, teacher_logits, T=loss_T or T,
                             alpha=alpha if loss_alpha is None else loss_alpha)
    if zero_grad and not zero_after_backward:
        optimizer.zero_grad()
    loss.backward()
    if zero_after_backward:
        optimizer.zero_grad()
    for _ in range(steps):
        optimizer.step()


def test_correct_steps_pass():
    assert_passes(check_distillation_step(correct_step))

    def student_zero_grad(student, teacher, optimizer, images, labels, T, alpha):  # same effect as the optimizer's
        teacher.eval()
        with torch.inference_mode():
            teacher_logits = teacher(images).clone()
        student.zero_grad()
        (alpha * T * T * F.kl_div(F.log_softmax(student(images) / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                                  reduction="batchmean")
         + (1 - alpha) * F.cross_entropy(student(images), labels)).backward()
        optimizer.step()

    assert_passes(check_distillation_step(student_zero_grad))

    def frozen_teacher(student, teacher, optimizer, images, labels, T, alpha):  # no graph: nothing to track
        teacher.eval().requires_grad_(False)
        correct_step_body(student, teacher(images), optimizer, images, labels, T, alpha)

    assert_passes(check_distillation_step(frozen_teacher))


def correct_step_body(student, teacher_logits, optimizer, images, labels, T, alpha):
    loss = distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


@pytest.mark.parametrize(
    ("bug", "phrases"),
    [
        (dict(train_mode=True), ["train() mode", "teacher.eval()"]),
        (dict(teacher_grad=True), ["torch.no_grad()"]),
        (dict(zero_grad=False), ["optimizer.zero_grad()"]),
        (dict(steps=0), ["never called optimizer.step()"]),
        (dict(steps=2), ["optimizer.step() 2 times"]),
        (dict(loss_T=4.0, loss_alpha=0.9), ["ignored the T = 2.5 and alpha = 0.6", "defaults"]),
        (dict(loss_alpha=0.9), ["at T = 2.5, alpha = 0.6 the student's new weights differ"]),
        (dict(zero_after_backward=True), ["did not move"]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else "",
)
def test_each_step_bug_gets_its_diagnosis(bug, phrases):
    def buggy(*args):
        return step_with(*args, **bug)

    assert_diagnoses(check_distillation_step(buggy), *phrases)


def test_a_teacher_detached_after_its_forward_pass_is_told_the_graph_was_built():
    def detached(student, teacher, optimizer, images, labels, T, alpha):
        teacher.eval()
        correct_step_body(student, teacher(images).detach(), optimizer, images, labels, T, alpha)

    assert_diagnoses(check_distillation_step(detached), "recorded a graph", "torch.no_grad()", "too late")


def test_a_step_with_an_optimizer_of_its_own_is_caught():
    def own_optimizer(student, teacher, optimizer, images, labels, T, alpha):
        step_with(student, teacher, torch.optim.SGD(student.parameters(), lr=0.01), images, labels, T, alpha)

    assert_diagnoses(check_distillation_step(own_optimizer), "optimizer you were given")


# --- notebook 05: one epoch with cached teacher logits, and the gap closed ------------------------------------


def epoch_with(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn, *, order=None,
               teacher_rows=False, size=None, zero_grad=True, step=True, drop_last=False):
    """An epoch with one realistic bug switched on (``order``: a function of n and the generator)."""
    n = len(y)
    idx_all = order(n, generator) if order else torch.randperm(n, generator=generator)
    size = size or batch_size
    for begin in range(0, n, size):
        idx = idx_all[begin : begin + size]
        if drop_last and len(idx) < size:
            break
        rows = slice(begin, begin + size) if teacher_rows else idx
        loss = loss_fn(student(x[idx]), y[idx], teacher_logits[rows])
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()


def correct_epoch(*args):
    epoch_with(*args)


def test_correct_epochs_pass():
    assert_passes(check_epoch_alignment(correct_epoch))

    def with_a_data_loader(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        data = torch.utils.data.TensorDataset(x, y, teacher_logits)
        for xb, yb, tb in torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator):
            loss = loss_fn(student(xb), yb, tb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    assert_passes(check_epoch_alignment(with_a_data_loader))

    def with_keywords(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        order = torch.randperm(len(y), generator=generator)
        for idx in order.split(batch_size):
            loss = loss_fn(student_logits=student(x[idx]), labels=y[idx], teacher_logits=teacher_logits[idx], T=4.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    assert_passes(check_epoch_alignment(with_keywords))


def test_an_epoch_that_clears_gradients_after_each_step_is_told_the_first_batch_is_late():
    def cleared_after(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        for idx in torch.randperm(len(y), generator=generator).split(batch_size):
            loss_fn(student(x[idx]), y[idx], teacher_logits[idx]).backward()
            optimizer.step()
            optimizer.zero_grad()

    assert_diagnoses(check_epoch_alignment(cleared_after), "left from before the epoch", "one batch too late")


def test_an_epoch_that_lets_any_stale_gradient_through_is_told_it_moved_too_far():
    def half_cleared(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        for number, idx in enumerate(torch.randperm(len(y), generator=generator).split(batch_size)):
            if number % 2:  # every other batch keeps the previous batch's gradient
                optimizer.zero_grad()
            loss_fn(student(x[idx]), y[idx], teacher_logits[idx]).backward()
            optimizer.step()

    assert_diagnoses(check_epoch_alignment(half_cleared), "moved further than", "optimizer.zero_grad() before")


def test_alpha_on_the_wrong_term_is_named_together_with_another_mistake():
    def swapped_alpha_without_t2(s, y, t, T, alpha):
        soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
        return (1 - alpha) * soft + alpha * F.cross_entropy(s, y)

    assert_diagnoses(check_distillation_loss(swapped_alpha_without_t2), "1/T**2", "ALSO", "alpha weights the other")


def test_an_epoch_with_one_optimizer_step_for_all_its_batches_fails():
    def one_step_per_epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        optimizer.zero_grad()
        for idx in torch.randperm(len(y), generator=generator).split(batch_size):
            loss_fn(student(x[idx]), y[idx], teacher_logits[idx]).backward()
        optimizer.step()

    assert_diagnoses(check_epoch_alignment(one_step_per_epoch), "optimizer.step() 1 times in an epoch of 6 batches")


@pytest.mark.parametrize(
    ("bug", "phrases"),
    [
        (dict(teacher_rows=True), ["out of step with the shuffled batch", "teacher_logits[idx]"]),
        (dict(order=lambda n, g: torch.arange(n)), ["does not shuffle"]),
        (dict(order=lambda n, g: torch.randperm(n)), ["same seed gave different orders", "generator=generator"]),
        (dict(order=lambda n, g: torch.randperm(n, generator=torch.Generator().manual_seed(0))),
         ["another seed gave the same order"]),
        (dict(order=lambda n, g: torch.randperm(n, generator=g)[: n // 2]), ["exactly once"]),
        (dict(drop_last=True), ["exactly once"]),
        (dict(size=128), ["batch_size = 8", "[43]"]),
        (dict(step=False), ["did not change", "optimizer.step()"]),
        (dict(zero_grad=False), ["never cleared the gradients"]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else "",
)
def test_each_epoch_bug_gets_its_diagnosis(bug, phrases):
    def buggy(*args):
        return epoch_with(*args, **bug)

    assert_diagnoses(check_epoch_alignment(buggy), *phrases)


def test_gap_closed_check():
    assert_passes(check_gap_closed(lambda s, d, t: (d - s) / (t - s)))
    assert_passes(check_gap_closed(lambda s, d, t: np.float32((d - s) / (t - s))))
    assert_passes(check_gap_closed(lambda s, d, t: torch.tensor((d - s) / (t - s), dtype=torch.float64)))
    assert_passes(check_gap_closed(lambda s, d, t: 1 - (t - d) / (t - s)))
    assert_diagnoses(check_gap_closed(lambda s, d, t: 100 * (d - s) / (t - s)), "not a percentage")
    assert_diagnoses(check_gap_closed(lambda s, d, t: min(max((d - s) / (t - s), 0), 1)), "do not clip",
                     "born-again")
    assert_diagnoses(check_gap_closed(lambda s, d, t: (d - s) / (t - d)), "teacher - scratch")
    assert_diagnoses(check_gap_closed(lambda s, d, t: (s - d) / (t - s)), "sign is reversed")
    assert_diagnoses(check_gap_closed(lambda s, d, t: round((d - s) / (t - s), 2)), "do not round")
    assert_diagnoses(check_gap_closed(lambda s, d, t: (d - s) // (t - s)), "whole number 0", "//")
    assert_diagnoses(check_gap_closed(lambda s, d, t: int((d - s) / (t - s))), "whole number 0", "int()")
    assert_diagnoses(check_gap_closed(lambda s, d, t: (d - s) / abs(t - s)), "error counts", "without abs()")
    assert_diagnoses(check_gap_closed(lambda s, d, t: abs((d - s) / (t - s))), "distillation hurts", "no abs()")
    clipped_below = check_gap_closed(lambda s, d, t: max((d - s) / (t - s), 0.0))  # only the floor clipped
    assert_diagnoses(clipped_below, "do not clip", "lost to its scratch twin, -0.10")
    assert "born-again" not in clipped_below.message


# --- notebook 06: the bias correction --------------------------------------------------------------------


def correct_add_to_bias(model, cls, shift):
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.fc2.bias[cls] += shift
    return shifted


def shift_with(model, cls, shift, *, copy_model=True, every=False, weights=False, set_to=False, cls_=None,
               shift_=None, subtract=False, multiply=False):
    shifted = copy.deepcopy(model) if copy_model else model
    cls, shift = cls if cls_ is None else cls_, shift if shift_ is None else shift_
    with torch.no_grad():
        if every:
            shifted.fc2.bias += shift
        elif weights:
            shifted.fc2.weight[cls] += shift
        elif set_to:
            shifted.fc2.bias[cls] = shift
        elif subtract:
            shifted.fc2.bias[cls] -= shift
        elif multiply:
            shifted.fc2.bias[cls] *= shift
        else:
            shifted.fc2.bias[cls] += shift
    return shifted


def test_add_to_bias_check():
    assert_passes(check_add_to_bias(correct_add_to_bias))

    def via_the_last_linear(model, cls, shift):
        shifted = copy.deepcopy(model)
        last = [m for m in shifted.modules() if isinstance(m, nn.Linear)][-1]
        last.bias.data[cls] = last.bias.data[cls] + np.float32(shift)
        return shifted

    assert_passes(check_add_to_bias(via_the_last_linear))


@pytest.mark.parametrize(
    ("bug", "phrases"),
    [
        (dict(copy_model=False), ["changed the model it was given", "copy.deepcopy"]),
        (dict(every=True), ["every class"]),
        (dict(weights=True), ["not its weights"]),
        (dict(set_to=True), ["you set bias[7] to 2.5", "add shift"]),
        (dict(cls_=7), ["asked for class 0, you shifted class 7"]),
        (dict(shift_=2.5), ["rose by 2.5, not by shift = -1.25"]),
        (dict(subtract=True), ["moved by -2.5, the opposite of shift = 2.5", "do not subtract"]),
        (dict(multiply=True), ["multiplied bias[7] by shift (*=)", "+="]),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, dict) else "",
)
def test_each_bias_bug_gets_its_diagnosis(bug, phrases):
    def buggy(model, cls, shift):
        return shift_with(model, cls, shift, **bug)

    assert_diagnoses(check_add_to_bias(buggy), *phrases)


# --- notebook 07: expected calibration error ---------------------------------------------------------------


def ece_with(probabilities, labels, bins, *, binning="ceil", weighted=True, percent=False, signed=False):
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).float()
    if binning == "ceil":
        which = (confidence * bins).ceil().long().clamp(1, bins) - 1
    elif binning == "floor":
        which = (confidence * bins).floor().long().clamp(max=bins - 1)
    else:  # bucketize: edges[i-1] < x <= edges[i], the same (lo, hi] bins as ceil
        which = torch.bucketize(confidence, torch.linspace(0, 1, bins + 1)[1:-1])
    total, gaps = 0.0, []
    for k in range(bins):
        members = which == k
        if members.any():
            gap = correct[members].mean() - confidence[members].mean()
            gap = gap if signed else gap.abs()
            total += members.float().mean() * gap
            gaps.append(gap)
    result = float(total) if weighted else float(sum(gaps) / len(gaps))
    return 100 * result if percent else result


def test_ece_check():
    assert_passes(check_expected_calibration_error(ece_with))
    assert_passes(check_expected_calibration_error(lambda p, y, bins: ece_with(p, y, bins, binning="bucketize")))
    assert_passes(check_expected_calibration_error(lambda p, y, bins: np.float32(ece_with(p.double(), y, bins))))
    assert_diagnoses(check_expected_calibration_error(lambda p, y, b: ece_with(p, y, b, percent=True)), "percentage")
    assert_diagnoses(check_expected_calibration_error(lambda p, y, b: ece_with(p, y, b, weighted=False)),
                     "weight each bin")
    assert_diagnoses(check_expected_calibration_error(lambda p, y, b: ece_with(p, y, b, binning="floor")),
                     "on a bin edge", "ceil(confidence * bins) - 1")
    assert_diagnoses(check_expected_calibration_error(lambda p, y, b: ece_with(p, y, 1)), "overall accuracy")
    assert_diagnoses(check_expected_calibration_error(lambda p, y, b: ece_with(p, y, b, signed=True)),
                     "absolute value is missing in each bin")
    assert_diagnoses(check_expected_calibration_error(lambda p, y, b: ece_with(p, y, 15)), "used 15 bins when asked")


# --- notebook 08: the hint loss ----------------------------------------------------------------------------


def test_feature_loss_check():
    assert_passes(check_feature_loss(lambda p, t: F.mse_loss(p, t)))
    assert_passes(check_feature_loss(lambda p, t: ((t - p) ** 2).double().mean()))
    assert_passes(check_feature_loss(lambda p, t: ((p - t) ** 2).sum() / p.numel()))
    assert_diagnoses(check_feature_loss(lambda p, t: ((p - t) ** 2).sum()), "take their mean")
    assert_diagnoses(check_feature_loss(lambda p, t: ((p - t) ** 2).sum(dim=1).mean()), "average over both")
    assert_diagnoses(check_feature_loss(lambda p, t: (p - t).abs().mean()), "L1")
    assert_diagnoses(check_feature_loss(lambda p, t: ((p - t) ** 2).mean().sqrt()), "RMSE")
    assert_diagnoses(check_feature_loss(lambda p, t: F.cosine_similarity(p, t, dim=1).mean()), "cosine similarity")
    assert_diagnoses(check_feature_loss(lambda p, t: ((p - t) ** 2).mean().item()), "carries a gradient")
    assert_diagnoses(check_feature_loss(lambda p, t: (p - t.detach()).pow(2).mean() * 0
                                        + ((p.detach() - t) ** 2).mean() + 0 * p.sum()), "gradient is not")


# --- notebook 09: averaging an ensemble ----------------------------------------------------------------------


def test_ensemble_average_check():
    def right(logits, T=1.0):
        return torch.stack([torch.softmax(z / T, dim=1) for z in logits]).mean(dim=0)

    assert_passes(check_ensemble_average(right))
    assert_passes(check_ensemble_average(lambda ls, T: right([z.double() for z in ls], T)))
    assert_passes(check_ensemble_average(lambda ls, T: sum(torch.softmax(z / T, dim=1) for z in ls) / len(ls)))
    cases = [
        (lambda ls, T=1.0: torch.softmax(torch.stack(ls).mean(dim=0) / T, dim=1), "averaged the logits"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z / T, dim=1) for z in ls]).sum(dim=0), "take the mean"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z, dim=1) for z in ls]).mean(dim=0), "no effect"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z * T, dim=1) for z in ls]).mean(dim=0), "multiplied"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z / T, dim=0) for z in ls]).mean(dim=0), "over the examples"),
        (lambda ls, T=1.0: right(ls, T).log(), "log-probabilities"),
        (lambda ls, T=1.0: torch.stack([torch.softmax(z / T, dim=1) for z in ls]), "one distribution per member"),
        (lambda ls, T=1.0: right(ls[:2], T), "differ from the expected ones"),  # forgets members after two
    ]
    for buggy, phrase in cases:
        assert_diagnoses(check_ensemble_average(buggy), phrase)


# --- notebook 10: reverse KL ----------------------------------------------------------------------------------


def reverse(s, t):
    log_s, log_t = F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
    return (log_s.exp() * (log_s - log_t)).sum(dim=-1).mean()


def test_reverse_kl_check():
    assert_passes(check_reverse_kl(reverse))
    assert_passes(check_reverse_kl(lambda s, t: F.kl_div(F.log_softmax(t, dim=-1), F.log_softmax(s, dim=-1),
                                                         reduction="batchmean", log_target=True)))
    assert_passes(check_reverse_kl(lambda s, t: reverse(s.double(), t.double())))
    assert_diagnoses(check_reverse_kl(lambda s, t: reverse(t, s)), "forward KL")
    assert_diagnoses(check_reverse_kl(lambda s, t: reverse(s, t) * len(s)), "summed over the rows")
    assert_diagnoses(check_reverse_kl(lambda s, t: reverse(s, t) / s.shape[1]), "averaged over the vocabulary")
    assert_diagnoses(check_reverse_kl(lambda s, t: (torch.log(s) - torch.log(t)).sum(-1).mean()), "returned NaN",
                     "log_softmax")

    def detached(s, t):
        log_s, log_t = F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1)
        return (log_s.exp().detach() * (log_s - log_t)).sum(dim=-1).mean()

    assert_diagnoses(check_reverse_kl(detached), "do not detach")


def test_an_ece_whose_top_two_bins_are_merged_is_named():
    def merged_top_bins(probabilities, labels, bins):
        confidence, predicted = probabilities.max(dim=1)
        correct = (predicted == labels).double()
        which = ((confidence * bins).ceil().long().clamp(1, bins) - 1).clamp(max=bins - 2)
        total = 0.0
        for k in range(bins):
            members = which == k
            if members.any():
                total += members.double().mean() * (correct[members].mean() - confidence[members].mean()).abs()
        return float(total)

    assert_diagnoses(check_expected_calibration_error(merged_top_bins), "top two bins are one")


def test_a_student_left_in_eval_mode_does_not_pass_the_step_check():
    def both_in_eval(student, teacher, optimizer, images, labels, T, alpha):
        student.eval()  # the mistake: eval() on the model that learns
        correct_step(student, teacher, optimizer, images, labels, T, alpha)

    def student_left_in_eval(student, teacher, optimizer, images, labels, T, alpha):
        correct_step(student, teacher, optimizer, images, labels, T, alpha)
        student.eval()

    assert_diagnoses(check_distillation_step(both_in_eval), "student ran in eval() mode")
    assert_diagnoses(check_distillation_step(student_left_in_eval), "left the student in eval() mode")


def test_quantile_bins_and_a_geometric_mean_of_probabilities_are_named():
    def quantile_ece(probabilities, labels, bins):
        confidence, predicted = probabilities.max(dim=1)
        correct = (predicted == labels).double()
        which = torch.argsort(torch.argsort(confidence)) * bins // len(labels)
        return float(sum((which == k).double().mean() * (correct[which == k].mean() - confidence[which == k].double()
                                                         .mean()).abs() for k in range(bins) if (which == k).any()))

    def geometric(members, T):
        return torch.softmax(torch.stack(members) / T, dim=2).log().mean(dim=0).exp()

    assert_diagnoses(check_expected_calibration_error(quantile_ece), "quantile bins")
    assert_diagnoses(check_ensemble_average(geometric), "geometric mean")


def _epoch_with(before_batches=lambda student: None, reorder=lambda order, y: order):
    def epoch(student, optimizer, x, y, teacher_logits, batch_size, generator, loss_fn):
        before_batches(student)
        order = reorder(torch.randperm(len(y), generator=generator), y)
        for begin in range(0, len(y), batch_size):
            idx = order[begin:begin + batch_size]
            loss = loss_fn(student(x[idx]), y[idx], teacher_logits[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return epoch


def test_the_epoch_check_names_a_student_left_in_eval_mode_and_batches_grouped_by_class():
    from kdutils.exercises import check_epoch_alignment

    assert check_epoch_alignment(_epoch_with()).passed
    assert check_epoch_alignment(_epoch_with(before_batches=lambda s: s.train())).passed
    left_in_eval = check_epoch_alignment(_epoch_with(before_batches=lambda s: s.eval()))
    assert not left_in_eval.passed and "eval() mode" in left_in_eval.message
    grouped = check_epoch_alignment(_epoch_with(reorder=lambda order, y: order[torch.argsort(y[order], stable=True)]))
    assert not grouped.passed and "grouped by class" in grouped.message


def test_the_step_check_names_a_loss_returned_from_after_the_step():
    from kdutils.exercises import check_distillation_step

    def step(student, teacher, optimizer, images, labels, T, alpha, after=False):
        teacher.eval()
        with torch.no_grad():
            teacher_logits = teacher(images)
        loss = losses.distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if after:
            return losses.distillation_loss(student(images), labels, teacher_logits, T=T, alpha=alpha)
        return loss

    assert check_distillation_step(step).passed
    assert check_distillation_step(lambda *args: step(*args).item()).passed  # a number is fine
    late = check_distillation_step(lambda *args: step(*args, after=True))
    assert not late.passed and "after optimizer.step()" in late.message


def test_the_softmax_check_names_half_precision_instead_of_rows_that_do_not_sum_to_one():
    from kdutils.exercises import check_softmax_with_temperature

    def softmax_half(logits, T):
        e = (logits / T - (logits / T).max(dim=-1, keepdim=True).values).exp()
        return (e / e.sum(dim=-1, keepdim=True)).half()

    result = check_softmax_with_temperature(softmax_half)
    assert not result.passed and "float16" in result.message and "sum to 1" not in result.message
