"""Grade a class: the grader runs each submission, calls every check itself, and writes grades and feedback.

    python -m kdutils.course grade SUBMISSIONS/ [--release notebooks/student] [--out grades/]

``SUBMISSIONS/`` holds one entry per student: a notebook ``<student>.ipynb``, or a folder ``<student>/``
with the student's notebooks. ``--release`` is the student edition as it was handed out: its exercise
cells (found by cell id) record each exercise's check, function and points (``kdutils_exercise``).

Each submission runs in a process of its own (``kdutils.course.sandbox``), with a time and a memory
limit, between the grader's own first and last cells (``kdutils.course.guard``). The verdict comes from
the check the grader's last cell calls on the student's function, never from what the notebook printed:

=========  ==================================================================================
PASSED     the grader's check passed the function
FAILED     it did not (the message is the check's diagnosis)
NOT DONE   the function is still the stub (its own ``NotImplementedError``)
ERROR      the function is missing or the check could not run it; the kernel died or exited
TIMEOUT    the function ran past the check's time limit, or the notebook past the grader's
EDITED     the released exercise cell was removed, its check call changed or removed, or a check
           redefined: no points; the message says what changed and what the grader's check found
TAMPERED   the notebook replaced something the checks rely on (torch, kdutils, builtins, hooks)
=========  ==================================================================================

Only PASSED earns the exercise's points. ``kdutils.course.gradebook`` writes the CSVs and the feedback.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .edition import EXERCISE_KEY
from .notebooks import cell_source, read
from .sandbox import run_submission

__all__ = ["VERDICTS", "Verdict", "edits", "grade", "released", "source_hashes", "submissions"]

#: Every verdict a row can give, in the order the summary counts them.
VERDICTS = ("PASSED", "FAILED", "NOT DONE", "ERROR", "TIMEOUT", "EDITED", "TAMPERED")
ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the kdutils package


@dataclass(frozen=True)
class Verdict:
    """One row of the per-exercise CSV."""

    student: str
    notebook: str
    exercise: str
    verdict: str
    message: str
    points: int  # earned
    max_points: int


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, notebook) pairs: ``folder/<student>.ipynb`` and ``folder/<student>/*.ipynb``, sorted."""
    found = [(path.stem, path) for path in folder.glob("*.ipynb")]
    found += [(path.parent.name, path) for path in folder.glob("*/*.ipynb") if ".ipynb_checkpoints" not in path.parts]
    return sorted(found)


def released(folder: Path) -> dict[str, list[dict]]:
    """Notebook name -> its exercises as handed out: cell id, source, exercise, function and points."""
    release = {}
    for path in sorted(folder.glob("*.ipynb")):
        exercises = [{"cell_id": cell.get("id"), "source": cell_source(cell), **cell.metadata[EXERCISE_KEY]}
                     for cell in read(path).cells if EXERCISE_KEY in cell.get("metadata", {})]
        if exercises:
            release[path.name] = exercises
    if not release:
        raise ValueError(f"{folder} holds no released exercise (no cell with {EXERCISE_KEY!r} metadata): give "
                         "--release the student edition's folder, written by `python -m kdutils.course edition`.")
    return release


def source_hashes(root: Path = ROOT) -> dict[str, str]:
    """SHA-256 of every kdutils source file, measured before any submission runs."""
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((root / "kdutils").rglob("*.py"))}


def _statements(source: str) -> list[str] | None:
    try:
        return [ast.dump(statement) for statement in ast.parse(source).body]
    except SyntaxError:
        return None


def _redefined_checks(source: str) -> list[str]:
    """The ``check_*`` names a cell binds other than by importing them from kdutils.exercises."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.append(node.id)
        elif isinstance(node, ast.alias) and (node.asname or "").startswith("check_"):
            names.append(node.asname)
        elif isinstance(node, ast.ImportFrom) and node.module != "kdutils.exercises":
            names += [alias.name for alias in node.names if alias.asname is None]
    return sorted({name for name in names if name.startswith("check_")})


def edits(notebook: nbformat.NotebookNode, exercises: list[dict]) -> dict[str, str]:
    """Cell id -> what changed that matters, for each released exercise cell changed that way."""
    cells = {cell.get("id"): cell_source(cell) for cell in notebook.cells if cell.cell_type == "code"}
    redefined = sorted({name for source in cells.values() for name in _redefined_checks(source)})
    found = {}
    for exercise in exercises:
        call = f"check_{exercise['exercise']}({exercise['function']})"
        if exercise["cell_id"] not in cells:
            found[exercise["cell_id"]] = "the exercise cell was removed (or replaced by another cell)."
        elif (_statements(call)[0] not in (_statements(cells[exercise["cell_id"]]) or [])):
            found[exercise["cell_id"]] = f"the cell's check call, {call}, was changed or removed."
        elif redefined:
            found[exercise["cell_id"]] = f"the notebook redefines {', '.join(redefined)}."
    return found


def _release_of(name: str, notebook: nbformat.NotebookNode, release: dict[str, list[dict]]) -> str | None:
    """The released notebook a submission is: by its name, else by the exercise cells it shares."""
    if name in release:
        return name
    ids = {cell.get("id") for cell in notebook.cells}
    shared = {key: sum(e["cell_id"] in ids for e in exercises) for key, exercises in release.items()}
    best = max(shared, key=shared.get)
    return best if shared[best] else None


def _rows_of(student: str, path: Path, release: dict[str, list[dict]], hashes: dict[str, str],
             limits: dict) -> list[Verdict]:
    try:
        notebook = read(path)
    except Exception as error:  # an unreadable file: that notebook's row says so  # noqa: BLE001
        return [Verdict(student, path.name, "", "ERROR", f"the notebook could not be read: {error}", 0, 0)]
    name = _release_of(path.name, notebook, release)
    if name is None:
        return [Verdict(student, path.name, "", "ERROR", "no released exercise in this notebook (neither its name "
                        "nor its cells match a notebook of the release).", 0, 0)]
    exercises = release[name]
    changed = edits(notebook, exercises)
    judged = [{key: e[key] for key in ("cell_id", "exercise", "function")} for e in exercises]
    results, why = run_submission(path, judged, ROOT, hashes, **limits)
    by_cell = {row["cell_id"]: row for row in results or []}
    rows = []
    for exercise in exercises:
        result = by_cell.get(exercise["cell_id"], {"verdict": "TIMEOUT" if "time limit" in why else "ERROR",
                                                    "message": why or "the grader's last cell gave no verdict."})
        verdict, message = result["verdict"], result["message"]
        if exercise["cell_id"] in changed and verdict != "TAMPERED":
            verdict, message = "EDITED", f"{changed[exercise['cell_id']]} The grader's check: {verdict}: {message}"
        points = exercise["points"] if verdict == "PASSED" else 0
        rows.append(Verdict(student, path.name, exercise["exercise"], verdict, message, points, exercise["points"]))
    return rows


def grade(folder: Path, release: Path, *, cell_timeout: float = 600.0, total_timeout: float = 1800.0,
          memory_mb: int | None = 8192) -> list[Verdict]:
    """Every exercise's verdict for every student's notebooks in ``folder``."""
    exercises = released(release)
    hashes = source_hashes()
    limits = {"cell_timeout": cell_timeout, "total_timeout": total_timeout, "memory_mb": memory_mb}
    rows = []
    for student, path in submissions(folder):
        rows += _rows_of(student, path, exercises, hashes, limits)
        if source_hashes() != hashes:
            raise RuntimeError(f"grading {path} changed kdutils' own files: restore them (git checkout kdutils) and "
                               "grade again, in a copy of the environment the students cannot write to.")
    return rows
