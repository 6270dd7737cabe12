"""kdutils.claims: strict on the reference machine, a notice and no stop anywhere else."""

from __future__ import annotations

import pytest

from kdutils import claims
from kdutils.claims import NOTICE_MARK, claim, is_reference_machine, this_machine


@pytest.fixture
def shown(monkeypatch):
    """What claim displays, captured instead of sent to a notebook."""
    displayed = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: displayed.append((obj, kw)))
    return displayed


def test_a_claim_that_holds_is_silent_everywhere(monkeypatch, shown):
    for strict in ("0", "1"):
        monkeypatch.setenv(claims.REFERENCE_ENV, strict)
        claim(0.899 >= 0.895, "the teacher reaches at least 89.5%", "89.90%")
    assert shown == []


def test_a_false_claim_stops_the_reference_run_with_the_statement_and_the_measurement(monkeypatch, shown):
    monkeypatch.setenv(claims.REFERENCE_ENV, "1")
    with pytest.raises(AssertionError, match=r"The text says the teacher reaches at least 89\.5%.*this run: 89\.31%"):
        claim(0.8931 >= 0.895, "the teacher reaches at least 89.5%", "89.31%")
    assert shown == []


def test_a_false_claim_elsewhere_shows_a_marked_notice_and_goes_on(monkeypatch, shown):
    monkeypatch.setenv(claims.REFERENCE_ENV, "0")
    claim(False, "T = 8 is chosen", "T = 4")
    [(bundle, options)] = shown
    assert options["metadata"] == {NOTICE_MARK: True} and options["raw"] is True
    assert "T = 8 is chosen" in bundle["text/plain"] and "this run: T = 4" in bundle["text/markdown"]
    assert "differs from the text" in bundle["text/markdown"]


def test_a_false_timing_claim_is_a_notice_even_on_the_reference_machine(monkeypatch, shown):
    """A busy CI machine makes calls slower; that is not a wrong lesson."""
    monkeypatch.setenv(claims.REFERENCE_ENV, "1")
    claim(False, "the student is faster", "0.9x", timing=True)
    [(bundle, _)] = shown
    assert "the student is faster" in bundle["text/plain"] and "what else it is doing" in bundle["text/plain"]
    with pytest.raises(AssertionError):
        claim(False, "the student is more accurate", "-0.1 points")


def test_without_ipython_the_notice_is_printed(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_ipython(name, *args, **kwargs):
        if name.startswith("IPython"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setenv(claims.REFERENCE_ENV, "0")
    monkeypatch.setattr(builtins, "__import__", no_ipython)
    claim(False, "the student wins", "-0.2 points")
    assert "differs from the text, which says the student wins (this run: -0.2 points)" in capsys.readouterr().out


@pytest.mark.parametrize("statement", ["", "   ", None])
def test_a_claim_must_say_what_it_checks(statement):
    with pytest.raises(ValueError, match="needs the statement"):
        claim(True, statement)


def test_the_reference_machine_is_recognised_by_its_fingerprint(monkeypatch):
    monkeypatch.delenv(claims.REFERENCE_ENV, raising=False)
    here = this_machine()
    assert set(here) == set(claims.REFERENCE_MACHINE)
    monkeypatch.setattr(claims, "_matches_reference", lambda: this_machine() == dict(here))
    assert is_reference_machine()
    # Values that differ from this machine's, whatever it is (a family 25, model 1 CPU runs AVX2 kernels).
    others = [("cpu_capability", "AVX2" if here["cpu_capability"] != "AVX2" else "AVX512"),
              ("cpu_model", "family 6, model 85" if here["cpu_model"] == "family 25, model 1"
               else "family 25, model 1"),
              ("threads", here["threads"] + 2), ("torch", "2.5.1")]
    for key, other in others:
        monkeypatch.setattr(claims, "_matches_reference", lambda k=key, o=other: this_machine() == {**here, k: o})
        assert not is_reference_machine(), key


def test_another_cpu_capability_is_not_the_reference_machine(monkeypatch):
    """ATEN_CPU_CAPABILITY=avx2, how CI simulates a laptop, changes the fingerprint."""
    import subprocess
    import sys

    code = "from kdutils.claims import this_machine; print(this_machine()['cpu_capability'])"
    env = {**__import__("os").environ, "ATEN_CPU_CAPABILITY": "default"}
    printed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == "DEFAULT"


def test_the_override_must_be_0_or_1(monkeypatch):
    monkeypatch.setenv(claims.REFERENCE_ENV, "yes")
    with pytest.raises(ValueError, match="must be 0 or 1"):
        is_reference_machine()


def test_the_command_line_prints_both_machines(capsys, monkeypatch):
    monkeypatch.setenv(claims.REFERENCE_ENV, "0")
    assert claims.main() == 0
    printed = capsys.readouterr().out
    assert "cpu_capability" in printed and "Not the reference machine" in printed
