"""A student's round trip in the student edition, through JupyterLab in headless Chromium.

The student opens notebook 04's student edition, types the article's buggy loss (the log of raw
logits) into the exercise's stub cell, runs it and reads the check's diagnosis; then types a correct
loss and reads the pass. Nothing is run but that cell, as a student trying the exercise would.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import REPO, SCREENSHOTS
from .test_notebooks_in_lab import POLL_S, READ_PANEL, open_notebook, wait_for_kernel_idle

pytestmark = pytest.mark.browser

STUDENT_NOTEBOOK = "student/04_distill_the_student.ipynb"
CHECK_CALL = "check_distillation_loss(my_distillation_loss)"

PROLOGUE = """import torch
from torch import nn
from torch.nn import functional as F

from kdutils.exercises import check_distillation_loss


def my_distillation_loss(student_logits, labels, teacher_logits, T, alpha):
"""

BUGGY = PROLOGUE + """    targets = torch.softmax(teacher_logits / T, dim=1)
    soft = nn.KLDivLoss()(torch.log(student_logits / T), targets) * (T * T)
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


""" + CHECK_CALL

CORRECT = PROLOGUE + """    targets = F.softmax(teacher_logits / T, dim=1)
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), targets, reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


""" + CHECK_CALL


def type_and_run(page, cell, code: str) -> None:
    """Replace the cell's text, as a student's editing would, and run it with Shift+Enter."""
    editor = cell.locator(".cm-content").first
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)  # inserted as typed text, without the editor's auto-indent
    page.keyboard.press("Shift+Enter")


def wait_for_output(panel, cell, expected: str, name: str, timeout_s: float = 300) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = cell.locator(".jp-OutputArea").first.inner_text() if cell.locator(".jp-OutputArea").count() else ""
        if expected in text:
            return text
        state = panel.evaluate(READ_PANEL)
        if state["status"] == "idle" and text and expected not in text and ("PASSED" in text or "NOT YET" in text
                                                                              or "Error" in text):
            break
        time.sleep(POLL_S)
    pytest.fail(f"{name}: expected {expected!r} in the exercise cell's output, the page shows:\n{text[:2000]}")


def test_a_student_sees_the_diagnosis_then_the_pass(lab, page):
    if not (REPO / "notebooks" / STUDENT_NOTEBOOK).is_file():
        pytest.fail(f"notebooks/{STUDENT_NOTEBOOK} is missing: run python -m kdutils.course edition")
    panel = open_notebook(page, lab, STUDENT_NOTEBOOK)
    try:
        wait_for_kernel_idle(page, panel, STUDENT_NOTEBOOK)
        cell = panel.locator(".jp-CodeCell", has_text=CHECK_CALL).first
        cell.scroll_into_view_if_needed()
        assert "NotImplementedError" in cell.inner_text(), "the exercise cell should start as a stub"

        type_and_run(page, cell, BUGGY)
        diagnosis = wait_for_output(panel, cell, "NOT YET", STUDENT_NOTEBOOK)
        assert "NaN" in diagnosis and "log of raw logits" in diagnosis and "log_softmax" in diagnosis, diagnosis

        type_and_run(page, cell, CORRECT)
        verdict = wait_for_output(panel, cell, "PASSED", STUDENT_NOTEBOOK)
        assert "NOT YET" not in verdict, verdict
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{Path(STUDENT_NOTEBOOK).stem}_student_exercise.png"))
    except BaseException:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{Path(STUDENT_NOTEBOOK).stem}_student_FAILED.png"))
        raise
