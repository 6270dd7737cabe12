"""kdutils.files: where the data folder is, and writes that a reader never sees half done."""

from pathlib import Path

import pytest

from kdutils import files


def test_default_root_follows_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(files.DATA_DIR_ENV, str(tmp_path))
    assert files.default_root() == tmp_path


def test_default_root_is_the_repositorys_data_folder_without_env_var(monkeypatch):
    monkeypatch.delenv(files.DATA_DIR_ENV, raising=False)
    repo = Path(files.__file__).resolve().parent.parent
    assert files.default_root() == repo / "data"


def test_default_root_of_an_installed_copy_is_the_users_cache(tmp_path, monkeypatch):
    # kdutils installed into site-packages (not from the repository): no pyproject.toml beside the package.
    installed = tmp_path / "site-packages" / "kdutils" / "files.py"
    installed.parent.mkdir(parents=True)
    monkeypatch.setattr(files, "__file__", str(installed))
    monkeypatch.delenv(files.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert files.default_root() == tmp_path / "home" / ".cache" / "kdutils"


def test_an_atomic_write_replaces_the_file_whole_and_readable_by_all(tmp_path):
    target = tmp_path / "new" / "weights.pt"
    with files.atomic_write(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".weights.") and tmp.name.endswith(".part.pt")
        tmp.write_bytes(b"first")
        assert not target.exists()  # nothing at the real name until the block ends
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == 0o644
    with files.atomic_write(target) as tmp:
        tmp.write_bytes(b"second")
    assert target.read_bytes() == b"second" and [p.name for p in target.parent.iterdir()] == ["weights.pt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "notebook.ipynb"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"), files.atomic_write(target) as tmp:
        tmp.write_text("half of the ne", encoding="utf-8")
        raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == "old" and [p.name for p in tmp_path.iterdir()] == ["notebook.ipynb"]
