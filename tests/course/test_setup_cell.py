"""The set-up cell and the open-in links (kdutils.course.setup_cell): made right, placed right, never touching
other cells, a no-op where kdutils is installed, a pip install where it is not (the real install: test_setup_venv)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kdutils
from kdutils.course import setup_cell
from kdutils.course.setup_cell import (
    LINKS_CELL_ID,
    SETUP_CELL_ID,
    SetupCellError,
    apply,
    problems,
    readme_table,
    repository_url,
    setup_source,
)

REPO = Path(__file__).resolve().parents[2]
URL = "https://github.com/example-org/kd-series"
NOTEBOOK = "notebooks/04_distill_the_student.ipynb"

# Runs a cell's code with every process start recorded and blocked, and prints what was attempted.
RECORD_PROCESSES = """
import json, sys
calls = []
def refuse_processes(event, args):
    if event == "subprocess.Popen":
        calls.append([str(a) for a in args[1]])
        raise RuntimeError("the test blocked a process")
sys.addaudithook(refuse_processes)
try:
    exec(compile(sys.stdin.read(), "<set-up cell>", "exec"), {"__name__": "__main__"})
    outcome = "ran"
except RuntimeError as error:
    outcome = str(error)
print(json.dumps({"calls": calls, "outcome": outcome}))
"""


def load(path: str | Path) -> dict:
    return json.loads((REPO / path).read_text(encoding="utf-8"))


def serialise(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def bare(path: str | Path = NOTEBOOK) -> dict:
    """The committed notebook without its links and set-up cells, as it was before they were applied."""
    notebook = load(path)
    notebook["cells"] = [cell for cell in notebook["cells"] if cell.get("id") not in (LINKS_CELL_ID, SETUP_CELL_ID)]
    return notebook


def run_cell(source: str, **env: str) -> dict:
    import os

    result = subprocess.run([sys.executable, "-c", RECORD_PROCESSES], input=source, capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_cell_is_a_no_op_where_kdutils_is_installed_at_its_version():
    recorded = run_cell(setup_source(URL, kdutils.__version__))
    assert recorded == {"calls": [], "outcome": "ran"}


def test_the_cell_installs_kdutils_with_its_extra_where_the_version_differs():
    recorded = run_cell(setup_source(URL, "0.0.1"))
    assert recorded["outcome"] == "the test blocked a process"
    (command,) = recorded["calls"]
    assert command[1:] == ["-m", "pip", "install", "--quiet", f"kdutils[notebooks] @ git+{URL}@v0.0.1"]


def test_the_install_source_can_be_replaced_for_tests_and_mirrors():
    recorded = run_cell(setup_source(URL, "0.0.1"), KDUTILS_INSTALL_FROM="file:///wheels/kdutils-0.0.1-py3-none-any.whl")
    assert recorded["calls"][0][-1] == "kdutils[notebooks] @ file:///wheels/kdutils-0.0.1-py3-none-any.whl"


def test_apply_puts_the_links_first_and_the_set_up_cell_before_the_first_code_cell():
    original = bare()
    result = apply(original, NOTEBOOK, URL, "1.2.3")
    assert result["cells"][0]["id"] == LINKS_CELL_ID
    code = [cell for cell in result["cells"] if cell["cell_type"] == "code"]
    assert code[0]["id"] == SETUP_CELL_ID and code[0]["outputs"] == [] and code[0]["execution_count"] is None
    links = "".join(result["cells"][0]["source"])
    assert f"https://colab.research.google.com/github/example-org/kd-series/blob/v1.2.3/{NOTEBOOK}" in links
    assert "https://mybinder.org/v2/gh/example-org/kd-series/v1.2.3?labpath=notebooks%2F04_distill_the_student.ipynb" \
        in links
    assert '"1.2.3"' in "".join(code[0]["source"]) and original == bare()  # the input is not changed


def test_apply_changes_no_other_cell_nor_the_notebooks_metadata():
    original = bare()
    result = apply(original, NOTEBOOK, URL, "1.2.3")
    others = [cell for cell in result["cells"] if cell["id"] not in (LINKS_CELL_ID, SETUP_CELL_ID)]
    assert others == original["cells"]  # sources, outputs, execution counts and metadata, in order
    assert result["metadata"] == original["metadata"]


def test_apply_refreshes_in_place_keeps_the_cells_outputs_and_is_idempotent():
    once = apply(bare(), NOTEBOOK, URL, "1.2.3")
    setup = next(cell for cell in once["cells"] if cell["id"] == SETUP_CELL_ID)
    setup["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["kept\n"]}]
    again = apply(once, NOTEBOOK, URL, "1.3.0")
    assert [cell["id"] for cell in again["cells"]] == [cell["id"] for cell in once["cells"]]
    refreshed = next(cell for cell in again["cells"] if cell["id"] == SETUP_CELL_ID)
    assert '"1.3.0"' in "".join(refreshed["source"]) and refreshed["outputs"] == setup["outputs"]
    assert apply(again, NOTEBOOK, URL, "1.3.0") == again


def test_apply_moves_a_misplaced_cell_back():
    notebook = apply(bare(), NOTEBOOK, URL, "1.2.3")
    cells = notebook["cells"]
    setup = cells.pop(next(i for i, cell in enumerate(cells) if cell["id"] == SETUP_CELL_ID))
    cells.append(setup)
    assert problems(notebook, NOTEBOOK, URL, "1.2.3") == [f"{NOTEBOOK}: the set-up cell 'kdutils-setup' is not the "
                                                          "first code cell"]
    assert problems(apply(notebook, NOTEBOOK, URL, "1.2.3"), NOTEBOOK, URL, "1.2.3") == []


def test_problems_name_missing_stale_and_duplicated_cells():
    stripped = bare()
    assert problems(stripped, NOTEBOOK, URL, "1.2.3") == [f"{NOTEBOOK}: no cell with id 'kdutils-open-in'",
                                                      f"{NOTEBOOK}: no cell with id 'kdutils-setup'"]
    current = apply(stripped, NOTEBOOK, URL, "1.2.3")
    assert problems(current, NOTEBOOK, URL, "1.2.3") == []
    stale = problems(current, NOTEBOOK, URL, "2.0.0")
    assert len(stale) == 2 and all("is not the one kdutils 2.0.0" in p for p in stale)
    assert problems(current, NOTEBOOK, "https://github.com/other/fork", "1.2.3")  # another repository
    current["cells"].append(current["cells"][0])
    assert problems(current, NOTEBOOK, URL, "1.2.3") == [f"{NOTEBOOK}: more than one cell with id 'kdutils-open-in'"]


def test_the_student_editions_banner_stays_above_the_links():
    path = "notebooks/student/04_distill_the_student.ipynb"
    student = apply(load(path), path, URL, "1.2.3")
    assert [cell["id"] for cell in student["cells"][:2]] == ["student-edition", LINKS_CELL_ID]
    assert "blob/v1.2.3/notebooks/student/04_distill_the_student.ipynb" in "".join(student["cells"][1]["source"])
    assert problems(student, path, URL, "1.2.3") == [] and apply(student, path, URL, "1.2.3") == student


def test_the_command_line_applies_to_copies_byte_for_byte_outside_the_two_cells(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(setup_cell, "repository_url", lambda: URL)
    copies = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", copies, ignore=shutil.ignore_patterns("student"))
    paths = sorted(copies.glob("*.ipynb"))
    for path in paths:  # the notebooks as they were before the two cells were applied
        path.write_text(serialise(bare(path)), encoding="utf-8")
    stripped = {path: path.read_text(encoding="utf-8") for path in paths}
    assert setup_cell.main(["check", "--root", str(tmp_path), *map(str, paths)]) == 1
    assert setup_cell.main(["apply", "--root", str(tmp_path), *map(str, paths)]) == 0
    assert setup_cell.main(["check", "--root", str(tmp_path), *map(str, paths)]) == 0
    for path in paths:
        written = json.loads(path.read_text(encoding="utf-8"))
        written["cells"] = [c for c in written["cells"] if c["id"] not in (LINKS_CELL_ID, SETUP_CELL_ID)]
        assert serialise(written) == stripped[path], path.name
    before = {path: path.read_bytes() for path in paths}
    assert setup_cell.main(["apply", "--root", str(tmp_path), *map(str, paths)]) == 0  # nothing to do
    assert all(path.read_bytes() == content for path, content in before.items())
    assert "is not inside" in _error_of(["apply", str(REPO / NOTEBOOK)], capsys, root=tmp_path)


def _error_of(argv: list[str], capsys, root: Path) -> str:
    assert setup_cell.main([argv[0], "--root", str(root), *argv[1:]]) == 2
    return capsys.readouterr().err


def test_the_repository_url_comes_from_pyproject_and_must_be_on_github(tmp_path):
    assert repository_url().startswith("https://github.com/")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project.urls]\nRepository = "https://gitlab.com/a/b"\n', encoding="utf-8")
    with pytest.raises(SetupCellError, match="must look like https://github.com/OWNER/NAME"):
        repository_url(pyproject)
    pyproject.write_text('[project]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(SetupCellError, match=r"cannot read \[project.urls\] Repository"):
        repository_url(pyproject)


def test_the_readme_table_is_current_and_lists_every_notebook():
    assert setup_cell.main(["readme", "--check"]) == 0
    table = readme_table(URL, "1.2.3", ["notebooks/01_a.ipynb", "notebooks/02_b.ipynb"])
    rows = [line for line in table.splitlines() if line.startswith("| 0")]
    assert [row.split(" | ")[0] for row in rows] == ["| 01_a", "| 02_b"]
    assert "blob/v1.2.3/notebooks/02_b.ipynb" in rows[1]


def test_a_stale_readme_table_fails_the_check(tmp_path, monkeypatch):
    monkeypatch.setattr(setup_cell, "REPO", tmp_path)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_a.ipynb").write_text("{}", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{setup_cell.README_BEGIN}\nold\n{setup_cell.README_END}\nrest\n", encoding="utf-8")
    assert setup_cell.main(["readme", "--check"]) == 1
    assert setup_cell.main(["readme"]) == 0
    assert setup_cell.main(["readme", "--check"]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("\nrest\n") and "01_a.ipynb" in text
    readme.write_text("no markers\n", encoding="utf-8")
    assert setup_cell.main(["readme"]) == 2
