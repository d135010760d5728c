"""Feedback pages: the course's feedback template, rendered in processes of their own.

nbgrader's GenerateFeedback builds a new converter and compiles its templates for
every student (about a second each); one exporter kept per renderer process does
the same pages for a fraction of that, and one renderer per grading worker renders
the pages of different students in parallel. The exporter is configured as nbgrader's
would be from autograder/nbgrader_config.py: its preprocessors are that file's
GenerateFeedback list (grades and hand-grading state from the gradebook, test
tracebacks reduced to one line, any quote of hidden test code cut from the outputs,
hidden tests removed from test cells, MathJax next to the page) and its template the
course's (autograder/templates/feedback). ``course feedback`` renders every page again
from the gradebook, after hand grading (:func:`regenerate`).
"""
from __future__ import annotations

import json
import os
import queue
import select
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbformat import NotebookNode

from autograder import pipeline
from autograder.layout import REPO_ROOT
from autograder.nbgrader_config import course_config, formgrader_templates
from autograder.preprocessors import OfflineMath

BOOTSTRAP_CSS = formgrader_templates().parent / "static" / "node_modules" / "bootstrap" / "dist" / "css"


class FeedbackExporter(HTMLExporter):
    """HTMLExporter without its final pass over the page.

    That pass parses the finished page again with BeautifulSoup, only to add alt texts
    and tab stops to JupyterLab elements, which the classic feedback template does not
    have; it was 40% of a page's cost.
    """

    def from_notebook_node(self, nb, resources=None, **kw):
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        resources = self._init_resources(resources)
        self.register_filter("highlight_code",
                             self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        self.register_filter("filter_data_type",
                             WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)


class FeedbackWriter:
    """Renders and saves one student's feedback page; one exporter for many pages."""

    def __init__(self, workspace: Path):
        self.workspace = workspace
        self.config = course_config(workspace)
        self.config.HTMLExporter.template_name = "feedback"  # as nbgrader's GenerateFeedback sets it
        self.config.HTMLExporter.extra_template_paths = [str(BOOTSTRAP_CSS)]
        self.exporter = FeedbackExporter(config=self.config)
        for preprocessor in pipeline.chain(self.config, self.config.GenerateFeedback.preprocessors):
            self.exporter.register_preprocessor(preprocessor, enabled=True)

    def write(self, nb: NotebookNode, nb_id: str, student: str) -> Path:
        resources = {"unique_key": nb_id, "metadata": {"name": nb_id},
                     "nbgrader": {"notebook": nb_id, "assignment": nb_id, "student": student,
                                  "db_url": self.config.CourseDirectory.db_url}}
        html, resources = self.exporter.from_notebook_node(nb, resources=resources)
        target = self.workspace / "feedback" / student / nb_id / f"{nb_id}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        for name, data in resources.get("outputs", {}).items():
            _write_beside(target.parent / name, data)
        target.write_text(html, encoding="utf-8")
        return target


def _write_beside(path: Path, data: bytes) -> None:
    """An output file next to the page: MathJax's files as hard links to the package's
    (2 MB a page otherwise), anything else as written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in OfflineMath.FILES:
        if path.as_posix().endswith(f"mathjax/{name}"):
            source = OfflineMath.source(name)
            if path.exists() and path.stat().st_size == source.stat().st_size:
                return
            path.unlink(missing_ok=True)
            try:
                os.link(source, path)
            except OSError:  # another file system: a copy
                shutil.copyfile(source, path)
            return
    path.write_bytes(data)


# ----------------------------------------------------------------- renderer processes
class Renderer:
    """A process of its own (``python -m autograder.feedback WORKSPACE``) that renders pages.

    Requests and replies are JSON lines: {"notebook": path, "nb_id", "student"} in,
    {"page": path} or {"error": message} out.
    """

    TIMEOUT_S = 120  # a page takes well under a second; one that hangs costs only its own page

    def __init__(self, workspace: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.feedback", str(workspace)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, cwd=REPO_ROOT)

    def render(self, notebook: Path, nb_id: str, student: str) -> Path:
        request = json.dumps({"notebook": str(notebook), "nb_id": nb_id, "student": student})
        try:
            self.proc.stdin.write(request + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], self.TIMEOUT_S)
            reply = json.loads(self.proc.stdout.readline() or "null") if ready else "timeout"
        except (OSError, ValueError):
            reply = None
        if reply == "timeout":
            self.proc.kill()
            raise PageTimedOut(f"the feedback page took over {self.TIMEOUT_S} s and was abandoned")
        if not isinstance(reply, dict):
            raise RendererDied(f"the feedback renderer ended (exit {self.proc.poll()})")
        if "error" in reply:
            raise RuntimeError(f"feedback page: {reply['error']}")
        return Path(reply["page"])

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class RendererDied(RuntimeError):
    """The renderer process ended; a new one can render the page."""


class PageTimedOut(RendererDied):
    """The page hung its renderer (killed); a new renderer would hang on it too."""


class FeedbackPool:
    """``workers`` renderer processes, started at once; a page borrows one.

    Processes, not threads: rendering is pure Python, and threads would take turns on
    the GIL with each other and with the grader. ``submit`` renders in the background,
    so a grading thread goes on to its next submission while its last page renders.
    """

    def __init__(self, workspace: Path, workers: int):
        self.workspace = workspace
        self._idle: queue.Queue[Renderer] = queue.Queue()
        self._all = [Renderer(workspace) for _ in range(workers)]
        for renderer in self._all:
            self._idle.put(renderer)
        self._pages = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feedback")

    def submit(self, autograded: Path, nb_id: str, student: str) -> Future:
        """The page, rendered in the background: a future of its path."""
        return self._pages.submit(self.write, autograded, nb_id, student)

    def write(self, autograded: Path, nb_id: str, student: str) -> Path:
        """The feedback page of the autograded notebook at ``autograded``; a dead renderer is replaced once."""
        renderer = self._idle.get()
        try:
            return renderer.render(autograded, nb_id, student)
        except RendererDied as died:
            renderer.close()
            self._all.remove(renderer)
            renderer = Renderer(self.workspace)
            self._all.append(renderer)
            if isinstance(died, PageTimedOut):
                raise
            return renderer.render(autograded, nb_id, student)
        finally:
            self._idle.put(renderer)

    def close(self) -> None:
        """Finish the pages submitted, then end the renderers."""
        self._pages.shutdown(wait=True)
        for renderer in self._all:
            renderer.close()


def regenerate(workspace: Path, workers: int = 1) -> tuple[list[Path], list[tuple[str, str, str]]]:
    """Render every graded submission's page again from the gradebook as it is now (hand
    grades and comments included): the pages, and (student, notebook, why) of those that failed."""
    from nbgrader.api import Gradebook

    from autograder.grades import db_url

    if not (workspace / "gradebook.db").exists():
        raise SystemExit(f"error: no gradebook in {workspace}; run `course grade` first")
    with Gradebook(db_url(workspace)) as gb:
        pairs = sorted((s.student.id, a.name) for a in gb.assignments for s in a.submissions)
    jobs = [(student, nb_id, workspace / "autograded" / student / nb_id / f"{nb_id}.ipynb")
            for student, nb_id in pairs]
    pages, failed = [], [(s, nb, "its graded notebook is missing") for s, nb, path in jobs if not path.exists()]
    jobs = [job for job in jobs if job[2].exists()]
    if not jobs:
        return pages, failed
    pool = FeedbackPool(workspace, max(1, min(workers, len(jobs))))
    try:
        futures = [(student, nb_id, pool.submit(path, nb_id, student)) for student, nb_id, path in jobs]
        for student, nb_id, future in futures:
            try:
                pages.append(future.result())
            except Exception as exc:  # noqa: BLE001 - one page costs only itself
                failed.append((student, nb_id, str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__))
    finally:
        pool.close()
    return pages, failed


def serve(workspace: Path) -> int:
    """The renderer's loop: one page per request line, until stdin closes."""
    replies, sys.stdout = sys.stdout, sys.stderr  # nothing but replies on the reply pipe
    writer = FeedbackWriter(workspace)
    for line in sys.stdin:
        try:
            request = json.loads(line)
            nb = nbformat.read(request["notebook"], as_version=4)
            reply = {"page": str(writer.write(nb, request["nb_id"], request["student"]))}
        except Exception as exc:  # noqa: BLE001 - reported to the grader, against this page only
            reply = {"error": f"{exc.__class__.__name__}: {str(exc)[:200]}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1])))
