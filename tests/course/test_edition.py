"""The student edition: generated from the instructor notebooks, solutions replaced by stubs that raise."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kdutils.course import edition
from kdutils.course.edition import StubError, make_student_notebook, student_edition, write_student_edition

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"


def notebook(*cells):
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code(source, tags=(), outputs=None, count=3):
    return {"cell_type": "code", "execution_count": count, "id": "c", "metadata": {"tags": list(tags)},
            "outputs": outputs if outputs is not None else [{"output_type": "stream", "name": "stdout",
                                                              "text": ["PASSED: ...\n"]}],
            "source": source}


SOLUTION = (
    "def softmax_t(logits, T):\n"
    "    ### BEGIN SOLUTION: divide the logits by T, then softmax over the classes (for the instructor only)\n"
    "    scaled = logits / T\n"
    "    return scaled.softmax(dim=-1)\n"
    "    ### END SOLUTION\n"
    "\n"
    "\n"
    "check_softmax_with_temperature(softmax_t)"
)


STUB_LINE = ("    raise NotImplementedError(\"write this function, then run the cell. Stuck? "
             "hint('softmax_with_temperature') gives a first hint, "
             "hint('softmax_with_temperature', 2) a stronger one.\")\n")


def test_a_solution_cell_becomes_a_stub_that_says_how_to_ask_for_hints():
    instructor = notebook({"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# Title"]},
                          code("x = 1", outputs=[]), code(SOLUTION, tags=["solution"]))
    student = make_student_notebook(instructor, "03_x.ipynb")
    banner, title, plain, stub = student["cells"]
    assert "Student edition" in "".join(banner["source"]) and "03_x.ipynb" in "".join(banner["source"])
    assert title == instructor["cells"][0] and plain == instructor["cells"][1]
    source = "".join(stub["source"])
    assert source == (
        "from kdutils.exercises import hint\n"
        "def softmax_t(logits, T):\n"
        + STUB_LINE +
        "\n\ncheck_softmax_with_temperature(softmax_t)"
    )
    assert "divide the logits" not in source  # the instructor's note is not a hint: it spelt the answer
    assert stub["outputs"] == [] and stub["execution_count"] is None
    assert stub["metadata"]["tags"] == ["raises-exception"]
    assert "scaled" not in source
    assert instructor["cells"][2]["source"] == SOLUTION  # the instructor notebook is untouched


def test_the_stub_really_raises_and_the_rest_of_the_cell_still_defines_the_function():
    stub = "".join(make_student_notebook(notebook(code(SOLUTION, tags=["solution"])), "n")["cells"][1]["source"])
    namespace = {"check_softmax_with_temperature": lambda f: f(None, 1.0)}
    with pytest.raises(NotImplementedError, match=r"hint\('softmax_with_temperature'\)"):
        exec(stub, namespace)
    assert callable(namespace["softmax_t"]) and callable(namespace["hint"])


@pytest.mark.parametrize(
    ("imports", "expected"),
    [
        ("from kdutils.exercises import check_softmax_with_temperature\n",
         "from kdutils.exercises import check_softmax_with_temperature, hint\n"),
        ("from kdutils.exercises import check_softmax_with_temperature, hint\n",
         "from kdutils.exercises import check_softmax_with_temperature, hint\n"),
        ("import torch\n", "from kdutils.exercises import hint\nimport torch\n"),
    ],
)
def test_the_stub_imports_hint_once(imports, expected):
    cell = make_student_notebook(notebook(code(imports + SOLUTION, tags=["solution"])), "n")["cells"][1]
    stub = "".join(cell["source"])
    assert stub.startswith(expected) and stub.count("hint\n") == 1


def test_a_solution_cell_must_call_a_check_that_has_hints():
    source = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\ncheck_nothing_known(f)"
    with pytest.raises(StubError, match="calls no check of kdutils.exercises that has hints"):
        make_student_notebook(notebook(code(source, tags=["solution"])), "bad.ipynb")


def markdown(source, tags=()):
    return {"cell_type": "markdown", "id": "m", "metadata": {"tags": list(tags)}, "source": source}


EXERCISES = (
    "## Exercises\n\n"
    "**1.** Compute the precision.\n\n"
    "<details>\n<summary>Solution</summary>\n\n```python\nprecision = matrix.diag() / matrix.sum(dim=0)\n```\n"
    "Expected outcome: Shirt is last.\n</details>\n\n"
    "**2.** Is the teacher calibrated?\n\n"
    "<details><summary><b>Answer</b></summary>\nIt is overconfident.\n</details>\n\n"
    "**3.** Where does the data come from?\n\n"
    "<details>\n<summary>Where to look</summary>\nThe data notebook.\n</details>\n"
)


def test_worked_answers_in_details_blocks_are_cut_out_and_the_questions_kept():
    student = make_student_notebook(notebook(markdown(EXERCISES)), "n")
    text = "".join(student["cells"][1]["source"])
    assert "matrix.sum(dim=0)" not in text and "Shirt is last" not in text and "overconfident" not in text
    assert "<summary>Solution" not in text and "Answer" not in text
    assert "**1.** Compute the precision." in text and "**2.** Is the teacher calibrated?" in text
    assert "<summary>Where to look</summary>" in text and "The data notebook." in text  # not an answer: kept
    assert "\n\n\n" not in text


def test_a_markdown_cell_that_holds_only_an_answer_is_left_out_and_other_cells_are_untouched():
    answer_only = markdown("<details><summary>Solution</summary>\n42\n</details>\n")
    plain = markdown(["# Title\n", "\n", "Some *story*.\n"])
    student = make_student_notebook(notebook(answer_only, plain), "n")
    assert [c["source"] for c in student["cells"][1:]] == [plain["source"]]


def test_a_nested_details_block_inside_an_answer_is_a_clear_error():
    nested = markdown("<details><summary>Solution</summary>\n<details><summary>More</summary>x</details>\ny</details>")
    with pytest.raises(StubError, match="nested <details>"):
        make_student_notebook(notebook(nested), "n.ipynb")


def test_worked_answers_in_markdown_are_left_out():
    answer = {"cell_type": "markdown", "id": "a", "metadata": {"tags": ["solution"]}, "source": ["The answer is 42."]}
    student = make_student_notebook(notebook(answer), "n")
    assert all("42" not in "".join(c["source"]) for c in student["cells"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f():\n    return 1", "has no '### BEGIN SOLUTION' line"),
        ("def f():\n    ### BEGIN SOLUTION: hint\n    return 1", "never closed"),
        ("def f():\n    return 1\n    ### END SOLUTION", "without BEGIN"),
        ("### BEGIN SOLUTION: a\n### BEGIN SOLUTION: b\n### END SOLUTION", "inside another"),
    ],
)
def test_malformed_solution_cells_are_clear_errors(source, message):
    source += "\ncheck_gap_closed(f)"
    with pytest.raises(StubError, match=message):
        make_student_notebook(notebook(code(source, tags=["solution"])), "bad.ipynb")


def test_write_and_check_a_folder(tmp_path):
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(code(SOLUTION, tags=["solution"]))), encoding="utf-8")
    assert edition.differences(tmp_path) == ["01_a.ipynb"]
    written = write_student_edition(tmp_path, run=False)
    assert [p.name for p in written] == ["01_a.ipynb"]
    assert edition.differences(tmp_path) == []
    assert write_student_edition(tmp_path, run=False) == []  # nothing to rewrite
    (tmp_path / "student" / "01_a.ipynb").write_text("edited by hand", encoding="utf-8")
    (tmp_path / "student" / "99_gone.ipynb").write_text("{}", encoding="utf-8")
    assert edition.differences(tmp_path) == ["01_a.ipynb", "99_gone.ipynb"]
    write_student_edition(tmp_path, run=False)
    assert edition.differences(tmp_path) == []
    assert not (tmp_path / "student" / "99_gone.ipynb").exists()
    assert not [p for p in (tmp_path / "student").iterdir() if ".part" in p.name]  # written atomically


def test_re_executing_an_instructor_notebook_makes_its_student_edition_stale(tmp_path):
    # Same sources, new outputs (a teacher retrained, a number changed): the student notebook, which
    # shows the same story cells, must be executed again, or it would keep the old numbers.
    story = code("print(accuracy)", outputs=[{"output_type": "stream", "name": "stdout", "text": ["89.88%\n"]}])
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(story, code(SOLUTION, tags=["solution"]))),
                                         encoding="utf-8")
    write_student_edition(tmp_path, run=False)
    assert edition.differences(tmp_path) == []
    story["outputs"][0]["text"] = ["89.81%\n"]
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(story, code(SOLUTION, tags=["solution"]))),
                                         encoding="utf-8")
    assert edition.differences(tmp_path) == ["01_a.ipynb"]
    assert [p.name for p in write_student_edition(tmp_path, run=False)] == ["01_a.ipynb"]
    assert edition.differences(tmp_path) == []


def test_the_written_student_notebook_is_run_except_its_stubs(tmp_path):
    # A student opens it with every story cell run and each exercise waiting: no stored traceback.
    story = [code("answer = 40", count=None, outputs=[]), code("print(answer + 2)", count=None, outputs=[])]
    story[0]["id"], story[1]["id"] = "first", "last"  # ids must differ from the solution cell's
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(story[0], code(SOLUTION, tags=["solution"]), story[1])),
                                         encoding="utf-8")
    write_student_edition(tmp_path)
    cells = json.loads((tmp_path / "student" / "01_a.ipynb").read_text(encoding="utf-8"))["cells"]
    run, stub, after = [c for c in cells if c["cell_type"] == "code"]
    assert stub["metadata"]["tags"] == ["raises-exception"]
    assert stub["execution_count"] is None and stub["outputs"] == []
    assert (run["execution_count"], after["execution_count"]) == (1, 2)
    assert "".join(after["outputs"][0]["text"]) == "42\n"


def test_the_committed_student_edition_is_what_the_generator_writes():
    folder = NOTEBOOKS / "student"
    expected = student_edition(NOTEBOOKS)
    assert sorted(p.name for p in folder.glob("*.ipynb")) == sorted(expected), "run: python -m kdutils.course edition"
    assert edition.differences(NOTEBOOKS) == [], "stale: run python -m kdutils.course edition"
    for path in sorted(folder.glob("*.ipynb")):  # and none of its cells shows a worked answer
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"])
            assert not re.search(r"<summary>[^<]*(Solution|Answer)", text, re.I), f"{path.name}: regenerate it"


def test_every_notebook_has_an_auto_checked_exercise_and_its_stub_raises():
    editions = {name: json.loads(content) for name, content in student_edition(NOTEBOOKS).items()}
    assert len(editions) >= 8
    stubs = 0
    for name, nb in editions.items():
        cells = [c for c in nb["cells"] if "raises-exception" in c["metadata"].get("tags", [])]
        assert cells, f"{name} has no auto-checked exercise"
        for cell in cells:
            source = "".join(cell["source"])
            assert "raise NotImplementedError(" in source and "check_" in source and "hint('" in source, name
        stubs += len(cells)
        for cell in nb["cells"]:
            assert not re.search(r"<summary>[^<]*(Solution|Answer)", "".join(cell["source"]), re.I), name
    assert stubs >= 10


def test_the_command_line_check_names_a_stale_edition(tmp_path):
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(code(SOLUTION, tags=["solution"]))), encoding="utf-8")
    command = [sys.executable, "-m", "kdutils.course", "edition", "--check", "--notebooks", str(tmp_path)]
    stale = subprocess.run(command, capture_output=True, text=True)
    assert stale.returncode == 1 and "out of date (01_a.ipynb)" in stale.stderr
    write_student_edition(tmp_path, run=False)
    fresh = subprocess.run(command, capture_output=True, text=True)
    assert fresh.returncode == 0 and "matches the instructor notebooks" in fresh.stdout, fresh.stderr


def test_the_edition_and_the_grader_need_no_torch():
    # They read notebooks and hint texts only; torch takes seconds to import.
    code = "import sys, kdutils.course.edition, kdutils.course.grade; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_each_stub_cell_records_its_exercise_function_and_points_for_the_grader(monkeypatch):
    from kdutils.course import points

    monkeypatch.setitem(points.POINTS, "softmax_with_temperature", 7)
    stub = make_student_notebook(notebook(code(SOLUTION, tags=["solution"])), "03_x.ipynb")["cells"][1]
    assert stub["metadata"]["kdutils_exercise"] == {"exercise": "softmax_with_temperature", "function": "softmax_t",
                                                    "points": 7}
    monkeypatch.delitem(points.POINTS, "softmax_with_temperature")
    with pytest.raises(StubError, match="has no points: add it to POINTS in kdutils/course/points.py"):
        make_student_notebook(notebook(code(SOLUTION, tags=["solution"])), "03_x.ipynb")


def test_a_solution_cell_must_hand_a_named_function_to_its_check():
    lambda_call = SOLUTION.replace("check_softmax_with_temperature(softmax_t)",
                                   "check_softmax_with_temperature(lambda l, T: softmax_t(l, T))")
    with pytest.raises(StubError, match=r"must end with check_softmax_with_temperature\(<your function's name>\)"):
        make_student_notebook(notebook(code(lambda_call, tags=["solution"])), "03_x.ipynb")


def test_a_change_of_points_alone_rewrites_the_records_and_keeps_the_outputs(tmp_path, monkeypatch):
    from kdutils.course import points

    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(code(SOLUTION, tags=["solution"]))), encoding="utf-8")
    write_student_edition(tmp_path, run=False)
    path = tmp_path / "student" / "01_a.ipynb"
    written = json.loads(path.read_text(encoding="utf-8"))
    written["cells"][0]["outputs"] = ["as if run"]  # an output of the edition's own run, to be kept
    path.write_text(json.dumps(written), encoding="utf-8")
    monkeypatch.setitem(points.POINTS, "softmax_with_temperature", 9)
    assert edition.differences(tmp_path) == ["01_a.ipynb"]
    assert write_student_edition(tmp_path, run=True) == [path]  # run=True, yet no kernel: only metadata changed
    rewritten = json.loads(path.read_text(encoding="utf-8"))
    assert rewritten["cells"][1]["metadata"]["kdutils_exercise"]["points"] == 9
    assert rewritten["cells"][0]["outputs"] == ["as if run"] and edition.differences(tmp_path) == []


def test_a_change_of_prose_alone_keeps_the_student_runs_outputs_and_a_change_of_outputs_does_not(tmp_path):
    story = code("print(accuracy)", outputs=[{"output_type": "stream", "name": "stdout", "text": ["89.88%\n"]}])
    prose = {"cell_type": "markdown", "id": "prose", "metadata": {}, "source": ["The teacher scores 89.88%."]}
    instructor = tmp_path / "01_a.ipynb"
    instructor.write_text(json.dumps(notebook(prose, story, code(SOLUTION, tags=["solution"]))), encoding="utf-8")
    write_student_edition(tmp_path, run=False)
    path = tmp_path / "student" / "01_a.ipynb"
    written = json.loads(path.read_text(encoding="utf-8"))
    written["cells"][2]["outputs"] = ["as if run"]  # the story cell, as the edition's own run left it
    path.write_text(json.dumps(written), encoding="utf-8")
    prose["source"] = ["The teacher scores 89.88% on test."]
    instructor.write_text(json.dumps(notebook(prose, story, code(SOLUTION, tags=["solution"]))), encoding="utf-8")
    assert edition.differences(tmp_path) == ["01_a.ipynb"]
    assert write_student_edition(tmp_path, run=True) == [path]  # run=True, yet no kernel: the code did not change
    rewritten = json.loads(path.read_text(encoding="utf-8"))
    assert "on test" in "".join(rewritten["cells"][1]["source"]) and rewritten["cells"][2]["outputs"] == ["as if run"]
    assert edition.differences(tmp_path) == []
    story["outputs"][0]["text"] = ["89.81%\n"]  # the instructor notebook re-executed: its run changed
    instructor.write_text(json.dumps(notebook(prose, story, code(SOLUTION, tags=["solution"]))), encoding="utf-8")
    write_student_edition(tmp_path, run=False)
    assert json.loads(path.read_text(encoding="utf-8"))["cells"][2]["outputs"] != ["as if run"]


def test_a_change_of_prose_alone_keeps_the_widget_state_of_the_student_run_whose_outputs_it_keeps(tmp_path):
    bar = {"output_type": "display_data", "metadata": {},
           "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "student-bar", "version_major": 2,
                                                                 "version_minor": 0}, "text/plain": ["100%"]}}

    def state(model_id):
        return {"application/vnd.jupyter.widget-state+json": {"state": {model_id: {"model_name": "HBoxModel"}},
                                                              "version_major": 2, "version_minor": 0}}

    prose = {"cell_type": "markdown", "id": "prose", "metadata": {}, "source": ["Training."]}
    instructor = tmp_path / "01_a.ipynb"

    def write_instructor():
        content = notebook(prose, code("train()"), code(SOLUTION, tags=["solution"]))
        content["metadata"]["widgets"] = state("instructor-bar")  # the instructor's own run drew its own bars
        instructor.write_text(json.dumps(content), encoding="utf-8")

    write_instructor()
    write_student_edition(tmp_path, run=False)
    path = tmp_path / "student" / "01_a.ipynb"
    written = json.loads(path.read_text(encoding="utf-8"))
    written["cells"][2]["outputs"] = [bar]  # as the edition's own run left it, with its own widget model
    written["metadata"]["widgets"] = state("student-bar")
    path.write_text(json.dumps(written), encoding="utf-8")
    prose["source"] = ["Training, in one pass."]
    write_instructor()
    assert write_student_edition(tmp_path, run=True) == [path]  # prose only: the outputs are kept
    rewritten = json.loads(path.read_text(encoding="utf-8"))
    assert rewritten["cells"][2]["outputs"] == [bar]
    assert rewritten["metadata"]["widgets"] == state("student-bar")
