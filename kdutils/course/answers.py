"""Run the worked answers of a notebook's exercises, to check the numbers their words quote.

A worked answer (``kdutils.course.notebooks``) sits in a collapsed ``<details>`` block of a markdown cell,
its code in a ```` ```python ```` fence, and its words quote what that code printed when someone ran it
after the notebook. Nothing else checks those numbers: nbval runs the notebook, not its answers. This
executes a notebook top to bottom in a fresh kernel, then each answer's code in the same kernel, in
order, and returns each block's output beside the answer's words, for a maintainer to compare before a
release (``python -m kdutils.course answers NOTEBOOK...``). Nothing in the repository changes.

An answer that asks the reader to change a cell and re-run a section cannot run as it stands; its
output then shows what its code alone did (often nothing), and it has to be checked by hand.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient.exceptions import CellExecutionError

from .notebooks import WorkedAnswer, execute, read, worked_answers

__all__ = ["printed_text", "run_answers"]


def printed_text(outputs: list) -> str:
    """What a cell showed as text: its streams, its errors as ``Name: message``, its plain-text results."""
    parts = []
    for output in outputs:
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}\n")
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"] + "\n")
    return "".join(parts)


def run_answers(path: Path, timeout: int = 900) -> list[tuple[WorkedAnswer, str]]:
    """Execute the notebook at ``path``, then each of its worked answers' code in the same kernel.

    Returns each block with what it printed (an error is reported as its type and message, and the
    blocks after it still run). The notebook's own cells must run without error, as nbval requires.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}: give the path of a notebooks/NN_*.ipynb file.")
    notebook = read(path)
    blocks = worked_answers(notebook)
    if not blocks:
        return []
    first = len(notebook.cells)
    for block in blocks:
        notebook.cells.append(nbformat.v4.new_code_cell(block.code, metadata={"tags": ["raises-exception"]}))
    try:
        execute(notebook, path.parent, timeout=timeout)
    except CellExecutionError as error:
        raise RuntimeError(f"{path.name} itself failed before its worked answers ran: {error}") from None
    return [(block, printed_text(cell.outputs)) for block, cell in zip(blocks, notebook.cells[first:])]
