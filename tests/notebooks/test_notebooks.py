"""What a committed notebook must look like, checked without running it (nbval re-runs them separately).

- outputs come from one clean top-to-bottom run: execution counts 1, 2, 3, ...;
- no error output and nothing on stderr;
- outputs that vary between runs are marked with nbval's cell tag, not a comment students must read;
- every notebook states what it teaches and its run time, and ends with a summary and exercises;
- the README's results table quotes only numbers that some committed notebook output shows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ..helpers import WIDGET

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENT_NOTEBOOKS = sorted((REPO / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def output_text(notebook: dict) -> str:
    """Everything the committed outputs show as text: printed streams and plain-text results."""
    parts = []
    for cell in code_cells(notebook):
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                parts.append("".join(output["text"]))
            elif "data" in output and "text/plain" in output["data"]:
                parts.append("".join(output["data"]["text/plain"]))
    return "\n".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS + STUDENT_NOTEBOOKS, ids=lambda p: "/".join(p.parts[-2:]))
def test_outputs_come_from_one_clean_run(path):
    cells = code_cells(load(path))
    stubs = [cell for cell in cells if "raises-exception" in cell["metadata"].get("tags", [])]
    for stub in stubs:  # the student edition's exercises, as a student receives them: not yet run
        assert stub["execution_count"] is None and stub["outputs"] == [], f"{path.name}: a stub was stored run"
    run = [cell for cell in cells if cell not in stubs]
    counts = [cell["execution_count"] for cell in run]
    assert counts == list(range(1, len(run) + 1)), f"{path.name}: execution counts {counts}"
    for cell in run:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name}: a cell raised {output.get('ename')}"
            assert output.get("name") != "stderr", f"{path.name}: stderr output: {''.join(output['text'])[:200]}"


@pytest.mark.parametrize("path", NOTEBOOKS + STUDENT_NOTEBOOKS, ids=lambda p: "/".join(p.parts[-2:]))
def test_one_kernel_name_and_no_execution_timestamps(path):
    notebook = load(path)
    assert notebook["metadata"]["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python",
                                                  "name": "python3"}, path.name
    stamped = [i for i, cell in enumerate(notebook["cells"]) if "execution" in cell.get("metadata", {})]
    assert not stamped, f"{path.name}: cells {stamped} keep execution timestamps"


def test_the_tools_that_run_notebooks_record_no_timestamps(tmp_path):
    import nbformat

    from kdutils.course.notebooks import execute

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    execute(notebook, tmp_path, timeout=60)
    assert notebook.cells[0].outputs[0]["text"] == "42\n" and "execution" not in notebook.cells[0].metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_varying_outputs_are_marked_by_tags_not_comments(path):
    for cell in code_cells(load(path)):
        source = "".join(cell["source"])
        assert "NBVAL_IGNORE_OUTPUT" not in source, f"{path.name}: use the cell tag nbval-ignore-output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_says_what_it_teaches_how_long_it_runs_and_ends_with_exercises(path):
    generated = ("kdutils-open-in", "student-edition")  # the links cell and the student edition's banner come first
    markdown = [("".join(c["source"])) for c in load(path)["cells"]
                if c["cell_type"] == "markdown" and c.get("id") not in generated]
    assert "What you will learn" in markdown[0] and re.search(r"Run time", markdown[0]), path.name
    tail = "\n".join(markdown[-3:])
    assert "## Summary" in "\n".join(markdown) and "Exercises" in tail, path.name


# --- the README's results table ------------------------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.])[-+−]?\d[\d,]*(?:\.\d+)?")


def results_table(readme: str) -> list[tuple[str, str]]:
    """The (what, result) rows of the README's "### Results" table."""
    section = readme.split("### Results", 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and not set(cells[1]) <= set("-: ") and cells[0] != "what":
            rows.append((cells[0], cells[1]))
    return rows


def numbers_in(text: str) -> list[str]:
    text = re.sub(r"\(notebooks? [\d, and-]+\)", "", text)  # "(notebook 04)" points to a notebook
    return [m.group().lstrip("+-−") for m in NUMBER.finditer(text)]


def shown_numbers(outputs: str) -> set[str]:
    return {m.group().lstrip("+-−") for m in NUMBER.finditer(outputs)}


def test_numbers_in_the_readme_results_come_from_notebook_outputs():
    rows = results_table((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(rows) >= 5, "the README's results table was not found"
    shown = shown_numbers("\n".join(output_text(load(p)) for p in NOTEBOOKS))
    missing = [(what, n) for what, result in rows for n in numbers_in(result) if n not in shown]
    assert not missing, f"numbers in the README's results that no notebook output shows: {missing}"


def test_the_results_check_catches_a_number_no_output_shows():
    readme = "### Results\n\n| what | result |\n|---|---|\n| teacher | 89.79% and 12.34% (notebook 02) |\n"
    rows = results_table(readme)
    assert rows == [("teacher", "89.79% and 12.34% (notebook 02)")]
    shown = shown_numbers("teacher: test accuracy 89.79%, training accuracy 96.16%")
    assert [n for _, r in rows for n in numbers_in(r) if n not in shown] == ["12.34"]


# --- other machines: tolerances, claims and progress bars ---------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS + STUDENT_NOTEBOOKS, ids=lambda p: "/".join(p.parts[-2:]))
def test_each_notebook_states_valid_tolerances_for_other_machines(path):
    from kdutils.course.tolerance import parse_tolerance, tolerance_for

    notebook = load(path)
    stated = (notebook["metadata"].get("kdutils") or {}).get("tolerance")
    assert parse_tolerance(stated) is not None, f"{path.name}: no notebook-level tolerance in its metadata"
    for cell in code_cells(notebook):
        tolerance_for(cell["metadata"], notebook["metadata"])  # raises on a malformed one


@pytest.mark.parametrize("path", NOTEBOOKS + STUDENT_NOTEBOOKS, ids=lambda p: "/".join(p.parts[-2:]))
def test_saved_progress_bars_read_as_they_ended_where_widgets_do_not_render(path):
    for cell in code_cells(load(path)):
        source = "".join(cell["source"])
        assert "from tqdm" not in source, f"{path.name}: use kdutils.progress.tqdm, whose saved text is not '0%'"
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/plain", "")) if WIDGET in output.get("data", {}) else ""
            assert not text.strip().startswith(("0%", "  0%")) and "|  0%|" not in text and ":   0%|" not in text, (
                f"{path.name}: a stored progress bar reads {text!r}")


@pytest.mark.parametrize("path", NOTEBOOKS + STUDENT_NOTEBOOKS, ids=lambda p: "/".join(p.parts[-2:]))
def test_each_stored_progress_bar_has_its_widget_model_in_the_notebook(path):
    """JupyterLab draws a stored widget from the saved widget state; a model missing there shows an error box."""
    notebook = load(path)
    state = notebook["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {})
    shown = [output["data"][WIDGET]["model_id"] for cell in code_cells(notebook)
             for output in cell.get("outputs", []) if WIDGET in output.get("data", {})]
    missing = [model for model in shown if model not in models]
    assert not missing, f"{path.name}: stored widgets whose models the notebook does not hold: {missing}"
