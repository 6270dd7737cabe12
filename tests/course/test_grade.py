"""kdutils.course.grade and gradebook: a class graded by the grader's own checks, into a gradebook and feedback.

One class runs in real kernels (a few notebooks: each costs a kernel and an import of torch); the rest
needs none.
"""

import csv
import io

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from kdutils.course import grade, gradebook
from kdutils.course.grade import Verdict

GAP_STUB = ("from kdutils.exercises import check_gap_closed, hint\n\n\ndef gap(s, d, t):\n"
            "    raise NotImplementedError(\"write this function, then run the cell.\")\n\n\ncheck_gap_closed(gap)")
PRECISION_STUB = ("from kdutils.exercises import check_precision, hint\n\n\ndef my_precision(matrix):\n"
                  "    raise NotImplementedError(\"write this function, then run the cell.\")\n\n\n"
                  "check_precision(my_precision)")
STUB_LINE = "    raise NotImplementedError(\"write this function, then run the cell.\")"
RIGHT_GAP, WRONG_GAP = "    return (d - s) / (t - s)", "    return 100 * (d - s) / (t - s)"
RIGHT_PRECISION = "    return matrix.diagonal() / matrix.sum(dim=0).clamp(min=1)"
CRASHING_PRECISION = "    return matrix[99]"


def notebook(*sources):
    cells = [new_code_cell(source) for source in sources]
    for number, cell in enumerate(cells):
        cell["id"] = f"cell-{number}"
    return new_notebook(cells=cells)


def write(path, *sources):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook(*sources), path)


def released_notebook():
    """The release: a story cell, then two exercises with their points."""
    handed_out = notebook("x = 1", GAP_STUB, PRECISION_STUB)
    handed_out.cells[1].metadata["kdutils_exercise"] = {"exercise": "gap_closed", "function": "gap", "points": 2}
    handed_out.cells[2].metadata["kdutils_exercise"] = {"exercise": "precision", "function": "my_precision",
                                                        "points": 3}
    return handed_out


def answered(gap_body=STUB_LINE, precision_body=STUB_LINE):
    return ("x = 1", GAP_STUB.replace(STUB_LINE, gap_body), PRECISION_STUB.replace(STUB_LINE, precision_body))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A class: honest answers (right, wrong, unfinished, crashing), a forger, a kernel that exits, an endless cell."""
    folder = tmp_path_factory.mktemp("class")
    release = folder / "release"
    release.mkdir()
    nbformat.write(released_notebook(), release / "05_exercises.ipynb")
    submitted = folder / "submitted"
    write(submitted / "alice" / "05_exercises.ipynb", *answered(RIGHT_GAP, RIGHT_PRECISION))
    write(submitted / "bob.ipynb", *answered(WRONG_GAP, CRASHING_PRECISION), "print('PASSED: all of it')")
    # Forgeries: a printed verdict, a check redefined, the kernel's check patched, a check call removed.
    forged = list(answered(WRONG_GAP))
    forged[1] = forged[1].replace("check_gap_closed(gap)", "print('PASSED: check_gap_closed(gap)')")
    forged += ["import math\nmath.isclose = lambda *args, **kwargs: True\n"
               "def check_precision(f):\n    print('PASSED: fine')"]
    write(submitted / "carol.ipynb", *forged)
    write(submitted / "dave.ipynb", *answered(RIGHT_GAP), "import os\nos._exit(0)")
    write(submitted / "erin.ipynb", *answered(RIGHT_GAP),
          "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except KeyboardInterrupt:\n        pass")
    (submitted / "frank.ipynb").write_text("{ not a notebook", encoding="utf-8")
    rows = grade.grade(submitted, release, cell_timeout=5, total_timeout=75)
    return submitted, rows


def table(rows):
    return {(row.student, row.exercise): (row.verdict, row.points) for row in rows}


def test_an_honest_class_gets_the_right_verdict_and_points_in_every_row(graded):
    _, rows = graded
    got = table(rows)
    assert got[("alice", "gap_closed")] == ("PASSED", 2) and got[("alice", "precision")] == ("PASSED", 3)
    assert got[("bob", "gap_closed")] == ("FAILED", 0)  # whatever bob's notebook printed
    assert got[("bob", "precision")] == ("FAILED", 0)
    bob = {row.exercise: row.message for row in rows if row.student == "bob"}
    assert "percentage" in bob["gap_closed"] and "IndexError" in bob["precision"]


def test_forgeries_never_pass_a_wrong_function(graded):
    _, rows = graded
    carol = {row.exercise: row for row in rows if row.student == "carol"}
    assert {row.verdict for row in carol.values()} == {"TAMPERED"}  # math.isclose was replaced
    assert all(row.points == 0 for row in carol.values())
    assert "math.isclose" in carol["gap_closed"].message


def test_an_exit_an_endless_cell_and_an_unreadable_file_affect_only_their_own_rows(graded):
    _, rows = graded
    got = table(rows)
    assert got[("dave", "gap_closed")] == ("ERROR", 0) and got[("dave", "precision")] == ("ERROR", 0)
    assert got[("erin", "gap_closed")] == ("TIMEOUT", 0)
    assert got[("frank", "")] == ("ERROR", 0)
    messages = {row.student: row.message for row in rows}
    assert "kernel died or exited" in messages["dave"] and "time limit of 75 s" in messages["erin"]


def test_the_submitted_notebooks_are_not_changed(graded):
    folder, _ = graded
    alice = nbformat.read(folder / "alice" / "05_exercises.ipynb", as_version=4)
    assert all(cell.outputs == [] and cell.execution_count is None for cell in alice.cells)


# --- released cells: what an edit that matters is (no kernel) -----------------------------------------------


@pytest.mark.parametrize(("change", "expected"), [
    (lambda cells: cells, {}),
    (lambda cells: [cells[0], cells[1] + "\n# a note: check_precision( is fun", cells[2]], {}),
    (lambda cells: [cells[0], cells[2]], {"cell-1": "was removed"}),
    (lambda cells: [cells[0], cells[1].replace("check_gap_closed(gap)", "# check_gap_closed(gap)"), cells[2]],
     {"cell-1": "check call, check_gap_closed(gap), was changed or removed"}),
    (lambda cells: [cells[0], cells[1].replace("check_gap_closed(gap)", "check_gap_closed(lambda s, d, t: 0)"),
                    cells[2]], {"cell-1": "was changed or removed"}),
    (lambda cells: [*cells, "def check_gap_closed(f):\n    print('PASSED: yes')"],
     {"cell-1": "redefines check_gap_closed", "cell-2": "redefines check_gap_closed"}),
    (lambda cells: [*cells, "from somewhere import check_precision"], {"cell-1": "redefines check_precision"}),
])
def test_edits_that_matter_are_found_and_harmless_ones_are_not(change, expected):
    exercises = [{"cell_id": cell.id, **cell.metadata["kdutils_exercise"]} for cell in released_notebook().cells
                 if "kdutils_exercise" in cell.metadata]
    sources = list(answered(RIGHT_GAP, RIGHT_PRECISION))
    submitted = notebook(*change(sources))
    if len(change(sources)) == 2:  # a removed cell: the ids of those left are kept
        submitted.cells[1]["id"] = "cell-2"
    found = grade.edits(submitted, exercises)
    for cell_id, phrase in expected.items():
        assert phrase in found[cell_id]
    if not expected:
        assert found == {}
    elif "redefines" not in str(expected):
        assert set(found) == set(expected)


def test_a_release_without_exercise_records_is_refused(tmp_path):
    write(tmp_path / "01_x.ipynb", "x = 1")
    with pytest.raises(ValueError, match="no released exercise"):
        grade.released(tmp_path)


def test_submissions_are_found_as_files_and_folders(tmp_path):
    write(tmp_path / "b.ipynb", "")
    write(tmp_path / "a" / "02_x.ipynb", "")
    write(tmp_path / ".ipynb_checkpoints" / "b-checkpoint.ipynb", "")  # Jupyter's autosave, not a student
    assert [(student, path.name) for student, path in grade.submissions(tmp_path)] == [("a", "02_x.ipynb"),
                                                                                       ("b", "b.ipynb")]


# --- the gradebook and the feedback, cell by cell (no kernel) ---------------------------------------------

ROWS = [Verdict("zoë", "05_x.ipynb", "gap_closed", "PASSED", "fine", 2, 2),
        Verdict("zoë", "05_x.ipynb", "precision", "FAILED", "columns, not rows", 0, 3),
        Verdict("yan", "05_x.ipynb", "gap_closed", "EDITED", "the check call was removed", 0, 2),
        Verdict("yan", "05_x.ipynb", "precision", "NOT DONE", "the stub", 0, 3),
        Verdict("xia", "notes.ipynb", "", "ERROR", "could not be read", 0, 0)]


def test_the_gradebook_has_a_row_per_student_with_points_a_total_and_the_maximum():
    lines = list(csv.reader(io.StringIO(gradebook.gradebook(ROWS))))
    assert lines == [["student_id", "gap_closed", "precision", "total", "max_total"],
                     ["xia", "0", "0", "0", "5"],
                     ["yan", "0", "0", "0", "5"],
                     ["zoë", "2", "0", "2", "5"]]


def test_every_file_is_written_and_the_verdicts_csv_keeps_every_row(tmp_path):
    written = gradebook.write_all(ROWS, tmp_path)
    assert [path.relative_to(tmp_path).as_posix() for path in written] == [
        "verdicts.csv", "gradebook.csv", "feedback/xia.md", "feedback/yan.md", "feedback/zoë.md"]
    with (tmp_path / "verdicts.csv").open(newline="", encoding="utf-8") as file:
        lines = list(csv.reader(file))
    assert lines[0] == ["student", "notebook", "exercise", "verdict", "message", "points", "max_points"]
    assert lines[1:] == [[str(value) for value in (row.student, row.notebook, row.exercise, row.verdict,
                                                    row.message, row.points, row.max_points)] for row in ROWS]
    assert not any(cell.startswith("=") for line in lines for cell in line)  # no formula for a spreadsheet


def test_the_feedback_says_each_verdict_its_points_the_diagnosis_and_the_next_hint():
    from kdutils.course.checks.hints import HINTS

    text = gradebook.feedback("zoë", ROWS)
    assert text.startswith("# Feedback for zoë\n\n**Total: 2 of 5 points.**\n")
    sections = text.split("\n## ")[1:]
    assert sections[0].splitlines()[:4] == ["05_x.ipynb: gap_closed", "", "- Verdict: **PASSED** (2 of 2 points)",
                                            "- What the check found: fine"]
    assert "- Hint:" not in sections[0]  # nothing to hint at
    assert "- Verdict: **FAILED** (0 of 3 points)" in sections[1] and "columns, not rows" in sections[1]
    assert f"- Hint: {HINTS['precision'][0]}" in sections[1] and "hint('precision', 2)" in sections[1]
    assert "ask your instructor" in gradebook.feedback("yan", ROWS)
