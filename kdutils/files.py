"""Where the series keeps its files (the data folder, shared by datasets and checkpoints), and how it writes them."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DATA_DIR_ENV", "atomic_write", "default_root"]

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


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Write the file at ``path`` all at once: a reader sees the old file (or none), or the whole new one.

    Yields the path of a temporary file in the same folder, ``.<stem>.<random>.part<suffix>`` (the real
    suffix last, for writers that check it, such as ``torch.export.save``); write it in the block. When the
    block ends without an error, the file is flushed to disk and renamed over ``path`` (a rename within a
    folder is atomic); when it raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "r+b") as written:
            os.fsync(written.fileno())  # on disk before the rename: a crash never leaves a half-written file
        os.chmod(tmp, 0o644)  # mkstemp makes it private; data, checkpoints and notebooks are for everyone
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
