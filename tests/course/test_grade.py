"""kdutils.course.grade: each submitted notebook runs in a fresh kernel and every exercise gets a verdict in a CSV."""

import csv

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from kdutils.course import grade

CORRECT = "def gap(s, d, t):\n    return (d - s) / (t - s)\n\n\ncheck_gap_closed(gap)"
PERCENT = "def gap(s, d, t):\n    return 100 * (d - s) / (t - s)\n\n\ncheck_gap_closed(gap)"
STUB = "def gap(s, d, t):\n    raise NotImplementedError(\"write this function\")\n\n\ncheck_gap_closed(gap)"
HANGS_IN_CELL = "import time\n\ntime.sleep(600)\ncheck_gap_closed(lambda s, d, t: 0.0)"
HANGS_IN_FUNCTION = "def gap(s, d, t):\n    time.sleep(600)\n\n\ncheck_gap_closed(gap)"
NAME_ERROR = "check_precision(my_precision)"


def write(path, *sources):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(source) for source in sources]), path)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One class: alice's notebook exercises every verdict (one kernel); bob's and carol's need no kernel."""
    folder = tmp_path_factory.mktemp("submissions")
    setup = ("import time\n\nfrom kdutils.course.checks import harness\n"
             "from kdutils.exercises import check_gap_closed\n\nharness.TIME_LIMIT = 1.0")
    write(folder / "alice.ipynb", setup, CORRECT, PERCENT, STUB, HANGS_IN_CELL, HANGS_IN_FUNCTION, NAME_ERROR,
          CORRECT)
    write(folder / "bob" / "01_story_only.ipynb", "print('no exercise here')")
    (folder / "carol.ipynb").write_text("{ not a notebook", encoding="utf-8")
    return folder, grade.grade(folder, timeout=15)


def test_every_exercise_of_a_notebook_gets_its_verdict(graded):
    _, rows = graded
    alice = [(row.exercise, row.verdict) for row in rows if row.student == "alice"]
    assert alice == [("gap_closed", "PASSED"), ("gap_closed", "FAILED"), ("gap_closed", "NOT DONE"),
                     ("gap_closed", "TIMEOUT"), ("gap_closed", "TIMEOUT"), ("precision", "ERROR"),
                     ("gap_closed", "PASSED")]  # the last one ran after the interrupted cell
    messages = [row.message for row in rows if row.student == "alice"]
    assert "not a percentage" in messages[1]
    assert "NotImplementedError" in messages[2]
    assert "time limit" in messages[3]
    assert messages[4].startswith("your function did not finish within 1 s")
    assert messages[5].startswith("NameError")


def test_a_notebook_without_exercises_or_that_cannot_be_read_gets_an_error_row(graded):
    _, rows = graded
    by_student = {row.student: row for row in rows if row.student in ("bob", "carol")}
    assert by_student["bob"].notebook == "01_story_only.ipynb" and by_student["bob"].verdict == "ERROR"
    assert "no checked exercise" in by_student["bob"].message
    assert by_student["carol"].verdict == "ERROR" and "could not be run" in by_student["carol"].message


def test_the_submitted_notebooks_are_not_changed(graded):
    folder, _ = graded
    alice = nbformat.read(folder / "alice.ipynb", as_version=4)
    assert all(cell.outputs == [] and cell.execution_count is None for cell in alice.cells)


def test_the_csv_has_a_row_per_exercise(tmp_path):
    folder = tmp_path / "class"
    write(folder / "dan.ipynb", "x = 1")  # no kernel needed: no exercise
    out = tmp_path / "verdicts.csv"
    grade.write_csv(grade.grade(folder, timeout=5), out)
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["student", "notebook", "exercise", "verdict", "message"]
    assert rows[1][:4] == ["dan", "dan.ipynb", "", "ERROR"]


def test_the_grader_reads_the_verdict_lines_the_checks_print(capsys):
    from kdutils.course.checks.verdicts import TIMEOUT_MESSAGE, CheckResult, read_verdict
    from kdutils.exercises import check_gap_closed

    check_gap_closed(lambda s, d, t: 100 * (d - s) / (t - s))
    printed = capsys.readouterr().out.strip()
    assert read_verdict(printed) == CheckResult(False, printed.removeprefix("NOT YET: "))
    cell = {"execution_count": 1, "outputs": [{"output_type": "stream", "name": "stdout", "text": printed + "\n"}]}
    assert grade._verdict_of(cell, timed_out=False) == ("FAILED", printed.removeprefix("NOT YET: "))
    cell["outputs"][0]["text"] = f"NOT YET: {TIMEOUT_MESSAGE} 30 s\n"
    assert grade._verdict_of(cell, timed_out=False)[0] == "TIMEOUT"
    assert read_verdict("PASSED: fine") == CheckResult(True, "fine") and read_verdict("PASSED fine") is None


def test_submissions_are_found_as_files_and_folders(tmp_path):
    write(tmp_path / "b.ipynb", "")
    write(tmp_path / "a" / "02_x.ipynb", "")
    write(tmp_path / ".ipynb_checkpoints" / "b-checkpoint.ipynb", "")  # Jupyter's autosave, not a student
    assert [(student, path.name) for student, path in grade.submissions(tmp_path)] == [("a", "02_x.ipynb"),
                                                                                       ("b", "b.ipynb")]
