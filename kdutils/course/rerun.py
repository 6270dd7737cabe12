"""Check that a notebook survives what students do: run a cell twice, do an exercise, run a cell again.

    python -m kdutils.rerun notebooks/02_train_the_teacher.ipynb [more notebooks]

Executes the notebook in a fresh kernel, running every code cell twice in a row, then each worked answer
of its exercises (as :mod:`kdutils.solutions` finds them), then every code cell once more. Each cell's
output after a repeat is compared with the committed one as the notebook tests compare it (exactly on
the reference machine, within the notebook's tolerances elsewhere). A cell that trains a model an earlier
cell built, or an exercise that overwrites a name later cells use, shows up as a difference or an error.
Nothing in the repository changes.
"""

from __future__ import annotations

import argparse
import configparser
import copy
import re
from pathlib import Path

from .claims import is_reference_machine
from .solutions import solution_blocks
from .tolerance import RUN_ONLY, Tolerance, adopt_close_numbers, comparable, tolerance_for

__all__ = ["rerun_problems"]

SANITIZE_FILE = Path(__file__).resolve().parent.parent / "tests" / "nbval_sanitize.cfg"


def _sanitizer():
    patterns = []
    if SANITIZE_FILE.is_file():
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(SANITIZE_FILE, encoding="utf-8")
        patterns = [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]

    def sanitize(text: str) -> str:
        for pattern, replacement in patterns:
            text = pattern.sub(replacement, text)
        return text

    return sanitize


def rerun_problems(path: Path, timeout: int = 900) -> list[str]:
    """What goes wrong when each cell runs twice, and when the notebook runs again after its exercises."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}: give the path of a notebooks/NN_*.ipynb file.")
    committed = nbformat.read(path, as_version=4)
    cells = [cell for cell in committed.cells
             if cell.cell_type == "code" and "raises-exception" not in cell.metadata.get("tags", [])]
    plan = []  # (label, committed cell or None, cell to run)
    for number, cell in enumerate(cells, start=1):
        plan += [(None, None, cell), (f"cell {number} run twice", cell, cell)]
    plan += [(None, None, nbformat.v4.new_code_cell(block.code)) for block in solution_blocks(committed)]
    plan += [(f"cell {number} after the exercises", cell, cell) for number, cell in enumerate(cells, start=1)]

    notebook = nbformat.v4.new_notebook(metadata=committed.metadata)
    notebook.cells = [copy.deepcopy(cell) for _, _, cell in plan]
    for cell in notebook.cells:
        cell.outputs, cell.execution_count = [], None
    client = NotebookClient(notebook, timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()

    sanitize, strict, problems = _sanitizer(), is_reference_machine(), []
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdutils.rerun", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks to check")
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        problems = rerun_problems(path)
        print(f"{path.name}: " + ("survives repeated cells and its exercises" if not problems else
                                  f"{len(problems)} problem(s)"))
        for problem in problems:
            print(f"  - {problem}")
        status |= bool(problems)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
