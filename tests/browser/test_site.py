"""The rendered site (docs/site), built offline from the committed outputs, read in headless Chromium.

The site is built once per session with Sphinx and myst-nb, nothing executed, inside a network namespace
with no network where the system allows one (``unshare --net``) and with warnings as errors, so a build
that tried to fetch anything (an intersphinx inventory, a remote image) fails. ``KDUTILS_SITE_DIR=build/site``
reuses a build instead. It is served on 127.0.0.1; the browser may
load nothing from elsewhere. Starting at the landing page, the test clicks "next" through every page, as a
reader would, and on each notebook page checks that every figure the notebook's committed outputs hold is
shown (each image loaded, naturalWidth > 0), that "previous" leads back to the page it came from, and
that the site's home link leads to the landing page.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urljoin

import pytest

from .conftest import REPO

pytestmark = pytest.mark.browser

INSTRUCTOR = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENT = sorted((REPO / "notebooks" / "student").glob("[0-9][0-9]_*.ipynb"))
LANDING = "docs/site/index.html"
# The reading order of the site's table of contents: landing page, instructor notebooks, student edition, guide.
PAGES = [LANDING, *(p.relative_to(REPO).with_suffix(".html").as_posix() for p in INSTRUCTOR + STUDENT),
         "docs/teaching.html"]

READ_PAGE = """
() => ({
  figures: [...document.querySelectorAll('.cell_output img')].map(
    (img) => ({src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0})),
  previous: document.querySelector('a.left-prev')?.href ?? null,
  next: document.querySelector('a.right-next')?.href ?? null,
  home: document.querySelector('a.navbar-brand')?.href ?? null,
  title: document.title,
})
"""


def committed_figures(notebook: Path) -> int:
    """How many image outputs the committed notebook holds (each becomes one <img> on its page)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return sum(1 for cell in cells for output in cell.get("outputs", [])
               if any(key.startswith("image/") for key in output.get("data", {})))


def offline_prefix() -> list[str]:
    """``unshare`` into a network namespace of no network where this system allows it, else nothing."""
    unshare = shutil.which("unshare")
    for attempt in ([unshare, "--net"], [unshare, "--map-root-user", "--net"]) if unshare else ():
        if subprocess.run([*attempt, "true"], capture_output=True).returncode == 0:
            return attempt
    return []


def build_site(out: Path) -> Path:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # and no proxy to fall back on
    command = [*offline_prefix(), sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
               "-c", str(REPO / "docs" / "site"), str(REPO), str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (f"the site did not build: {' '.join(command)}\n"
                                  f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return out


@pytest.fixture(scope="module")
def site(chromium_executable, tmp_path_factory) -> Path:
    try:
        import myst_nb  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    except ImportError as error:
        from .conftest import skip_or_fail

        skip_or_fail(f"the site's tools are not installed (pip install -e '.[site]'): {error}")
    reuse = os.environ.get("KDUTILS_SITE_DIR")
    return Path(reuse).resolve() if reuse else build_site(tmp_path_factory.mktemp("site") / "html")


@pytest.fixture(scope="module")
def served(site):
    """The built site on a free port of 127.0.0.1, served from a thread of this process."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports what matters
        pass


@pytest.fixture
def reader(browser, served):
    """A page that may load only from the local server: anything else is refused, and listed."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    refused: list[str] = []

    def only_local(route):
        if route.request.url.startswith(served):
            return route.continue_()
        refused.append(route.request.url)
        return route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page, refused
    finally:
        context.close()


def test_the_top_of_the_site_leads_to_the_landing_page(reader, served):
    page, _ = reader
    page.goto(served)
    page.wait_for_url(served + LANDING)
    assert "Knowledge distillation" in page.title()


def test_every_notebook_page_shows_its_figures_and_links_to_its_neighbours_and_home(reader, served):
    page, refused = reader
    expected = {urljoin(served, p): p for p in PAGES}
    figures_of = {p.relative_to(REPO).with_suffix(".html").as_posix(): committed_figures(p)
                  for p in INSTRUCTOR + STUDENT}
    page.goto(urljoin(served, LANDING))
    visited, problems = [], []
    for position, path in enumerate(PAGES):
        assert page.url.split("#")[0] == urljoin(served, path), f"'next' from {visited[-1:]} led to {page.url}"
        state = page.evaluate(READ_PAGE)
        visited.append(path)
        if path in figures_of:
            shown = [f for f in state["figures"] if f["loaded"]]
            if len(state["figures"]) != figures_of[path] or len(shown) != figures_of[path]:
                problems.append(f"{path}: {len(shown)} of {len(state['figures'])} images loaded, "
                                f"the notebook holds {figures_of[path]} figures")
        if position > 0 and state["previous"] != urljoin(served, PAGES[position - 1]):
            problems.append(f"{path}: 'previous' links to {state['previous']}, not {PAGES[position - 1]}")
        if urljoin(served, str(state["home"])) != urljoin(served, LANDING):
            problems.append(f"{path}: the home link goes to {state['home']}")
        if position + 1 == len(PAGES):
            assert state["next"] is None, f"the last page links on to {state['next']}"
            break
        assert expected.get(state["next"]) == PAGES[position + 1], f"{path}: 'next' links to {state['next']}"
        page.locator("a.right-next").click()
        page.wait_for_load_state()
    assert visited == PAGES
    assert not problems, "\n".join(problems)
    assert sum(figures_of.values()) > 20  # the check looked at real figures
    page.locator("a.navbar-brand").first.click()
    page.wait_for_url(urljoin(served, LANDING))
    # The pages ask for nothing from the network but, on pages with formulas, MathJax from its CDN.
    assert all("mathjax" in url.lower() for url in refused), sorted(set(refused))
