from pathlib import Path

from kdutils import paths


def test_default_root_follows_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
    assert paths.default_root() == tmp_path


def test_default_root_is_the_repositorys_data_folder_without_env_var(monkeypatch):
    monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
    repo = Path(paths.__file__).resolve().parent.parent
    assert paths.default_root() == repo / "data"
