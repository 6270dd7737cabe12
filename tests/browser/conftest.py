"""A real JupyterLab server and a headless Chromium, for the browser tests.

The server runs on 127.0.0.1, on a free port, with a random token, opening no browser itself. It
serves a temporary copy of the notebooks, so running them can never modify the committed files,
and its configuration, runtime, settings and workspace folders are temporary too, so nothing
leaks into (or out of) the user's own Jupyter set-up. Autosave is off and every cell is kept in the
page (no virtual scrolling), so the tests can inspect the whole notebook.

Both are stopped at the end of the session even when a test fails: kernels are shut down through
the REST API, the server is terminated, and any of its child processes still alive are killed by
process id. Chromium is driven by Playwright from PyPI with Debian's ``/usr/bin/chromium``
(``playwright install`` is never needed).

Without Chromium or Playwright the tests skip with the reason; in CI (``CI=true``) that is a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "artifacts" / "screenshots"
SERVER_START_TIMEOUT_S = 180

CHROMIUM_ARGS = [
    "--no-sandbox",  # needed when running as root (CI containers)
    "--disable-gpu",
    "--disable-dev-shm-usage",  # small /dev/shm in containers
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
]

# JupyterLab user settings for the test server (written into a temporary settings folder).
LAB_SETTINGS = {
    # Never write the notebook back to disk.
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # Keep every cell in the DOM, so every prompt and output can be inspected.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No news feed or update check: no network, no pop-up over the notebook.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_or_fail(reason: str):
    """Skip locally, fail in CI: there a missing browser must not pass silently."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure rather than a skip)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server serving ``root`` (which holds a copy of ``notebooks/``)."""

    base_url: str
    token: str
    root: Path
    process: subprocess.Popen
    log_path: Path

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(self.url(f"api/{path}"), method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def shut_down_sessions(self) -> None:
        """Close every notebook session and kernel, so the next notebook starts from a clean server."""
        for session in self.api("GET", "sessions") or []:
            self.api("DELETE", f"sessions/{session['id']}")
        for kernel in self.api("GET", "kernels") or []:
            self.api("DELETE", f"kernels/{kernel['id']}")


def _wait_until_ready(lab: Lab) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {lab.process.returncode}:\n{lab.log_tail()}")
        try:
            lab.api("GET", "status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_TIMEOUT_S} s:\n{lab.log_tail()}")


def _stop_process_tree(process: subprocess.Popen) -> None:
    """Terminate ``process`` and every process it started (kernels), by process id."""
    import psutil  # installed with ipykernel

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if process.poll() is None:
        process.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (on Debian or Ubuntu: sudo apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("the Python package playwright is not installed (pip install -r requirements.txt)")
    return CHROMIUM


@pytest.fixture(scope="session")
def lab(chromium_executable, tmp_path_factory):
    """A JupyterLab server on a free local port, serving a temporary copy of notebooks/."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "served"
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    # The notebooks find the data through kdutils (installed from the repository), but a notebook
    # that looks for ../data finds the repository's data folder here as well.
    (root / "data").symlink_to(REPO / "data", target_is_directory=True)

    settings = home / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPLBACKEND"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    token = secrets.token_hex(24)
    port = free_port()
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = Lab(f"http://127.0.0.1:{port}", token, root, process, log_path)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        try:
            if process.poll() is None:
                server.shut_down_sessions()
        except (urllib.error.URLError, OSError):
            pass  # the server is stopped below regardless
        _stop_process_tree(process)


@pytest.fixture(scope="session")
def browser(chromium_executable):
    """Headless Debian Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=str(chromium_executable), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser, lab):
    """A fresh browser page (own cookies and storage); the server's kernels are shut down afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
    finally:
        context.close()
        lab.shut_down_sessions()
