"""The student edition: each notebook of ``notebooks/`` with its solutions replaced by stubs.

In the instructor edition an auto-checked exercise is a code cell tagged ``solution`` whose answer
sits between two marker lines, and which ends with the exercise's check::

    from kdutils.exercises import check_softmax_with_temperature


    def softmax_with_temperature(logits, T):
        ### BEGIN SOLUTION: a note for the instructor (never copied to the student edition)
        ...
        ### END SOLUTION


    check_softmax_with_temperature(softmax_with_temperature)

The student edition (``notebooks/student/``) keeps every other cell as it is, story, figures and
outputs included. In a solution cell the lines between the markers become a
``raise NotImplementedError(...)`` whose message says how to ask for hints, ``hint("<exercise>")``
and then ``hint("<exercise>", 2)``, the exercise being the check's name without ``check_``;
the stepped hints live in ``kdutils.course.checks.hints.HINTS`` and never spell the answer, and ``hint`` is
added to the cell's import from ``kdutils.exercises``. The outputs are cleared, and the cell is
tagged ``raises-exception`` so nbval expects the stub to raise until the student writes the answer.
Worked answers are left out: markdown cells tagged ``solution``, and in every markdown cell each worked
answer (``kdutils.course.notebooks``: a ``<details>`` block whose ``<summary>`` says "Solution" or
"Answer"); the exercise questions stay.

Like the instructor notebooks, each student notebook is then executed top to bottom in a fresh kernel
(nbclient), so its outputs and execution counts come from a real run. The stubs are left unrun, with no
output, as a student receives them; nbval runs them too and expects them to raise. Each student
notebook records the SHA-256 of the instructor notebook it was made from, so re-executing an
instructor notebook (new outputs, same sources) makes its student edition stale too, and the next
run executes it again; a change of the instructor notebook's prose or metadata alone (its code cells,
their outputs and counts unchanged: ``code_sha256``) rewrites the student notebook and keeps its outputs.
``--check`` compares what the generator decides (cells, sources,
tags, that hash), not the student's own outputs.

    python -m kdutils.course edition            # write and execute the student notebooks that changed
    python -m kdutils.course edition --check    # exit 1 if notebooks/student/ differs from what it would write
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from pathlib import Path

import nbformat

from ..files import atomic_write
from .checks.hints import HINTS
from .checks.verdicts import STUB_MESSAGE
from .notebooks import CHECK_CALL, cell_source, dumps, execute, without_worked_answers
from .points import POINTS

__all__ = ["NOTEBOOKS", "SOLUTION_TAG", "StubError", "differences", "make_student_notebook", "student_edition",
           "write_student_edition"]

SOLUTION_TAG = "solution"
STUB_TAG = "raises-exception"  # nbval: this cell is expected to raise
METADATA_KEY = "kdutils_student_edition"
#: A stub cell's record of its exercise, for the grader: ``{"exercise", "function", "points"}``.
EXERCISE_KEY = "kdutils_exercise"
BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\b")  # any note after it is for the instructor only
END = re.compile(r"^\s*### END SOLUTION\s*$")
#: The instructor notebooks' folder, from the repository root (where the course tools are run).
NOTEBOOKS = Path("notebooks")
BANNER = (
    "> **Student edition.** Generated from [`../{name}`](../{name}) by `python -m kdutils.course edition`: do not "
    "edit it by hand. Cells that start with a function to complete raise `NotImplementedError` until you write it; "
    "the check at the end of the cell then tells you whether it is right, or which mistake it found. Stuck? The "
    "error message says how to ask for a hint, one step at a time."
)
EXERCISES_IMPORT = re.compile(r"^from kdutils\.exercises import (?P<names>[\w ,]+)$", re.M)


class StubError(ValueError):
    """A solution cell whose markers are missing or malformed."""


def _exercise(source: str, where: str) -> str:
    """The exercise a solution cell checks: the name of its ``check_*`` call without ``check_``, one with hints."""
    names = [name for name in CHECK_CALL.findall(source) if name in HINTS]
    if not names:
        raise StubError(f"{where} is tagged {SOLUTION_TAG!r} but calls no check of kdutils.exercises that has hints "
                        "(kdutils.course.checks.hints.HINTS): add the check_<exercise>(...) call, or the exercise's "
                        "hints.")
    return names[-1]


def checked_function(source: str, exercise: str) -> str | None:
    """The name of the function a cell hands to ``check_<exercise>(name)`` at its top level, if it does."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for statement in reversed(tree.body):
        call = statement.value if isinstance(statement, ast.Expr) else None
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == f"check_{exercise}"
                and len(call.args) == 1 and isinstance(call.args[0], ast.Name)):
            return call.args[0].id
    return None


def _exercise_record(source: str, exercise: str, where: str) -> dict:
    """What the grader needs to know about a released exercise cell: its exercise, function and points."""
    function = checked_function(source, exercise)
    if function is None:
        raise StubError(f"{where}: the cell must end with check_{exercise}(<your function's name>), a call of its own "
                        "line, so that the grader knows which function to check.")
    if exercise not in POINTS:
        raise StubError(f"{where}: the exercise {exercise!r} has no points: add it to POINTS in "
                        "kdutils/course/points.py.")
    return {"exercise": exercise, "function": function, "points": POINTS[exercise]}


def _with_hint_import(source: str) -> str:
    """The cell's source with ``hint`` imported from kdutils.exercises too (added to the import there is, if any)."""
    existing = EXERCISES_IMPORT.search(source)
    if existing is None:
        return "from kdutils.exercises import hint\n" + source
    names = [name.strip() for name in existing["names"].split(",")]
    if "hint" in names:
        return source
    return source[: existing.end("names")] + ", hint" + source[existing.end("names"):]


def _stub_source(source: str, where: str) -> str:
    message = STUB_MESSAGE.format(exercise=_exercise(source, where))
    lines, out, inside = source.split("\n"), [], False
    stubs = 0
    for number, line in enumerate(lines, 1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise StubError(f"{where}, line {number}: BEGIN SOLUTION inside another solution block.")
            inside = True
            stubs += 1
            out.append(f"{begin['indent']}raise NotImplementedError({json.dumps(message)})")
        elif END.match(line):
            if not inside:
                raise StubError(f"{where}, line {number}: END SOLUTION without BEGIN SOLUTION.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise StubError(f"{where}: BEGIN SOLUTION is never closed by ### END SOLUTION.")
    if stubs == 0:
        raise StubError(f"{where} is tagged {SOLUTION_TAG!r} but has no '### BEGIN SOLUTION' line.")
    return _with_hint_import("\n".join(out))


def _without_answers(source: str, where: str) -> str:
    """A markdown cell's source without its worked answers."""
    try:
        return without_worked_answers(source)
    except ValueError as error:
        raise StubError(f"{where}: {error}") from None


def code_sha256(notebook: dict) -> str:
    """A hash of what a run of the notebook depends on and shows: its code cells' sources, outputs and counts."""
    code = [(cell_source(c), c.get("outputs", []), c.get("execution_count"))
            for c in notebook["cells"] if c["cell_type"] == "code"]
    return hashlib.sha256(json.dumps(code, sort_keys=True).encode("utf-8")).hexdigest()


def make_student_notebook(notebook: dict, name: str, instructor_sha256: str | None = None) -> dict:
    """The student edition of one notebook (a new dict; ``notebook`` is not changed).

    ``instructor_sha256``, the hash of the instructor notebook's file, is stored in the metadata, with the
    hash of its code cells (``code_sha256``).
    """
    student = copy.deepcopy(notebook)
    if instructor_sha256 is not None:
        student.setdefault("metadata", {})[METADATA_KEY] = {"instructor_sha256": instructor_sha256,
                                                            "code_sha256": code_sha256(notebook)}
    cells = []
    for index, cell in enumerate(student["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        if SOLUTION_TAG not in tags:
            if cell["cell_type"] == "markdown":
                text = _without_answers(cell_source(cell), f"{name}, cell {index}")
                if text != cell_source(cell):
                    if not text.strip():
                        continue  # the cell held nothing but worked answers
                    cell["source"] = text.splitlines(keepends=True)
            cells.append(cell)
            continue
        if cell["cell_type"] == "markdown":
            continue  # a worked answer: not in the student edition
        where = f"{name}, cell {index}"
        source = _stub_source(cell_source(cell), where)
        cell["source"] = source.splitlines(keepends=True)
        cell["metadata"][EXERCISE_KEY] = _exercise_record(source, _exercise(source, where), where)
        cell["outputs"] = []
        cell["execution_count"] = None
        cell["metadata"]["tags"] = [t for t in tags if t != SOLUTION_TAG] + [STUB_TAG]
        cells.append(cell)
    banner = {"cell_type": "markdown", "id": "student-edition", "metadata": {},
              "source": BANNER.format(name=name).splitlines(keepends=True)}
    student["cells"] = [banner, *cells]
    return student


def student_edition(notebooks: Path = NOTEBOOKS) -> dict[str, str]:
    """File name -> content of every student notebook, generated from the instructor notebooks in ``notebooks``."""
    editions = {}
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        raw = path.read_bytes()
        notebook = json.loads(raw.decode("utf-8"))
        editions[path.name] = dumps(make_student_notebook(notebook, path.name, hashlib.sha256(raw).hexdigest()))
    return editions


def _structure(content: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """What the generator decides about a notebook: each cell's type, source and tags, and the hash of
    the instructor notebook it came from (not the outputs of its own run)."""
    try:
        notebook = json.loads(content)
        cells = notebook["cells"]
        origin = json.dumps(notebook.get("metadata", {}).get(METADATA_KEY), sort_keys=True)
    except (ValueError, KeyError, AttributeError):
        return []  # not a notebook (edited by hand, truncated): different from any generated one
    return [("origin", origin, ())] + [(c["cell_type"], cell_source(c), tuple(c.get("metadata", {}).get("tags", [])),
                                        json.dumps(c.get("metadata", {}).get(EXERCISE_KEY), sort_keys=True))
                                       for c in cells]


def _without_records(structure: list) -> list:
    """A structure without the exercise records (points), which change no cell's output."""
    return [entry[:3] for entry in structure]


def _with_records_of(current: str, generated: str) -> str:
    """The notebook ``current`` with the exercise records (points) of ``generated``, cell by cell; outputs kept."""
    notebook, source = json.loads(current), json.loads(generated)
    for cell, new in zip(notebook["cells"], source["cells"]):
        cell.setdefault("metadata", {}).pop(EXERCISE_KEY, None)
        if EXERCISE_KEY in new.get("metadata", {}):
            cell["metadata"][EXERCISE_KEY] = new["metadata"][EXERCISE_KEY]
    return dumps(notebook)


def _origin(content: str) -> dict:
    return json.loads(content).get("metadata", {}).get(METADATA_KEY) or {}


def _code_cells(content: str) -> list:
    return [(cell_source(c), c.get("metadata", {}).get("tags", []))
            for c in json.loads(content)["cells"] if c["cell_type"] == "code"]


def _same_run(current: str, generated: str) -> bool:
    """Whether ``current`` already holds the outputs a run of ``generated`` would give: the same code cells,
    made from an instructor notebook whose code and outputs have not changed (only its prose or metadata may)."""
    try:
        before, after = _origin(current), _origin(generated)
        same_instructor = before.get("instructor_sha256") == after.get("instructor_sha256")
        same_code = before.get("code_sha256") is not None and before.get("code_sha256") == after.get("code_sha256")
        return (same_instructor or same_code) and _code_cells(current) == _code_cells(generated)
    except (ValueError, KeyError, AttributeError, TypeError):
        return False  # not a notebook (edited by hand, truncated): run it again


def _with_outputs_of(current: str, generated: str) -> str:
    """The notebook ``generated`` with the code cells' outputs and counts of ``current``, cell by cell.

    The widget state goes with the outputs: a progress bar's output names a widget model of the run that
    drew it, so the instructor notebook's state would leave the student's bars without their models.
    """
    notebook, kept = json.loads(generated), json.loads(current)
    ran = [c for c in kept["cells"] if c["cell_type"] == "code"]
    for cell, old in zip((c for c in notebook["cells"] if c["cell_type"] == "code"), ran, strict=True):
        cell["outputs"], cell["execution_count"] = old.get("outputs", []), old.get("execution_count")
    metadata = notebook.setdefault("metadata", {})
    metadata.pop("widgets", None)
    if "widgets" in kept.get("metadata", {}):
        metadata["widgets"] = kept["metadata"]["widgets"]
    return dumps(notebook)


def _execute(content: str, folder: Path) -> str:
    """Run a notebook top to bottom in a fresh kernel, all but its stubs.

    A stub stays unrun (no count, no output), as the student receives it: a stored traceback would
    greet them before they have written anything. nbval still runs it and expects it to raise.
    """
    notebook = nbformat.reads(content, as_version=4)
    every_cell = list(notebook.cells)
    notebook.cells = [cell for cell in every_cell if STUB_TAG not in cell.metadata.get("tags", [])]
    execute(notebook, folder)
    notebook.cells = every_cell  # the executed cells are the same objects, now with their outputs
    return dumps(json.loads(nbformat.writes(notebook)))


def write_student_edition(notebooks: Path = NOTEBOOKS, run: bool = True) -> list[Path]:
    """Write (and execute) the student notebooks that changed; remove those whose instructor notebook is gone."""
    folder = notebooks / "student"
    folder.mkdir(exist_ok=True)
    editions = student_edition(notebooks)
    written = []
    for name, content in editions.items():
        path = folder / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current is None or _structure(current) != _structure(content):
            if current is not None and _without_records(_structure(current)) == _without_records(_structure(content)):
                content = _with_records_of(current, content)  # only the points changed: no need to run it again
            elif current is not None and _same_run(current, content):
                content = _with_outputs_of(current, content)  # only prose or metadata changed: the run stands
            elif run:
                content = _execute(content, folder)
            with atomic_write(path) as tmp:  # a reader never sees half a notebook
                tmp.write_text(content, encoding="utf-8")
            written.append(path)
    for stale in folder.glob("*.ipynb"):
        if stale.name not in editions:
            stale.unlink()
            written.append(stale)
    return written


def differences(notebooks: Path = NOTEBOOKS) -> list[str]:
    """Names of the student notebooks that are missing, stale or extra."""
    folder = notebooks / "student"
    editions = student_edition(notebooks)
    problems = [name for name, content in editions.items() if not (folder / name).is_file()
                or _structure((folder / name).read_text(encoding="utf-8")) != _structure(content)]
    problems += [p.name for p in folder.glob("*.ipynb") if p.name not in editions]
    return sorted(problems)
