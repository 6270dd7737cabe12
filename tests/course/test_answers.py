"""Worked answers: one definition (kdutils.course.notebooks), found, run after their notebook, reported with output."""

import json
from pathlib import Path

import pytest

from kdutils.course.answers import run_answers
from kdutils.course.notebooks import without_worked_answers, worked_answers


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


def test_a_worked_answer_is_a_details_block_summarised_solution_or_answer():
    others = markdown("<details><summary>Where to look</summary>\n```python\nprint('a hint, not an answer')\n```\n"
                      "</details>\n<details>```python\nno\n</details>")
    blocks = worked_answers(notebook(code("answer = 42"), ANSWERS, others))
    assert [b.code for b in blocks] == ["print(answer * 2)\n", "half = answer // 2\n", "print(half)\n"]
    assert {b.cell for b in blocks} == {1}
    assert blocks[0].answer == "It prints 84."  # the answer's words, without the code or the summary
    assert "It prints 21." in blocks[1].answer and "print(half)" not in blocks[1].answer
    assert worked_answers(notebook(code("x = 1"))) == []


def test_solutions_run_after_the_notebook_in_the_same_kernel(tmp_path):
    path = tmp_path / "01_a.ipynb"
    path.write_text(json.dumps(notebook(code("answer = 42"), ANSWERS)), encoding="utf-8")
    results = run_answers(path)
    assert [output for _, output in results] == ["84\n", "", "21\n"]


def test_an_error_in_a_solution_is_reported_and_the_next_ones_still_run(tmp_path):
    broken = markdown("<details><summary>Solution</summary>\n\n```python\n1 / 0\n```\n</details>\n"
                      "<details><summary>Answer</summary>\n\n```python\nprint('next')\n```\n</details>")
    path = tmp_path / "01_a.ipynb"
    path.write_text(json.dumps(notebook(code("x = 1"), broken)), encoding="utf-8")
    (_, first), (_, second) = run_answers(path)
    assert first.startswith("ZeroDivisionError") and second == "next\n"


def test_a_notebook_that_fails_by_itself_and_a_missing_one_are_clear_errors(tmp_path):
    path = tmp_path / "01_a.ipynb"
    path.write_text(json.dumps(notebook(code("raise ValueError('broken cell')"), ANSWERS)), encoding="utf-8")
    with pytest.raises(RuntimeError, match="01_a.ipynb itself failed before its worked answers ran"):
        run_answers(path)
    with pytest.raises(FileNotFoundError, match="no notebook at"):
        run_answers(tmp_path / "missing.ipynb")


def test_the_student_edition_cuts_out_exactly_what_the_answers_runner_runs():
    text = without_worked_answers("".join(ANSWERS["source"]))
    assert "print(answer * 2)" not in text and "half = answer // 2" not in text
    assert "Not an answer:\n```python\nprint('outside')\n```" in text  # a fence outside any answer stays
    assert worked_answers(notebook(markdown(text))) == []
    with pytest.raises(ValueError, match="nested <details>"):
        without_worked_answers("<details><summary>Solution</summary><details><summary>x</summary>y</details>z</details>")


def test_every_notebook_of_the_series_has_worked_solutions():
    notebooks = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for path in notebooks:
        assert worked_answers(json.loads(path.read_text(encoding="utf-8"))), f"{path.name} has no worked answer"
