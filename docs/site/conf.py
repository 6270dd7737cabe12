"""Sphinx configuration of the series' website, built from the committed notebooks without running them.

Build it from the repository root (the source folder is the repository itself, read through
``include_patterns``; this folder holds only the configuration and the landing page):

    sphinx-build -b html -c docs/site . build/site

Nothing is executed (``nb_execution_mode = "off"``): the pages show the outputs committed with the
notebooks, so the site is the run the README's results come from. Nothing is fetched while building, and
the pages load their theme from the site itself; widget outputs (progress bars) show their saved text
instead of loading the widget library from a CDN. Only pages with formulas ask MathJax's CDN for the
renderer when viewed (offline, a formula shows as its LaTeX source).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import kdutils  # noqa: E402  (the version comes from the checkout being built)

with open(REPO / "pyproject.toml", "rb") as f:
    REPOSITORY = tomllib.load(f)["project"]["urls"]["Repository"]

project = "Knowledge distillation, hands on"
author = "The knowledge-distillation notebook series contributors"
copyright = f"2026, {author}; prose and figures CC BY 4.0, code MIT"  # noqa: A001  (Sphinx's name)
release = version = kdutils.__version__

extensions = ["myst_nb"]
root_doc = "docs/site/index"  # the README, placed in it by include_readme() below
include_patterns = ["docs/site/index.md", "docs/teaching.md", "notebooks/*.ipynb", "notebooks/student/*.ipynb"]
exclude_patterns = [".git", ".venv", ".venv-*", "artifacts", "build", "data", "**/.ipynb_checkpoints"]

# The committed outputs are the lesson: never re-run a notebook to build its page.
nb_execution_mode = "off"
# Progress bars are ipywidgets; their widget library would come from a CDN, so show the saved text instead
# (kdutils.progress makes that text the bar's final state).
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.jupyter.widget-state+json", None)]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": f"v{release}",
    "path_to_docs": "",
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com", "binderhub_url": "https://mybinder.org",
                       "notebook_interface": "jupyterlab"},
    "show_navbar_depth": 1,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
# Sphinx writes the landing page to docs/site/index.html; a page at the top of the site sends visitors there.
html_extra_path = ["top"]  # relative to this folder

README_MARK = "<!-- README.md goes here (docs/site/conf.py) -->"
RELATIVE_LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s]+)\)")


def readme_for_the_site() -> str:
    """README.md with its relative links made to work from the landing page, two folders down.

    A notebook or the guide is a page of the site; any other file of the repository (LICENSE, binder/,
    benchmarks/) is linked on the code host, at this release's tag.
    """

    def rewrite(link: re.Match) -> str:
        target = link.group(1)
        path = target.split("#", 1)[0]
        if re.fullmatch(r"notebooks/(student/)?\w+\.ipynb|docs/teaching\.md", path):
            return f"](../../{target})"
        return f"]({REPOSITORY}/blob/v{release}/{target})"

    return RELATIVE_LINK.sub(rewrite, (REPO / "README.md").read_text(encoding="utf-8"))


def include_readme(app, docname: str, source: list[str]) -> None:
    if docname == root_doc:
        source[0] = source[0].replace(README_MARK, readme_for_the_site())


def setup(app):
    app.connect("source-read", include_readme)
