"""Each core notebook, run through JupyterLab's own UI in headless Chromium.

nbval proves the kernel side; these tests prove what a student sees: the notebook opens, *Run > Run
All Cells* runs every cell, no error appears anywhere on the page, the training progress bar is a
real ipywidgets bar (not tqdm's text fallback), and in notebook 03 the temperature slider redraws
the soft-label bars. A screenshot of each notebook after its run lands in artifacts/screenshots/.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from .conftest import REPO, SCREENSHOTS, skip_or_fail

pytestmark = pytest.mark.browser

CORE_NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("0[1-4]_*.ipynb"))
# A hang guard, not a performance check: the whole series runs in about two minutes on an idle laptop.
RUN_TIMEOUT_S = 1200
POLL_S = 1.0

# tqdm's text progress bar ("  40%|████      | 2/5 [...]"), as stored in a progress widget's plain-text fallback.
TQDM_TEXT = re.compile(r"\d+%\|")

# Everything the page shows about one notebook panel, read in one round trip.
READ_PANEL = """
(panel) => {
  const text = (el) => (el.innerText || el.textContent || '').trim();
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return {
    status: indicator ? indicator.dataset.status : null,
    prompts: [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(
      (cell) => text(cell.querySelector('.jp-InputArea-prompt') || cell)),
    errors: [...panel.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')].map(text),
    widgetErrors: [...panel.querySelectorAll('.jp-OutputArea-output')].map(text).filter(
      (t) => t.includes('Error displaying widget') || t.includes('Error rendering output')),
    progressBars: panel.querySelectorAll('.widget-hprogress, .widget-vprogress').length,
    failedProgressBars: panel.querySelectorAll('.progress-bar-danger').length,
    textProgressFallbacks: [...panel.querySelectorAll('[data-mime-type="text/plain"]')].map(text).filter(
      (t) => /\\d+%\\|/.test(t) || t.startsWith('HBox(') || t.includes('IProgress not found')),
  };
}
"""


def code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells
            if c["cell_type"] == "code"]


def expects_progress_widget(notebook: Path) -> bool:
    """Notebook 02 trains in full view; any notebook whose committed outputs hold a tqdm widget does too."""
    if notebook.name.startswith("02"):
        return True
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            plain = data.get("text/plain", "")
            plain = "".join(plain) if isinstance(plain, list) else plain
            if "application/vnd.jupyter.widget-view+json" in data and TQDM_TEXT.search(plain):
                return True
    return False


def describe(state: dict) -> str:
    shown = {k: v for k, v in state.items() if k != "prompts"}
    pending = [f"cell {i + 1}: {p!r}" for i, p in enumerate(state["prompts"]) if not re.fullmatch(r"\[\d+\]:", p)]
    return f"{json.dumps(shown, indent=1)[:3000]}\ncode cells without an execution count: {pending[:10]}"


def dialog_text(page) -> str | None:
    dialog = page.locator(".jp-Dialog")
    return dialog.first.inner_text() if dialog.count() else None


def open_notebook(page, lab, name: str):
    # A workspace of its own per notebook, so nothing opened earlier is restored beside it.
    workspace = re.sub(r"\W", "-", name)
    page.goto(lab.url(f"lab/workspaces/{workspace}/tree/notebooks/{name}?reset&token={lab.token}"))
    panel = page.locator(".jp-NotebookPanel").filter(has=page.locator(".jp-Notebook"))
    panel.first.wait_for(state="visible", timeout=180_000)
    assert panel.count() == 1, f"expected only {name} open, found {panel.count()} notebook panels"
    # Fold the file browser away (View > Show Left Sidebar), so the notebook gets the screenshot's width.
    if page.locator("#jp-left-stack").is_visible():
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").first.click()
    return panel.first


def wait_for_kernel_idle(page, panel, name: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        if (text := dialog_text(page)) is not None:
            pytest.fail(f"{name}: JupyterLab shows a dialog instead of a ready kernel:\n{text}")
        status = panel.evaluate(READ_PANEL)["status"]
        if status == "idle":
            return
        time.sleep(POLL_S)
    pytest.fail(f"{name}: the kernel is not idle after {timeout_s} s (status {status!r})")


def choose_menu_item(page, panel, menu: str, item: str) -> None:
    panel.locator(".jp-Notebook .jp-Cell").first.click()  # make this notebook the current widget
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^\s*{menu}\s*$")).click()
    entry = page.locator(".lm-Menu-content .lm-Menu-item", has_text=re.compile(rf"^\s*{item}")).first
    entry.wait_for(state="visible")
    entry.click()


def clear_all_outputs(page, panel, name: str) -> None:
    """Edit > Clear Outputs of All Cells: the committed outputs and counts must not pass for a fresh run."""
    choose_menu_item(page, panel, "Edit", "Clear Outputs of All Cells")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cleared = panel.evaluate(
            "(p) => ({outputs: p.querySelectorAll('.jp-Notebook .jp-OutputArea-output').length,"
            " prompts: [...p.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]"
            ".map((e) => e.textContent.trim())})")
        if cleared["outputs"] == 0 and all(not re.search(r"\d|\*", p) for p in cleared["prompts"]):
            return
        time.sleep(POLL_S)
    pytest.fail(f"{name}: Edit > Clear Outputs of All Cells left outputs or execution counts: {cleared}")


def run_all_cells(page, panel) -> None:
    """The way a student does it: the Run menu, then Run All Cells."""
    choose_menu_item(page, panel, "Run", "Run All Cells")


def has_started(state: dict) -> bool:
    return state["status"] == "busy" or any(p == "[*]:" or re.fullmatch(r"\[\d+\]:", p) for p in state["prompts"])


def wait_until_every_cell_ran(page, panel, name: str, expected_sources: list[str]) -> dict:
    """Run all cells and poll until the kernel is idle and every non-empty code cell has an execution count."""
    timeline: list[str] = []  # what the page showed, for the failure message
    start = time.monotonic()
    state: dict = {}
    attempts = 0
    while True:
        elapsed = time.monotonic() - start
        state = panel.evaluate(READ_PANEL)
        summary = f"{state['status']} {' '.join(state['prompts'])}"
        if not timeline or not timeline[-1].endswith(summary):
            timeline.append(f"{elapsed:6.1f}s {summary}")
        if state["errors"] or state["widgetErrors"]:
            return state  # fail now, with the error, rather than wait for the rest
        if (text := dialog_text(page)) is not None:
            pytest.fail(f"{name}: a dialog appeared during the run:\n{text}")
        assert len(state["prompts"]) == len(expected_sources), (
            f"{name}: the page shows {len(state['prompts'])} code cells, the file has {len(expected_sources)}")
        if not has_started(state):
            # Ask (again) when nothing runs: the first request can be lost while the page is still settling.
            if attempts == 0 or (attempts < 3 and elapsed > 30 * attempts):
                attempts += 1
                timeline.append(f"{elapsed:6.1f}s Run > Run All Cells (request {attempts})")
                run_all_cells(page, panel)
        else:
            counted = [re.fullmatch(r"\[\d+\]:", p) is not None for p in state["prompts"]]
            if state["status"] == "idle" and all(ok or not src.strip() for ok, src in zip(counted, expected_sources)):
                return state
        if elapsed > RUN_TIMEOUT_S or (attempts >= 3 and not has_started(state) and elapsed > 120):
            pytest.fail(f"{name}: not finished after {elapsed:.0f} s:\n{describe(state)}\ntimeline:\n"
                        + "\n".join(timeline[-40:]))
        time.sleep(POLL_S)


def save_full_screenshot(page, panel, path: Path) -> None:
    """The whole notebook in one image: grow the viewport to the notebook's height, then shoot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = panel.evaluate(
        "(p) => { const s = p.querySelector('.jp-WindowedPanel-outer') || p; return s.scrollHeight; }")
    page.set_viewport_size({"width": 1400, "height": max(1000, min(int(height) + 200, 15000))})
    panel.evaluate("(p) => { const s = p.querySelector('.jp-WindowedPanel-outer'); if (s) s.scrollTop = 0; }")
    page.wait_for_timeout(500)  # let the layout settle at the new size
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 1000})


def figure_sources(cell) -> list[str]:
    """The image data of every figure in a cell's outputs (inline PNGs are data: URLs)."""
    return cell.locator(".jp-OutputArea-output img").evaluate_all("(imgs) => imgs.map((i) => i.src)")


def check_temperature_slider(page, panel, name: str) -> None:
    """Moving the 'temperature T' slider must redraw the soft-label bars with different heights."""
    # Inner locators of has= are matched inside the outer element, so they start from page, not panel.
    temperature_slider = page.locator(
        ".widget-slider", has=page.locator(".widget-label", has_text=re.compile("temperature", re.IGNORECASE)))
    assert panel.locator(temperature_slider).count() >= 1, f"{name}: no slider described 'temperature' is shown"
    slider = panel.locator(temperature_slider).first
    slider.scroll_into_view_if_needed()
    cell = panel.locator(".jp-Cell", has=temperature_slider).last
    deadline = time.monotonic() + 30  # the figure under the slider may draw a moment after the widget
    while not (before := figure_sources(cell)) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    assert before, f"{name}: the cell with the temperature slider shows no figure"
    readout = slider.locator(".widget-readout")
    value_before = readout.inner_text().strip()

    # Drag the handle to the right, as a student would with the mouse.
    handle = slider.locator(".noUi-handle").first
    box = handle.bounding_box()
    track = slider.locator(".noUi-target, .slider").first.bounding_box()
    assert box and track, f"{name}: the temperature slider is not visible on the page"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    target_x = min(x + max(60, track["width"] / 3), track["x"] + track["width"] - 2)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(target_x, y, steps=8)
    page.mouse.up()
    if readout.inner_text().strip() == value_before:  # a slider at its right end: go the other way
        page.mouse.move(target_x, y)
        page.mouse.down()
        page.mouse.move(track["x"] + 2, y, steps=8)
        page.mouse.up()
    value_after = readout.inner_text().strip()
    assert value_after != value_before, f"{name}: dragging the temperature slider did not change its value"

    deadline = time.monotonic() + 120
    after = before
    while time.monotonic() < deadline:
        state = panel.evaluate(READ_PANEL)
        assert not state["errors"], f"{name}: moving the slider produced an error:\n{state['errors'][0][:3000]}"
        after = figure_sources(cell)
        if state["status"] == "idle" and after and after != before:
            break
        time.sleep(POLL_S)
    assert after and after != before, (
        f"{name}: the figure did not change after moving the temperature slider from {value_before} to "
        f"{value_after}")
    assert len(after) == len(before), f"{name}: the redraw shows {len(after)} figures instead of {len(before)}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", CORE_NOTEBOOKS or ["(none)"])
def test_notebook_runs_cleanly_in_jupyterlab(name, lab, page):
    if name == "(none)":
        skip_or_fail("no core notebooks (notebooks/01_*.ipynb ... 04_*.ipynb) exist yet")
    committed = REPO / "notebooks" / name
    committed_hash = _sha256(committed)
    expected_sources = code_cells(lab.root / "notebooks" / name)
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))

    panel = open_notebook(page, lab, name)
    try:
        wait_for_kernel_idle(page, panel, name)
        clear_all_outputs(page, panel, name)
        state = wait_until_every_cell_ran(page, panel, name, expected_sources)
        assert not state["errors"], f"{name}: error output on the page:\n" + "\n---\n".join(state["errors"])[:4000]
        assert not state["widgetErrors"], f"{name}: a widget failed to render:\n{state['widgetErrors']}"
        assert not state["textProgressFallbacks"], (
            f"{name}: a progress bar fell back to text (ipywidgets not working):\n{state['textProgressFallbacks']}")

        if expects_progress_widget(committed):
            # The widget view may attach a moment after the kernel reports idle.
            deadline = time.monotonic() + 30
            while state["progressBars"] == 0 and time.monotonic() < deadline:
                time.sleep(POLL_S)
                state = panel.evaluate(READ_PANEL)
            assert state["progressBars"] > 0, f"{name}: training shows no ipywidgets progress bar:\n{describe(state)}"
            assert state["failedProgressBars"] == 0, f"{name}: a progress bar ended in the error (red) style"

        if name.startswith("03"):
            check_temperature_slider(page, panel, name)

        assert not page_errors, f"{name}: JavaScript errors on the page: {page_errors}"
        save_full_screenshot(page, panel, SCREENSHOTS / f"{Path(name).stem}.png")
    except BaseException:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{Path(name).stem}_FAILED.png"))
        raise
    finally:
        assert _sha256(committed) == committed_hash, f"{name}: the committed notebook file was modified"
