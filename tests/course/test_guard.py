"""kdutils.course.guard: forgeries in the kernel never turn a wrong function into PASSED.

These run the grader's first and last cells in this process (no kernel: fast); test_grade.py runs them
around real notebooks in a kernel.
"""

import json
import math
import sys

import pytest
import torch

from kdutils.course import guard
from kdutils.course.grade import ROOT, source_hashes


def right(s, d, t):
    return (d - s) / (t - s)


def wrong(s, d, t):
    return 100 * (d - s) / (t - s)


EXERCISE = [{"cell_id": "c1", "exercise": "gap_closed", "function": "gap"}]


@pytest.fixture
def armed(monkeypatch, capsys):
    """The grader's first cell, run here: (holder, digest). Audit hooks stay allowed for the rest of the tests."""
    monkeypatch.setattr(sys, "addaudithook", lambda hook: None)
    holder = "_kdutils_snapshot_test"
    guard.arm(holder)
    printed = capsys.readouterr().out
    yield holder, printed.split()[-1]
    delattr(sys, holder)


def judge(armed, tmp_path, namespace, hashes=None, exercises=EXERCISE):
    holder, expected = armed
    out = tmp_path / "verdicts.json"
    guard.judge(holder, expected, str(ROOT), hashes or source_hashes(), exercises, namespace, str(out))
    return [(row["verdict"], row["message"]) for row in json.loads(out.read_text(encoding="utf-8"))]


def test_the_first_cell_prints_the_snapshots_digest(armed):
    holder, printed = armed
    assert printed == guard.digest(getattr(sys, holder)) and len(printed) == 64


@pytest.mark.parametrize(("function", "verdict"), [(right, "PASSED"), (wrong, "FAILED")])
def test_an_honest_function_gets_the_fresh_checks_verdict(armed, tmp_path, function, verdict):
    [(got, message)] = judge(armed, tmp_path, {"gap": function})
    assert got == verdict, message


def test_a_stub_a_missing_function_and_an_exit_get_their_verdicts(armed, tmp_path):
    def stub(s, d, t):
        raise NotImplementedError("write this function, then run the cell.")

    def exits(s, d, t):
        raise SystemExit(0)

    exercises = [dict(EXERCISE[0], cell_id=str(n), function=name) for n, name in enumerate(["stub", "nope", "exits"])]
    rows = judge(armed, tmp_path, {"stub": stub, "exits": exits}, exercises=exercises)
    assert [verdict for verdict, _ in rows] == ["NOT DONE", "ERROR", "FAILED"]
    assert "defines no function nope" in rows[1][1] and "SystemExit" in rows[2][1]


def test_the_kernels_own_checks_and_harness_are_not_the_ones_that_judge(armed, tmp_path, monkeypatch):
    from kdutils import exercises
    from kdutils.course.checks import evaluation, harness

    monkeypatch.setattr(harness, "close", lambda *args, **kwargs: True)
    monkeypatch.setattr(evaluation, "close", lambda *args, **kwargs: True)
    monkeypatch.setattr(exercises, "check_gap_closed", lambda function: exercises.CheckResult(True, "forged"))
    [(verdict, message)] = judge(armed, tmp_path, {"gap": wrong})
    assert verdict == "FAILED" and "percentage" in message


@pytest.mark.parametrize("attack", ["math.isclose", "torch.allclose", "torch.Tensor.item", "builtins.abs",
                                    "meta_path", "trace"])
def test_a_patch_made_before_the_check_is_tampered(armed, tmp_path, monkeypatch, attack):
    import builtins

    always = lambda *args, **kwargs: True  # noqa: E731
    if attack == "meta_path":
        monkeypatch.setattr(sys, "meta_path", [object(), *sys.meta_path])
    elif attack == "trace":
        monkeypatch.setattr(sys, "gettrace", lambda: always)  # as if a tracer were set
    else:
        owner, name = {"math.isclose": (math, "isclose"), "torch.allclose": (torch, "allclose"),
                       "torch.Tensor.item": (torch.Tensor, "item"), "builtins.abs": (builtins, "abs")}[attack]
        monkeypatch.setattr(owner, name, always)
    [(verdict, _)] = judge(armed, tmp_path, {"gap": wrong})
    assert verdict == "TAMPERED"


def test_swapping_a_python_functions_code_is_tampered(armed, tmp_path, monkeypatch):
    from torch.nn import functional

    monkeypatch.setattr(functional.softmax, "__code__", (lambda input, dim=None: input).__code__)
    [(verdict, _)] = judge(armed, tmp_path, {"gap": wrong})
    assert verdict == "TAMPERED"


def test_a_function_that_patches_while_the_check_runs_is_tampered(armed, tmp_path, monkeypatch):
    original = math.isclose

    def sneaky(s, d, t):
        math.isclose = lambda *args, **kwargs: True
        return 0.0

    try:
        [(verdict, message)] = judge(armed, tmp_path, {"gap": sneaky})
    finally:
        math.isclose = original
    assert verdict == "TAMPERED" and "math.isclose" in message


def test_an_edited_snapshot_or_a_changed_check_file_is_tampered(armed, tmp_path):
    holder, _ = armed
    hashes = dict(source_hashes(), **{"kdutils/course/checks/evaluation.py": "0" * 64})
    assert judge(armed, tmp_path, {"gap": wrong}, hashes=hashes)[0][0] == "TAMPERED"
    getattr(sys, holder)["math.isclose"] = math.isclose  # still the same object, but the snapshot changed...
    getattr(sys, holder)["forged"] = None  # ...by a new entry: its digest is not the one printed
    assert judge(armed, tmp_path, {"gap": wrong}) == [("TAMPERED", "the grader's snapshot was changed or removed by "
                                                                   "the notebook")]


def test_the_grader_refuses_a_second_audit_hook():
    with pytest.raises(RuntimeError, match="does not allow audit hooks"):
        guard._refuse_audit_hooks("sys.addaudithook", ())
    guard._refuse_audit_hooks("open", ())  # any other event goes through
