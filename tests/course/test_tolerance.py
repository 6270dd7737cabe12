"""kdutils.course.tolerance and its nbval hook: numbers within a tolerance off the reference machine, words exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdutils.course.claims import NOTICE_MARK
from kdutils.course.tolerance import (
    RUN_ONLY,
    Tolerance,
    adopt_close_numbers,
    comparable,
    compare_text,
    split_numbers,
    tolerance_for,
)

from ..helpers import WIDGET

REPO = Path(__file__).resolve().parents[2]


def test_numbers_are_read_as_printed():
    words, numbers = split_numbers("+0.15 (95% CI -0.07 to +0.37, n = 5); 1,015 mistakes of 10,000; 1e-3 at T=4")
    assert numbers == [0.15, 95, -0.07, 0.37, 5, 1015, 10000, 0.001, 4]
    assert "".join(words) == " (% CI  to , n = );  mistakes of ;  at T="
    assert split_numbers("no numbers") == (["no numbers"], [])
    assert split_numbers("resnet18 layer2 and x1")[1] == []  # digits inside names are words


def test_close_numbers_pass_and_far_ones_fail_with_the_reason():
    points = Tolerance(abs=1.0)
    assert compare_text("teacher: 89.85%", "teacher: 89.31%", points) == []
    [reason] = compare_text("teacher: 89.85%", "teacher: 86.12%", points)
    assert "89.85 became 86.12" in reason
    assert compare_text("loss 0.300", "loss 0.330", Tolerance(rel=0.15)) == []
    assert compare_text("loss 0.300", "loss 0.400", Tolerance(rel=0.15))
    assert compare_text("chosen: T = 4", "chosen: T = 4", Tolerance()) == []


def test_words_must_match_exactly_whatever_the_tolerance():
    differ = ["the words differ, not only the numbers"]
    assert compare_text("distilled wins", "scratch wins", Tolerance(abs=100)) == differ
    assert compare_text("3 of 5", "3 of 5 seeds", Tolerance(abs=100))


def test_exact_is_the_default_and_a_cell_overrides_its_notebook():
    notebook = {"kdutils": {"tolerance": {"abs": 1.0}}}
    assert tolerance_for({}, {}) == Tolerance()
    assert tolerance_for({}, notebook) == Tolerance(abs=1.0)
    assert tolerance_for({"kdutils": {"tolerance": {"rel": 0.1}}}, notebook) == Tolerance(rel=0.1)
    assert tolerance_for({"kdutils": {"tolerance": {}}}, notebook) == Tolerance()
    assert tolerance_for({"kdutils": {"tolerance": RUN_ONLY}}, notebook) == RUN_ONLY


@pytest.mark.parametrize("spec", [{"abs": -1}, {"abs": "1"}, {"rel": True}, {"absolute": 1}, "loose", 3])
def test_a_malformed_tolerance_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="tolerance"):
        tolerance_for({"kdutils": {"tolerance": spec}}, {})


def test_notices_and_progress_widgets_are_never_compared():
    bar = {"output_type": "display_data", "data": {WIDGET: {}, "text/plain": "0%"}}
    notice = {"output_type": "display_data", "data": {"text/plain": "Note"}, "metadata": {NOTICE_MARK: True}}
    text = {"output_type": "stream", "name": "stdout", "text": "89.85%"}
    assert comparable([bar, notice, text]) == [text]


def test_column_padding_that_follows_a_number_s_width_is_not_a_change_of_words():
    committed = "labelled fix |   99 / 1,000 (90.1%)\nlabel-free fix |  154 / 1,000 (84.6%)\n"
    new = "labelled fix |  107 / 1,000 (89.3%)\nlabel-free fix |  148 / 1,000 (85.2%)\n"
    assert compare_text(committed, new, Tolerance(abs=10)) == []
    assert compare_text(committed, new.replace("label-free", "labelled"), Tolerance(abs=10)) != []
    assert compare_text(committed, new.replace("\nlabel-free", " label-free"), Tolerance(abs=10)) != [], \
        "a line break is not padding"


def test_stdout_split_by_timing_compares_as_one_output_as_in_nbval():
    """A run may flush print() in two pieces where the committed run flushed one."""
    committed = [{"output_type": "stream", "name": "stdout", "text": "epoch 1 89.85%\nepoch 2 90.10%\n"}]
    split = [{"output_type": "stream", "name": "stdout", "text": "epoch 1 89.80%\n"},
             {"output_type": "stream", "name": "stderr", "text": "warning\n"},
             {"output_type": "stream", "name": "stdout", "text": "epoch 2 90.00%\n"}]
    fresh = comparable(split)
    assert [o["name"] for o in fresh] == ["stdout", "stderr"] and fresh[0]["text"].count("epoch") == 2
    assert split[0]["text"] == "epoch 1 89.80%\n", "the outputs given are not changed"
    stored = comparable(committed)
    assert adopt_close_numbers(fresh[:1], stored, Tolerance(abs=0.2)) == []
    assert fresh[0]["text"] == committed[0]["text"]


def test_close_outputs_take_the_committed_text_and_far_ones_keep_their_own():
    committed = [{"output_type": "stream", "text": "accuracy 89.85%\n"},
                 {"output_type": "execute_result", "data": {"text/plain": "0.8985"}}]
    new = [{"output_type": "stream", "text": "accuracy 89.60%\n"},
           {"output_type": "execute_result", "data": {"text/plain": "0.8531"}}]
    problems = adopt_close_numbers(new, committed, Tolerance(abs=0.01, rel=0.01))
    assert new[0]["text"] == "accuracy 89.85%\n"  # within 0.01 + 0.9 points: now compares equal
    assert new[1]["data"]["text/plain"] == "0.8531" and problems == ["output 2 (text/plain): 0.8985 became 0.8531, "
                                                                     "more than 0.01 + 0.01 x |0.8985| away"]
    sanitized = [{"output_type": "stream", "text": "done in 12 s\n"}]
    assert adopt_close_numbers(sanitized, [{"output_type": "stream", "text": "done in 3 s\n"}], Tolerance(),
                               sanitize=lambda s: s.replace("12 s", "DURATION").replace("3 s", "DURATION")) == []


# --- the nbval hook (root conftest.py), run as a user runs it: pytest on a notebook ---------------------------

def notebook(cells, tolerance=None) -> dict:
    """A notebook whose code cells print ``source``'s output while the committed output says ``stored``."""
    nb_cells = []
    for count, (source, stored, metadata) in enumerate(cells, start=1):
        nb_cells.append({"cell_type": "code", "execution_count": count, "id": f"c{count}", "metadata": metadata,
                         "source": source, "outputs": [{"output_type": "stream", "name": "stdout", "text": stored}]})
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    if tolerance is not None:
        metadata["kdutils"] = {"tolerance": tolerance}
    return {"cells": nb_cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def run_nbval(tmp_path, nb: dict, reference: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text((REPO / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "check.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    env = {**os.environ, "KDUTILS_REFERENCE": reference}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
                           "-o", "addopts=", "-rf", "check.ipynb"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_nbval_accepts_close_numbers_off_the_reference_machine_and_only_there(tmp_path):
    nb = notebook([("print('accuracy 89.31%')", "accuracy 89.85%\n", {})], tolerance={"abs": 1.0})
    elsewhere = run_nbval(tmp_path, nb, reference="0")
    assert elsewhere.returncode == 0, elsewhere.stdout[-3000:]
    assert "not the reference machine" in elsewhere.stdout
    on_reference = run_nbval(tmp_path, nb, reference="1")
    assert on_reference.returncode == 1 and "Cell outputs differ" in on_reference.stdout


def test_nbval_fails_a_planted_regression_and_changed_words_off_the_reference_machine(tmp_path):
    nb = notebook([
        ("print('accuracy 86.10%')", "accuracy 89.85%\n", {}),  # a bug that costs 3.75 points
        ("print('scratch wins')", "distilled wins\n", {}),  # the verdict changed
        ("print('hardest: Coat')", "hardest: Shirt\n", {"kdutils": {"tolerance": RUN_ONLY}}),  # words vary: only run
        ("from kdutils.course.claims import claim\nclaim(False, 'the student wins')\nprint('done 1.0')",
         "done 1.2\n", {}),  # the claim's notice is not compared; 1.0 is within 1 point of 1.2
    ], tolerance={"abs": 1.0})
    result = run_nbval(tmp_path, nb, reference="0")
    assert result.returncode == 1
    assert "not within tolerance: output 1 (text): 89.85 became 86.1" in result.stdout
    assert "not within tolerance: output 1 (text): the words differ" in result.stdout
    assert "2 failed, 2 passed" in result.stdout, result.stdout[-3000:]


def test_comparable_accepts_stream_text_stored_as_a_list_of_lines():
    # How a .ipynb file stores it, and how `python -m kdutils.course compare` reads it (plain JSON).
    outputs = [{"output_type": "stream", "name": "stdout", "text": ["teacher: ", "89.85%\n"]}]
    [joined] = comparable(outputs)
    assert joined.text == "teacher: 89.85%\n"
