"""The verdict line: what every check prints as its last word, and the result it returns.

A check prints ``PASSED: <what was checked>`` or ``NOT YET: <diagnosis>``; a diagnosis that starts
with ``TIMEOUT_MESSAGE`` means the student's function ran out of the check's time (the grader
calls the checks itself and reads the returned ``CheckResult``, never a printed line). ``STUB_MESSAGE`` is
what the student edition's stub raises (``NotImplementedError``): the one error a check lets through, so
that a cell not yet written stops at its stub.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NOT_YET", "PASSED", "STUB_MESSAGE", "STUB_MESSAGE_START", "TIMEOUT_MESSAGE", "CheckResult"]

PASSED = "PASSED"
NOT_YET = "NOT YET"
#: How a time-out diagnosis starts.
TIMEOUT_MESSAGE = "your function did not finish within"
#: How the stub's message starts, and the whole message (``exercise``: the check's name without ``check_``).
STUB_MESSAGE_START = "write this function"
STUB_MESSAGE = (STUB_MESSAGE_START + ", then run the cell. Stuck? hint('{exercise}') gives a first hint, "
                "hint('{exercise}', 2) a stronger one.")


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check: ``passed`` and a message (what was checked, or the diagnosis)."""

    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{PASSED if self.passed else NOT_YET}: {self.message}"

    def __repr__(self) -> str:
        return f"CheckResult(passed={self.passed})"

    def _ipython_display_(self) -> None:
        """Show nothing as a cell's value: the check has printed its verdict already."""
