"""The worked solutions of the exercises are found, run after their notebook, and reported with their output."""

import json
from pathlib import Path

import pytest

from kdutils import solutions
from kdutils.solutions import run_solutions, solution_blocks


def markdown(source):
    return {"cell_type": "markdown", "id": "m", "metadata": {}, "source": source}


def code(source):
    return {"cell_type": "code", "execution_count": None, "id": "c", "metadata": {}, "outputs": [], "source": source}


def notebook(*cells):
    return {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


ANSWERS = markdown(
    "## Exercises\n\n**1.** Double it.\n\n<details><summary>Solution</summary>\n\n"
    "```python\nprint(answer * 2)\n```\nIt prints 84.\n</details>\n\n"
    "Not an answer:\n```python\nprint('outside')\n```\n\n"
    "**2.** Two steps.\n\n<details>\n<summary>Solution</summary>\n\n```python\nhalf = answer // 2\n```\n"
    "then\n```python\nprint(half)\n```\nIt prints 21.\n```bash\necho not python\n```\n</details>\n"
)


def test_only_python_fences_inside_details_are_solutions():
    blocks = solution_blocks(notebook(code("answer = 42"), ANSWERS, markdown("<details>```python\nno\n</details>")))
    assert [b.code for b in blocks] == ["print(answer * 2)\n", "half = answer // 2\n", "print(half)\n"]
    assert {b.cell for b in blocks} == {1}
    assert blocks[0].answer == "It prints 84."  # the answer's words, without the code or the summary
    assert "It prints 21." in blocks[1].answer and "print(half)" not in blocks[1].answer
    assert solution_blocks(notebook(code("x = 1"))) == []


def test_solutions_run_after_the_notebook_in_the_same_kernel(tmp_path):
    path = tmp_path / "01_a.ipynb"
    path.write_text(json.dumps(notebook(code("answer = 42"), ANSWERS)))
    results = run_solutions(path)
    assert [output for _, output in results] == ["84\n", "", "21\n"]


def test_an_error_in_a_solution_is_reported_and_the_next_ones_still_run(tmp_path):
    broken = markdown("<details>\n\n```python\n1 / 0\n```\n</details>\n<details>\n\n```python\nprint('next')\n```\n"
                      "</details>")
    path = tmp_path / "01_a.ipynb"
    path.write_text(json.dumps(notebook(code("x = 1"), broken)))
    (_, first), (_, second) = run_solutions(path)
    assert first.startswith("ZeroDivisionError") and second == "next\n"


def test_a_notebook_that_fails_by_itself_and_a_missing_one_are_clear_errors(tmp_path, capsys):
    path = tmp_path / "01_a.ipynb"
    path.write_text(json.dumps(notebook(code("raise ValueError('broken cell')"), ANSWERS)))
    with pytest.raises(RuntimeError, match="01_a.ipynb itself failed before its solutions ran"):
        run_solutions(path)
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        run_solutions(tmp_path / "missing.ipynb")
    assert solutions.main([str(tmp_path / "missing.ipynb")]) == 1
    assert "error: no notebook at" in capsys.readouterr().err


def test_the_command_line_prints_code_output_and_answer(tmp_path, capsys):
    path = tmp_path / "01_a.ipynb"
    path.write_text(json.dumps(notebook(code("answer = 42"), ANSWERS)))
    assert solutions.main([str(path)]) == 0
    report = capsys.readouterr().out
    assert "01_a.ipynb: 3 solution block(s)" in report
    assert "printed:\n84\n" in report and "the answer says:\nIt prints 84." in report
    assert "printed:\n(nothing)" in report  # the block that only assigns


def test_every_notebook_of_the_series_has_worked_solutions():
    notebooks = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for path in notebooks:
        assert solution_blocks(json.loads(path.read_text(encoding="utf-8"))), f"{path.name} has no worked solution"
