"""What the course tools share about notebooks: reading, writing and running them, and what an exercise is.

* ``read``, ``dumps`` (formatted as the committed notebooks are) and ``cell_source``;
* ``execute``: run a notebook top to bottom in a fresh kernel (nbclient, as nbval does), recording no
  timestamps in the cells' metadata;
* ``CHECK_CALL``: an exercise is a code cell that calls ``check_<exercise>(...)``;
* worked answers: a ``<details>`` block of a markdown cell whose ``<summary>`` says "Solution" or
  "Answer". ``worked_answers`` finds their code (to run them), ``without_worked_answers`` cuts them out
  (for the student edition).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

__all__ = [
    "CHECK_CALL",
    "WorkedAnswer",
    "cell_source",
    "dumps",
    "execute",
    "read",
    "worked_answers",
    "without_worked_answers",
]

#: A call of an exercise's check; ``exercise`` is its name without ``check_``.
CHECK_CALL = re.compile(r"\bcheck_(?P<exercise>\w+)\(")
#: A ``<details>`` block with its ``<summary>``, and the blank space after it up to the end of the line.
DETAILS_BLOCK = re.compile(
    r"<details\b[^>]*>\s*<summary\b[^>]*>(?P<summary>.*?)</summary>(?P<body>.*?)</details>[ \t]*\n?", re.S | re.I)
ANSWER_SUMMARY = re.compile(r"solution|answer", re.I)
PYTHON_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def cell_source(cell: dict) -> str:
    """A cell's source as one string (a notebook file may store it as a list of lines)."""
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def read(path: str | Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` (nbformat 4)."""
    return nbformat.read(Path(path), as_version=4)


def dumps(notebook: dict) -> str:
    """``notebook`` as the text of a file, formatted as nbformat writes it (sorted keys, indent 1)."""
    return json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def execute(notebook: nbformat.NotebookNode, folder: str | Path, *, timeout: float | None = None,
            **options) -> NotebookClient:
    """Run ``notebook`` top to bottom in a fresh kernel started in ``folder``; its cells get their outputs.

    ``timeout`` bounds each cell (``None``: no bound); ``options`` go to ``nbclient.NotebookClient``
    (``allow_errors``, ``kernel_name``, ...). No timestamps are recorded in the cells' metadata: they
    would change the file on every run without telling a reader anything.
    """
    client = NotebookClient(notebook, timeout=timeout, record_timing=False,
                            resources={"metadata": {"path": str(folder)}}, **options)
    client.execute()
    return client


def _answer_blocks(source: str) -> list[re.Match]:
    return [block for block in DETAILS_BLOCK.finditer(source) if ANSWER_SUMMARY.search(block["summary"])]


@dataclass(frozen=True)
class WorkedAnswer:
    """One ```python fence of a worked answer: the markdown cell it is in, its code, and the answer's words."""

    cell: int
    code: str
    answer: str


def worked_answers(notebook: dict) -> list[WorkedAnswer]:
    """The code of every worked answer, one entry per ```python fence, in the notebook's order."""
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        for block in _answer_blocks(cell_source(cell)):
            words = PYTHON_FENCE.sub("", block["body"]).strip()  # the answer's words, without its code
            found += [WorkedAnswer(index, fence.group(1), words) for fence in PYTHON_FENCE.finditer(block["body"])]
    return found


def without_worked_answers(source: str) -> str:
    """A markdown cell's source with its worked answers cut out (the questions stay).

    Raises ``ValueError`` for a worked answer that holds a nested ``<details>`` block: where it ends
    cannot be told from the text.
    """
    blocks = _answer_blocks(source)
    if not blocks:
        return source
    text, end = "", 0
    for block in blocks:
        text += source[end : block.start()]
        end = block.end()
    text += source[end:]
    if text.count("</details>") > len(re.findall(r"<details\b", text)):
        raise ValueError("a worked answer holds a nested <details> block, which cannot be cut out.")
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
