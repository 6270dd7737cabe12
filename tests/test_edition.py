"""The student edition: generated from the instructor notebooks, solutions replaced by stubs that raise."""

import json
import subprocess
import sys

import pytest

from kdutils import edition
from kdutils.edition import StubError, make_student_notebook, student_edition, write_student_edition


def notebook(*cells):
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code(source, tags=(), outputs=None, count=3):
    return {"cell_type": "code", "execution_count": count, "id": "c", "metadata": {"tags": list(tags)},
            "outputs": outputs if outputs is not None else [{"output_type": "stream", "name": "stdout",
                                                              "text": ["PASSED: ...\n"]}],
            "source": source}


SOLUTION = (
    "def softmax_t(logits, T):\n"
    "    ### BEGIN SOLUTION: divide the logits by T, then softmax over the classes\n"
    "    scaled = logits / T\n"
    "    return scaled.softmax(dim=-1)\n"
    "    ### END SOLUTION\n"
    "\n"
    "\n"
    "check_softmax_with_temperature(softmax_t)"
)


def test_a_solution_cell_becomes_a_stub_that_raises_with_the_hint():
    instructor = notebook({"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# Title"]},
                          code("x = 1", outputs=[]), code(SOLUTION, tags=["solution"]))
    student = make_student_notebook(instructor, "03_x.ipynb")
    banner, title, plain, stub = student["cells"]
    assert "Student edition" in "".join(banner["source"]) and "03_x.ipynb" in "".join(banner["source"])
    assert title == instructor["cells"][0] and plain == instructor["cells"][1]
    source = "".join(stub["source"])
    assert source == (
        "def softmax_t(logits, T):\n"
        '    raise NotImplementedError("divide the logits by T, then softmax over the classes")\n'
        "\n\ncheck_softmax_with_temperature(softmax_t)"
    )
    assert stub["outputs"] == [] and stub["execution_count"] is None
    assert stub["metadata"]["tags"] == ["raises-exception"]
    assert "scaled" not in source
    assert instructor["cells"][2]["source"] == SOLUTION  # the instructor notebook is untouched


def test_the_stub_really_raises_and_the_rest_of_the_cell_still_defines_the_function():
    stub = "".join(make_student_notebook(notebook(code(SOLUTION, tags=["solution"])), "n")["cells"][1]["source"])
    namespace = {"check_softmax_with_temperature": lambda f: f(None, 1.0)}
    with pytest.raises(NotImplementedError, match="divide the logits by T"):
        exec(stub, namespace)
    assert callable(namespace["softmax_t"])


def test_worked_answers_in_markdown_are_left_out():
    answer = {"cell_type": "markdown", "id": "a", "metadata": {"tags": ["solution"]}, "source": ["The answer is 42."]}
    student = make_student_notebook(notebook(answer), "n")
    assert all("42" not in "".join(c["source"]) for c in student["cells"])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f():\n    return 1", "has no '### BEGIN SOLUTION: <hint>' line"),
        ("def f():\n    ### BEGIN SOLUTION: hint\n    return 1", "never closed"),
        ("def f():\n    return 1\n    ### END SOLUTION", "without BEGIN"),
        ("### BEGIN SOLUTION: a\n### BEGIN SOLUTION: b\n### END SOLUTION", "inside another"),
    ],
)
def test_malformed_solution_cells_are_clear_errors(source, message):
    with pytest.raises(StubError, match=message):
        make_student_notebook(notebook(code(source, tags=["solution"])), "bad.ipynb")


def test_write_and_check_a_folder(tmp_path):
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(code(SOLUTION, tags=["solution"]))))
    written = write_student_edition(tmp_path, execute=False)
    assert [p.name for p in written] == ["01_a.ipynb"]
    assert edition.differences(tmp_path) == []
    assert write_student_edition(tmp_path, execute=False) == []  # nothing to rewrite
    (tmp_path / "student" / "01_a.ipynb").write_text("edited by hand")
    (tmp_path / "student" / "99_gone.ipynb").write_text("{}")
    assert edition.differences(tmp_path) == ["01_a.ipynb", "99_gone.ipynb"]
    assert edition.main(["--check", "--notebooks", str(tmp_path)]) == 1
    write_student_edition(tmp_path, execute=False)
    assert edition.main(["--check", "--notebooks", str(tmp_path)]) == 0
    assert not (tmp_path / "student" / "99_gone.ipynb").exists()


def test_re_executing_an_instructor_notebook_makes_its_student_edition_stale(tmp_path):
    # Same sources, new outputs (a teacher retrained, a number changed): the student notebook, which
    # shows the same story cells, must be executed again, or it would keep the old numbers.
    story = code("print(accuracy)", outputs=[{"output_type": "stream", "name": "stdout", "text": ["89.88%\n"]}])
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(story, code(SOLUTION, tags=["solution"]))))
    write_student_edition(tmp_path, execute=False)
    assert edition.differences(tmp_path) == []
    story["outputs"][0]["text"] = ["89.81%\n"]
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(story, code(SOLUTION, tags=["solution"]))))
    assert edition.differences(tmp_path) == ["01_a.ipynb"]
    assert [p.name for p in write_student_edition(tmp_path, execute=False)] == ["01_a.ipynb"]
    assert edition.differences(tmp_path) == []


def test_the_written_student_notebook_is_run_except_its_stubs(tmp_path):
    # A student opens it with every story cell run and each exercise waiting: no stored traceback.
    story = [code("answer = 40", count=None, outputs=[]), code("print(answer + 2)", count=None, outputs=[])]
    story[0]["id"], story[1]["id"] = "first", "last"  # ids must differ from the solution cell's
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook(story[0], code(SOLUTION, tags=["solution"]), story[1])))
    write_student_edition(tmp_path)
    cells = json.loads((tmp_path / "student" / "01_a.ipynb").read_text())["cells"]
    run, stub, after = [c for c in cells if c["cell_type"] == "code"]
    assert stub["metadata"]["tags"] == ["raises-exception"]
    assert stub["execution_count"] is None and stub["outputs"] == []
    assert (run["execution_count"], after["execution_count"]) == (1, 2)
    assert "".join(after["outputs"][0]["text"]) == "42\n"


def test_the_committed_student_edition_is_what_the_generator_writes():
    folder = edition.REPO / "notebooks" / "student"
    expected = student_edition()
    assert sorted(p.name for p in folder.glob("*.ipynb")) == sorted(expected), "run: python -m kdutils.edition"
    assert edition.differences() == [], "stale: run python -m kdutils.edition"


def test_every_notebook_has_an_auto_checked_exercise_and_its_stub_raises():
    editions = {name: json.loads(content) for name, content in student_edition().items()}
    assert len(editions) >= 8
    stubs = 0
    for name, nb in editions.items():
        cells = [c for c in nb["cells"] if "raises-exception" in c["metadata"].get("tags", [])]
        assert cells, f"{name} has no auto-checked exercise"
        for cell in cells:
            source = "".join(cell["source"])
            assert "raise NotImplementedError(" in source and "check_" in source, name
        stubs += len(cells)
    assert stubs >= 10


def test_the_command_line_check_runs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kdutils.edition", "--check", "--notebooks", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr  # an empty folder has an empty, up-to-date edition
