"""Check that a notebook survives what students do: run a cell twice, do an exercise, run a cell again.

    python -m kdutils.course rerun notebooks/02_train_the_teacher.ipynb [more notebooks]

Executes the notebook in a fresh kernel, running every code cell twice in a row, then each worked answer
of its exercises (``kdutils.course.notebooks.worked_answers``), then every code cell once more. Each cell's
output after a repeat is compared with the committed one as the notebook tests compare it (exactly on
the reference machine, within the notebook's tolerances elsewhere). A cell that trains a model an earlier
cell built, or an exercise that overwrites a name later cells use, shows up as a difference or an error.
Nothing in the repository changes.
"""

from __future__ import annotations

import configparser
import copy
import re
from pathlib import Path

import nbformat

from .claims import is_reference_machine
from .notebooks import execute, read, worked_answers
from .tolerance import RUN_ONLY, Tolerance, adopt_close_numbers, comparable, tolerance_for

__all__ = ["SANITIZE_FILE", "rerun_problems", "sanitizer"]

#: The patterns nbval replaces before it compares (pytest's addopts name the same file): timings, addresses.
SANITIZE_FILE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"


def sanitizer(path: Path = SANITIZE_FILE):
    """A function that applies the replacements of nbval's sanitize file at ``path`` to a text."""
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path, encoding="utf-8"):
        raise FileNotFoundError(f"no sanitize file at {path}: reinstall kdutils (it ships as package data).")
    patterns = [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]

    def sanitize(text: str) -> str:
        for pattern, replacement in patterns:
            text = pattern.sub(replacement, text)
        return text

    return sanitize


def rerun_problems(path: Path, timeout: int = 900) -> list[str]:
    """What goes wrong when each cell runs twice, and when the notebook runs again after its exercises."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}: give the path of a notebooks/NN_*.ipynb file.")
    committed = read(path)
    cells = [cell for cell in committed.cells
             if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", [])]
    plan = []  # (label, committed cell or None, cell to run)
    for number, cell in enumerate(cells, start=1):
        plan += [(None, None, cell), (f"cell {number} run twice", cell, cell)]
    plan += [(None, None, nbformat.v4.new_code_cell(block.code)) for block in worked_answers(committed)]
    plan += [(f"cell {number} after the exercises", cell, cell) for number, cell in enumerate(cells, start=1)]

    notebook = nbformat.v4.new_notebook(metadata=committed.metadata)
    notebook.cells = [copy.deepcopy(cell) for _, _, cell in plan]
    for cell in notebook.cells:
        cell.outputs, cell.execution_count = [], None
    execute(notebook, path.parent, timeout=timeout, allow_errors=True)

    sanitize, strict, problems = sanitizer(), is_reference_machine(), []
    for (label, stored, _), ran in zip(plan, notebook.cells):
        errors = [o for o in ran.outputs if o.output_type == "error"]
        if errors:
            problems.append(f"{label or 'a first run'}: {errors[0].ename}: {errors[0].evalue}")
            continue
        if label is None or "nbval-ignore-output" in stored.metadata.get("tags", []):
            continue
        tolerance = Tolerance() if strict else tolerance_for(stored.metadata, committed.metadata)
        if tolerance == RUN_ONLY:
            continue
        new, old = comparable(copy.deepcopy(ran.outputs)), comparable(stored.outputs)
        if len(new) != len(old):
            problems.append(f"{label}: {len(new)} outputs instead of {len(old)}")
            continue
        problems += [f"{label}: {reason}" for reason in adopt_close_numbers(new, old, tolerance, sanitize)]
    return problems
