"""Grade a class's student notebooks: run each in a fresh kernel and write every check's verdict to a CSV.

    python -m kdutils.course grade SUBMISSIONS/ [--out verdicts.csv] [--timeout S]

``SUBMISSIONS/`` holds one entry per student: a notebook ``<student>.ipynb``, or a folder
``<student>/`` with the student's notebooks. Each notebook runs top to bottom in a fresh kernel
(nbclient, the ``python3`` kernel of the environment the grader runs in), every cell at most
``--timeout`` seconds; a cell that runs longer is interrupted and the rest of the notebook still runs.
The submitted files are not changed.

An exercise is a code cell that calls a check, ``check_<exercise>(...)``; its verdict comes from what
the cell did in that run:

=========  ==================================================================================
PASSED     the check printed ``PASSED: ...``
FAILED     the check printed ``NOT YET: <diagnosis>`` (the diagnosis is the message)
NOT DONE   the cell still raises the stub's ``NotImplementedError``
ERROR      the cell raised something else, printed no verdict, or never ran (the kernel died)
TIMEOUT    the cell ran past ``--timeout``, or the student's function past the check's own time limit
=========  ==================================================================================

The CSV has one row per student, notebook and exercise: ``student, notebook, exercise, verdict, message``.
The verdicts are what the checks printed in a fresh run of the submitted code: they show what each
student's functions do, not that nobody tampered with the notebook.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass
from pathlib import Path

from nbclient.exceptions import DeadKernelError

from .checks.verdicts import PASSED, TIMEOUT_MESSAGE, read_verdict
from .notebooks import CHECK_CALL, execute, read

__all__ = ["VERDICTS", "Verdict", "grade", "grade_notebook", "submissions", "write_csv"]

TIMEOUT_ENAME = "GraderTimeout"  # the error the grader records for a cell it interrupted
FIELDS = ("student", "notebook", "exercise", "verdict", "message")
#: Every verdict a row can give, in the order the summary counts them.
VERDICTS = ("PASSED", "FAILED", "NOT DONE", "ERROR", "TIMEOUT")


@dataclass(frozen=True)
class Verdict:
    """One row of the CSV."""

    student: str
    notebook: str
    exercise: str
    verdict: str  # PASSED, FAILED, NOT DONE, ERROR or TIMEOUT
    message: str


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, notebook) pairs: ``folder/<student>.ipynb`` and ``folder/<student>/*.ipynb``, sorted."""
    found = [(path.stem, path) for path in folder.glob("*.ipynb")]
    found += [(path.parent.name, path) for path in folder.glob("*/*.ipynb") if ".ipynb_checkpoints" not in path.parts]
    return sorted(found)


def _verdict_of(cell, timed_out: bool) -> tuple[str, str]:
    """What one executed exercise cell says: (verdict, message)."""
    if timed_out:
        return "TIMEOUT", "the cell ran past the grader's time limit and was interrupted."
    errors = [output for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    if errors:
        name, value = errors[-1].get("ename", ""), errors[-1].get("evalue", "")
        if name == "NotImplementedError":
            return "NOT DONE", "the function is still the stub (NotImplementedError)."
        return "ERROR", f"{name}: {value}"
    printed = "".join(output.get("text", "") for output in cell.get("outputs", [])
                      if output.get("output_type") == "stream" and output.get("name") == "stdout")
    verdicts = [verdict for verdict in map(read_verdict, printed.splitlines()) if verdict is not None]
    if not verdicts:
        if cell.get("execution_count") is None:
            return "ERROR", "the cell never ran (the kernel died or was stopped before it)."
        return "ERROR", "the cell printed no verdict: is its check_...(...) call still there?"
    last = verdicts[-1]
    if last.passed:
        return PASSED, last.message
    return ("TIMEOUT" if last.message.startswith(TIMEOUT_MESSAGE) else "FAILED"), last.message


def grade_notebook(path: Path, timeout: float) -> list[tuple[str, str, str]]:
    """Run one notebook in a fresh kernel: (exercise, verdict, message) for each exercise cell, in order."""
    notebook = read(path)
    exercises = [(index, CHECK_CALL.findall(cell.source)[-1]) for index, cell in enumerate(notebook.cells)
                 if cell.cell_type == "code" and CHECK_CALL.search(cell.source)]
    if not exercises:
        return []
    for cell in notebook.cells:  # what the student's run left behind is not evidence
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    timed_out: set[int] = set()

    def note_timeout(cell, cell_index, execute_reply):
        if execute_reply["content"].get("ename") == TIMEOUT_ENAME:
            timed_out.add(cell_index)

    try:
        execute(notebook, path.parent, timeout=timeout, kernel_name="python3", allow_errors=True,
                interrupt_on_timeout=True, on_cell_executed=note_timeout,
                error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": f"ran past {timeout:g} s", "traceback": []})
    except DeadKernelError:
        pass  # the cells that never ran say so below
    return [(exercise, *_verdict_of(notebook.cells[index], index in timed_out)) for index, exercise in exercises]


def grade(folder: Path, timeout: float = 600.0) -> list[Verdict]:
    """Every verdict of every student's notebooks in ``folder``."""
    rows = []
    for student, path in submissions(folder):
        try:
            results = grade_notebook(path, timeout)
        except Exception as error:  # an unreadable file, a kernel that does not start: that notebook's row says so
            results = [("", "ERROR", f"the notebook could not be run: {type(error).__name__}: {error}")]
        if not results:
            results = [("", "ERROR", "no checked exercise (no check_...(...) call) in this notebook.")]
        rows += [Verdict(student, path.name, *result) for result in results]
    return rows


def write_csv(rows: list[Verdict], out: Path) -> None:
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(FIELDS)
        writer.writerows(astuple(row) for row in rows)
