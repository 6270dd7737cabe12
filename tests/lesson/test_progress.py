"""kdutils.progress: a saved notebook's progress bar reads as it ended, not "0%", where widgets do not render."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from ..helpers import WIDGET


def run_cell(source: str) -> list:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    return notebook.cells[0].outputs


def test_a_finished_bar_is_saved_with_its_final_text_beside_the_widget():
    outputs = run_cell("from kdutils.progress import tqdm\n"
                       "for _ in tqdm(range(7), desc='teacher', unit='epoch'):\n    pass\n"
                       "for _ in tqdm(range(3), desc='off', disable=True):\n    pass\n"
                       "print('after')")
    bars = [output for output in outputs if WIDGET in output.get("data", {})]
    assert len(bars) == 1  # a disabled bar shows nothing
    text = bars[0]["data"]["text/plain"]
    assert text.startswith("teacher: 100%") and "7/7" in text
    assert outputs[-1]["text"] == "after\n"


def test_an_interrupted_bar_is_saved_where_it_stopped():
    outputs = run_cell("from kdutils.progress import tqdm\n"
                       "bar = tqdm(total=10, desc='run')\nbar.update(4)\nbar.close()")
    [bar] = [output for output in outputs if WIDGET in output.get("data", {})]
    assert bar["data"]["text/plain"].startswith("run:  40%") and "4/10" in bar["data"]["text/plain"]


def test_outside_a_notebook_it_is_tqdms_text_bar(capsys):
    from kdutils.progress import tqdm

    assert list(tqdm(range(3), desc="plain")) == [0, 1, 2]
    assert "plain: 100%" in capsys.readouterr().err
