"""Grade a class's student notebooks: run each in a fresh kernel and write every check's verdict to a CSV.

    python -m kdutils.grade SUBMISSIONS/ [--out verdicts.csv] [--timeout S]

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

import argparse
import csv
import re
import sys
from dataclasses import astuple, dataclass
from pathlib import Path

from .exercises import TIMEOUT_MESSAGE

__all__ = ["Verdict", "grade", "grade_notebook", "submissions", "write_csv"]

CHECK_CALL = re.compile(r"\bcheck_(?P<exercise>\w+)\(")
TIMEOUT_ENAME = "GraderTimeout"  # the error the grader records for a cell it interrupted
FIELDS = ("student", "notebook", "exercise", "verdict", "message")


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
    verdicts = [line for line in printed.splitlines() if line.startswith(("PASSED: ", "NOT YET: "))]
    if not verdicts:
        if cell.get("execution_count") is None:
            return "ERROR", "the cell never ran (the kernel died or was stopped before it)."
        return "ERROR", "the cell printed no verdict: is its check_...(...) call still there?"
    passed, message = verdicts[-1].split(": ", 1)
    if passed == "PASSED":
        return "PASSED", message
    return ("TIMEOUT" if message.startswith(TIMEOUT_MESSAGE) else "FAILED"), message


def grade_notebook(path: Path, timeout: float) -> list[tuple[str, str, str]]:
    """Run one notebook in a fresh kernel: (exercise, verdict, message) for each exercise cell, in order."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    notebook = nbformat.read(path, as_version=4)
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

    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, on_cell_executed=note_timeout,
                            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": f"ran past {timeout:g} s",
                                              "traceback": []},
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdutils.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", type=Path, help="a folder with <student>.ipynb or <student>/*.ipynb")
    parser.add_argument("--out", type=Path, default=Path("verdicts.csv"), help="the CSV to write (verdicts.csv)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds any one cell may run (600)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a folder", file=sys.stderr)
        return 2
    rows = grade(args.submissions, args.timeout)
    write_csv(rows, args.out)
    counts = {verdict: sum(row.verdict == verdict for row in rows)
              for verdict in ("PASSED", "FAILED", "NOT DONE", "ERROR", "TIMEOUT")}
    print(f"wrote {len(rows)} verdict(s) to {args.out}: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
