"""JupyterLab for the course, in a real browser: what a student and an instructor click.

`course lab` is started on a graded class's workspace; headless Chromium (Debian's, at
/usr/bin/chromium, driven by Playwright; `make setup` installs both) opens a student
release, runs it up to its first self-check, presses nbgrader's Validate button, and
opens the formgrader, which must list the released notebook and the graded submissions;
nbgrader's Assignment List reads the workspace's exchange without an error.
Skipped, with the reason, where the browser or Playwright is missing.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from autograder import lab
from autograder.grading import grade_class
from autograder.layout import release_notebook
from autograder.sample_class import perfect
from autograder.sandbox import check_sandbox

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
NB = "01_game_theory"
playwright = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (make setup)")
pytestmark = [pytest.mark.grading, pytest.mark.timeout(300),
              pytest.mark.skipif(not CHROMIUM.exists(), reason="no browser: /usr/bin/chromium is missing "
                                 "(apt-get install chromium; make setup does it as root)"),
              pytest.mark.skipif(not check_sandbox()[0], reason=f"no sandbox here: {check_sandbox()[1]}")]


WORKSPACE: list[Path] = []  # the graded class's workspace, once the server fixture made it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(argv: list[str], cwd: Path, env: dict, log_path: Path):
    """A JupyterLab server; yields (base URL, token, log path), stops it after."""
    port, token = free_port(), secrets.token_hex(8)
    log = log_path.open("w")
    proc = subprocess.Popen(argv + ["--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                                    f"--IdentityProvider.token={token}"],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("JupyterLab did not start:\n" + log_path.read_text()[-3000:])
                time.sleep(0.5)
        yield base, token, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def home_env(home: Path) -> dict:
    return {"HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(home / "rt"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws"),
            "COURSE_QUICK": "1"}


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A student's JupyterLab on a folder holding the release as handed out (a copy: the
    Validate button saves the notebook first)."""
    home = tmp_path_factory.mktemp("student")
    (home / "work").mkdir()
    shutil.copyfile(release_notebook(NB), home / "work" / f"{NB}.ipynb")
    argv = [str(Path(sys.executable).parent / "jupyter"), "lab", f"--ServerApp.root_dir={home / 'work'}"]
    argv += ["--allow-root"] if os.geteuid() == 0 else []
    yield from start_lab(argv, home / "work", {**os.environ, **home_env(home)}, home / "lab.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`course lab`'s JupyterLab on a workspace where two students of notebook 01 were graded."""
    root = tmp_path_factory.mktemp("class")
    for folder, nb in {"Ada Byron_4001_assignsubmission_file_": perfect(NB),
                       "Ben Ode_4002_assignsubmission_file_": nbformat.read(release_notebook(NB), as_version=4)}.items():
        (root / folder).mkdir()
        nbformat.write(nb, root / folder / f"{NB}.ipynb")
    workspace = tmp_path_factory.mktemp("lab") / "ws"
    grade_class(root, workspace, workers=2)
    lab.prepare(workspace)
    WORKSPACE.append(workspace)
    home = tmp_path_factory.mktemp("home")
    yield from start_lab(lab.argv([]), lab.REPO_ROOT, {**lab.environment(workspace), **home_env(home)},
                         home / "lab.log")


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str):
    """A new tab on ``url``, waiting up to a minute for what it is asked (a cold JupyterLab is slow)."""
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    return page


def test_a_student_runs_a_self_check_and_validates(student, browser):
    base, token, log = student
    page = open_page(browser, f"{base}/lab/tree/{NB}.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    page.click(".lm-MenuBar-item:has-text('Run')")
    page.click(".lm-Menu-item:has-text('Run All Cells')")  # stops at the first error: the first self-check
    stub = page.wait_for_selector("text=best_response: replace the stub with your answer", timeout=90_000)
    assert stub is not None
    page.click("button:has-text('Validate'), .jp-ToolbarButtonComponent:has-text('Validate')")
    dialog = page.wait_for_selector(".jp-Dialog", timeout=120_000)
    text = dialog.inner_text()
    assert "Validat" in text and ("fail" in text.lower() or "error" in text.lower()), text
    assert "Error fetching" not in text
    page.close()


def test_the_formgrader_lists_the_released_notebook_and_graded_submissions(server, browser):
    base, token, log = server
    page = open_page(browser, f"{base}/formgrader?token={token}")
    row = page.wait_for_selector(f"tr:has-text('{NB}')")
    text = row.inner_text()
    assert "released" in text.lower() and "draft" not in text.lower(), text
    assert "2" in text.split(), text  # two submissions
    page.goto(f"{base}/formgrader/manage_submissions/{NB}?token={token}")
    page.wait_for_selector("tr:has-text('4001')")
    listed = page.inner_text("table")
    assert "4001" in listed and "4002" in listed, listed
    assert "Byron" in listed and "Ode" in listed, listed
    page.close()


def test_the_assignment_list_reads_the_local_exchange(server, browser):
    base, token, log = server
    page = browser.new_page()
    courses = page.request.get(f"{base}/courses?token={token}").json()
    assert courses.get("success") and "marl-course" in courses.get("value", []), courses
    page.close()
    assert "Error fetching" not in page_text(base, token, browser)


def page_text(base: str, token: str, browser) -> str:
    page = browser.new_page()
    page.goto(f"{base}/lab?token={token}")
    page.wait_for_selector(".jp-LabShell")
    page.click(".lm-MenuBar-item:has-text('Nbgrader')")
    page.click(".lm-Menu-item:has-text('Assignment List')")
    page.wait_for_selector("text=Released assignments", timeout=30_000)
    page.wait_for_timeout(2000)
    text = page.inner_text("body")
    page.close()
    return text


def test_a_feedback_page_renders_its_math_offline(server, browser):
    page_path = WORKSPACE[0] / "feedback" / "4001" / NB / f"{NB}.html"
    page = browser.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(page_path.as_uri())
    page.wait_for_selector("mjx-container svg", timeout=60_000)  # MathJax typeset the page's TeX
    assert page.locator("mjx-container").count() > 10
    assert requested and all(url.startswith("file://") for url in requested), [u for u in requested
                                                                               if not u.startswith("file://")]
    page.close()
