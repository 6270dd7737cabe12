"""Where the series keeps its files: the data folder, shared by datasets and checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "default_root"]

#: Set this environment variable to keep datasets and checkpoints somewhere other than ``data/``.
DATA_DIR_ENV = "KDUTILS_DATA_DIR"


def default_root() -> Path:
    """The folder datasets and checkpoints live in.

    ``$KDUTILS_DATA_DIR`` if set, else the repository's ``data/`` folder (kdutils is installed in
    editable mode from the repository), else ``~/.cache/kdutils``.
    """
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        return repo / "data"
    return Path.home() / ".cache" / "kdutils"
