"""Run the worked solutions of a notebook's exercises, to check the numbers their answers quote.

A worked answer sits in a collapsed ``<details>`` block of a markdown cell, its code in a
```` ```python ```` fence, and its text quotes what that code printed when someone ran it after the
notebook. Nothing else checks those numbers: nbval runs the notebook, not its answers. This module
executes a notebook top to bottom in a fresh kernel (nbclient, as nbval does), then each solution's code
in the same kernel, in order, and prints each block's output beside the answer's text, for a maintainer to
compare before a release. Nothing in the repository changes.

    python -m kdutils.solutions notebooks/05_when_does_distillation_help.ipynb [more notebooks]

A solution that asks the reader to change a cell and re-run a section cannot run as it stands; its
output then shows what its code alone did (often nothing), and the answer has to be checked by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SolutionBlock", "run_solutions", "solution_blocks"]

DETAILS = re.compile(r"<details>(.*?)</details>", re.S)
PYTHON_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SUMMARY = re.compile(r"<summary>.*?</summary>", re.S)


@dataclass(frozen=True)
class SolutionBlock:
    """One ```python fence of a worked answer: the markdown cell it is in, its code, and the answer's words."""

    cell: int
    code: str
    answer: str


def solution_blocks(notebook: dict) -> list[SolutionBlock]:
    """Every ```python fence inside a ``<details>`` block of a markdown cell, in the notebook's order."""
    blocks = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for details in DETAILS.finditer(source):
            inside = details.group(1)
            answer = SUMMARY.sub("", PYTHON_FENCE.sub("", inside)).strip()  # the answer's words, without code
            blocks += [SolutionBlock(index, fence.group(1), answer) for fence in PYTHON_FENCE.finditer(inside)]
    return blocks


def _text(outputs: list) -> str:
    parts = []
    for output in outputs:
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}\n")
        elif "text/plain" in output.get("data", {}):
            parts.append(output["data"]["text/plain"] + "\n")
    return "".join(parts)


def run_solutions(path: Path, timeout: int = 900) -> list[tuple[SolutionBlock, str]]:
    """Execute the notebook at ``path``, then each of its solution blocks in the same kernel.

    Returns each block with what it printed (an error is reported as its type and message, and the
    blocks after it still run). The notebook's own cells must run without error, as nbval requires.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}: give the path of a notebooks/NN_*.ipynb file.")
    notebook = nbformat.read(path, as_version=4)
    blocks = solution_blocks(notebook)
    if not blocks:
        return []
    first = len(notebook.cells)
    for block in blocks:
        notebook.cells.append(nbformat.v4.new_code_cell(block.code, metadata={"tags": ["raises-exception"]}))
    client = NotebookClient(notebook, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as error:
        raise RuntimeError(f"{path.name} itself failed before its solutions ran: {error}") from None
    return [(block, _text(cell.outputs)) for block, cell in zip(blocks, notebook.cells[first:])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdutils.solutions", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks whose worked solutions to run")
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        try:
            results = run_solutions(path)
        except (FileNotFoundError, RuntimeError) as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        print(f"# {path.name}: {len(results)} solution block(s)\n")
        for number, (block, output) in enumerate(results, 1):
            print(f"## block {number} (markdown cell {block.cell})\n\n```python\n{block.code}```\n")
            print("printed:\n" + (output or "(nothing)\n"))
            print("the answer says:\n" + block.answer + "\n")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
