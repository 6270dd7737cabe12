"""The version is written once (kdutils.__version__) and every file that states it agrees."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import kdutils

REPO = Path(__file__).resolve().parent.parent


def cff_field(name: str) -> str:
    """A top-level scalar of CITATION.cff (quotes stripped); a plain reader keeps PyYAML out of the tests."""
    text = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    match = re.search(rf"^{name}:\s*(.+?)\s*$", text, flags=re.MULTILINE)
    assert match, f"CITATION.cff has no top-level '{name}:'"
    return match.group(1).strip("\"'")


def changelog_releases() -> list[tuple[str, str]]:
    """(version, date) of every release heading of CHANGELOG.md, newest first, Unreleased left out."""
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    return re.findall(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", text, flags=re.MULTILINE)


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_the_version_is_written_once_and_read_by_pyproject():
    project = pyproject()
    assert "version" not in project["project"], "pyproject.toml must not repeat the version"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "kdutils.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|rc\d+)?", kdutils.__version__)


def test_citation_and_changelog_agree_with_the_package():
    releases = changelog_releases()
    assert releases, "CHANGELOG.md has no release heading such as '## [1.0.0] - 2026-12-06'"
    newest_version, newest_date = releases[0]
    assert newest_version == kdutils.__version__
    assert cff_field("version") == kdutils.__version__
    assert cff_field("date-released") == newest_date


def test_changelog_keeps_an_unreleased_section_on_top_and_releases_in_order():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    versions = [tuple(int(part) for part in v.split(".")) for v, _ in changelog_releases()]
    assert versions == sorted(versions, reverse=True), "newest release first"


def test_citation_and_changelog_name_the_repository_pyproject_names():
    repository = pyproject()["project"]["urls"]["Repository"]
    assert cff_field("repository-code") == repository
    links = re.findall(r"^\[[^\]]+\]: (\S+)$", (REPO / "CHANGELOG.md").read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert links and all(link.startswith(repository + "/") for link in links)


def test_licence_files_say_which_applies_where():
    assert "MIT License" in (REPO / "LICENSE").read_text(encoding="utf-8")
    content = (REPO / "LICENSE-content").read_text(encoding="utf-8")
    assert "CC BY 4.0" in content and "kdutils/corpora/american-english.COPYRIGHT" in content
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "LICENSE-content" in readme and "(LICENSE)" in readme
