"""What grading writes: the per-exercise CSV, a gradebook CSV to import, and one feedback file per student.

* ``verdicts.csv``: one row per student, notebook and exercise: ``student, notebook, exercise, verdict,
  message, points, max_points``.
* ``gradebook.csv``: one row per student: ``student_id``, one column per exercise (named like its check
  without ``check_``: the points earned), ``total`` and ``max_total``. Plain UTF-8 CSV with a header row,
  numbers only, no formulas: a learning-management system imports it as it is.
* ``feedback/<student>.md``: each exercise's verdict, points, the check's diagnosis, and the next hint.
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, fields
from pathlib import Path

from ..files import atomic_write
from .checks.hints import HINTS
from .grade import Verdict

__all__ = ["feedback", "gradebook", "write_all"]

#: What a student should do next, for each verdict.
NEXT_STEP = {
    "PASSED": "Nothing to do.",
    "FAILED": "Read the diagnosis, then try the hint.",
    "NOT DONE": "Write the function; the hint gets you started.",
    "ERROR": "Run your notebook top to bottom in a fresh kernel (Kernel > Restart & Run All) and fix the first error.",
    "TIMEOUT": "Your code ran too long: look for a loop that never ends, or far more work than the exercise needs.",
    "EDITED": "Keep the exercise cell and its check call as they were handed out; ask your instructor.",
    "TAMPERED": "Your notebook changed code the checks rely on; ask your instructor.",
}


def _column(row: Verdict) -> str:
    return row.exercise  # each exercise is in one notebook of the series: its name is the column


def _csv_text(header, rows) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


def gradebook(rows: list[Verdict]) -> str:
    """The gradebook CSV: a student per row, the points of each exercise, the total and the maximum."""
    graded = [row for row in rows if row.exercise]
    columns = sorted({_column(row) for row in graded})
    maximum = {_column(row): row.max_points for row in graded}
    table = []
    for student in sorted({row.student for row in rows}):
        earned = {_column(row): row.points for row in graded if row.student == student}
        points = [earned.get(column, 0) for column in columns]
        table.append([student, *points, sum(points), sum(maximum[column] for column in columns)])
    return _csv_text(["student_id", *columns, "total", "max_total"], table)


def feedback(student: str, rows: list[Verdict]) -> str:
    """One student's feedback, in Markdown."""
    mine = [row for row in rows if row.student == student]
    earned, best = sum(row.points for row in mine), sum(row.max_points for row in mine)
    lines = [f"# Feedback for {student}", "", f"**Total: {earned} of {best} points.**", ""]
    for row in mine:
        lines += [f"## {row.notebook}: {row.exercise or '(no exercise)'}", "",
                  f"- Verdict: **{row.verdict}** ({row.points} of {row.max_points} points)",
                  f"- What the check found: {row.message}", f"- Next step: {NEXT_STEP[row.verdict]}"]
        if row.verdict != "PASSED" and row.exercise in HINTS:
            lines.append(f"- Hint: {HINTS[row.exercise][0]} (In the notebook, hint({row.exercise!r}, 2) gives a "
                         "stronger one.)")
        lines.append("")
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_all(rows: list[Verdict], out: Path) -> list[Path]:
    """Write verdicts.csv, gradebook.csv and feedback/<student>.md under ``out``; the paths written."""
    written = [out / "verdicts.csv", out / "gradebook.csv"]
    _write(written[0], _csv_text([field.name for field in fields(Verdict)], map(astuple, rows)))
    _write(written[1], gradebook(rows))
    for student in sorted({row.student for row in rows}):
        written.append(out / "feedback" / f"{student}.md")
        _write(written[-1], feedback(student, rows))
    return written
