"""`course grade`: autograde a class, write feedback and grades.csv.

One submission's trouble (damaged file, grader error) is recorded against that
student and notebook and never stops the others.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter
import tempfile
import threading
import warnings
from contextlib import AbstractContextManager, closing, nullcontext
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import pandas as pd
from nbformat import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from tqdm.auto import tqdm

from autograder import execution, judging, sandbox
from autograder.execution import Execution, Settings
from autograder.intake import Intake, Problem, collect, unpack
from autograder.layout import notebook_ids
from autograder.feedback import FeedbackPool
from autograder.nbgrader_api import alembic_head  # noqa: F401 - a gradebook without an alembic process
from autograder.nbgrader_config import COURSE_ID, course_config
from autograder.preprocessors import StderrIsNotFailure
from autograder.release import generate

# nbgrader's gradebook code trips SQLAlchemy's autoflush notices on every new submission.
warnings.filterwarnings("ignore", category=SAWarning)


@dataclass
class ClassResult:
    """Every grade of a run, in long form, plus what went wrong and where files are."""

    grades: pd.DataFrame  # student, notebook, question, kind, score, max_score
    problems: list[Problem]
    workspace: Path
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def feedback_dir(self) -> Path:
        return self.workspace / "feedback"

    @property
    def csv_path(self) -> Path:
        return self.workspace / "grades.csv"

    def totals(self) -> pd.DataFrame:
        """One row per student: autograded points, their maximum, manual points pending, notes."""
        g = self.grades
        auto = g[g.kind == "auto"].groupby("student")[["score", "max_score"]].sum()
        manual = g[g.kind == "manual"].groupby("student")["max_score"].sum().rename("manual_max")
        table = auto.join(manual, how="outer").fillna(0.0)
        notes = {}
        for p in self.problems:
            notes.setdefault(p.student or "(unknown)", []).append(p.reason)
        table["notes"] = [("; ".join(notes.get(s, [])) or "") for s in table.index]
        return table.rename(columns={"score": "auto_score", "max_score": "auto_max"})


COLUMNS = ["student", "notebook", "question", "kind", "score", "max_score"]


def _db_url(workspace: Path) -> str:
    return f"sqlite:///{workspace / 'gradebook.db'}"


def _register(nb_ids: list[str], workspace: Path) -> None:
    """Record each notebook's source cells in the gradebook (needed to restore test cells)."""
    generate(nb_ids, workspace / "release", workspace)


def _question_rows(gb: Gradebook, student: str, nb_id: str, graded: bool) -> list[dict]:
    """Scores per graded cell; zero for everything when the notebook was not graded."""
    notebook = gb.find_notebook(nb_id, nb_id)
    scores = {}
    if graded:
        try:
            submission = gb.find_submission_notebook(nb_id, nb_id, student)
            scores = {g.name: g.score for g in submission.grades}
        except MissingEntry:
            pass
    rows = []
    for cell in notebook.grade_cells:
        manual = cell.cell_type == "markdown" or cell.name in {s.name for s in notebook.solution_cells}
        rows.append(dict(student=student, notebook=nb_id, question=cell.name,
                         kind="manual" if manual else "auto",
                         score=float(scores.get(cell.name) or 0.0), max_score=float(cell.max_score)))
    return rows


def record(nb: NotebookNode, nb_id: str, student: str, workspace: Path, note: str | None = None,
           writing: AbstractContextManager = nullcontext()) -> NotebookNode:
    """Save an executed submission's scores in the gradebook and as autograded/ notebook.

    ``writing`` is held while the gradebook is written (SQLite takes one writer at a
    time); the rest runs outside it."""
    from nbgrader import preprocessors as pp

    config = course_config(workspace)
    resources = {"nbgrader": {"notebook": nb_id, "assignment": nb_id, "student": student,
                              "db_url": config.CourseDirectory.db_url}}
    for preprocessor in (pp.LimitOutput, StderrIsNotFailure):
        nb, resources = preprocessor(config=config).preprocess(nb, resources)
    with writing:
        with Gradebook(_db_url(workspace), COURSE_ID) as gb:
            gb.update_or_create_student(student)
            gb.update_or_create_submission(nb_id, student)
        nb, resources = pp.SaveAutoGrades(config=config).preprocess(nb, resources)
    if note:  # say why at the top of the feedback and of the formgrader's view
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Grader note:** {note}."))
    target = autograded_path(workspace, student, nb_id)
    if target.parent.exists():
        shutil.rmtree(target.parent)
    target.parent.mkdir(parents=True)
    nbformat.write(nb, target)
    return nb


def autograded_path(workspace: Path, student: str, nb_id: str) -> Path:
    return workspace / "autograded" / student / nb_id / f"{nb_id}.ipynb"


class NotPrepared(Exception):
    """A submission nbgrader's sanitizers could not read (damaged cells, metadata)."""


@dataclass
class Graded:
    """One submission, executed and recorded in the gradebook; its feedback page rendering."""

    run: Execution
    feedback: Future  # of the page's path


class ClassRun:
    """What the grading threads share: settings, the fork servers, the feedback
    processes, and the one lock every gradebook write takes (SQLite, one writer;
    readers, such as sanitizing and the feedback renderers, need none)."""

    def __init__(self, workspace: Path, settings: Settings, nb_ids: list[str], workers: int):
        self.workspace, self.settings, self.workers = workspace, settings, workers
        self.demos = {nb_id: execution.demo_cells(nb_id) for nb_id in nb_ids}
        self.gradebook = threading.Lock()
        self.servers = execution.sessions(workspace, settings, nb_ids)
        self.servers.prestart(workers)
        try:
            self.feedback = FeedbackPool(workspace, workers)
        except BaseException:
            self.servers.close()
            raise

    def close(self) -> None:
        try:
            self.servers.close()
        finally:
            self.feedback.close()

    def grade(self, student: str, nb_id: str, source: Path) -> Graded:
        """Sanitize, execute and record one submission, and hand its page to a renderer."""
        demos = self.demos[nb_id]
        try:
            sanitized, changed = execution.sanitize(source, nb_id, student, self.workspace, demos)
        except Exception as exc:  # noqa: BLE001 - reported against this submission only
            raise NotPrepared(f"{exc.__class__.__name__}: {str(exc)[:120]}") from exc
        run = self._execute(student, nb_id, source, sanitized)
        if changed:
            run.note = "; ".join(changed + ([run.note] if run.note else []))
        record(run.notebook, nb_id, student, self.workspace, run.note, writing=self.gradebook)
        return Graded(run, self.feedback.submit(autograded_path(self.workspace, student, nb_id), nb_id, student))

    def _execute(self, student: str, nb_id: str, source: Path, sanitized: NotebookNode) -> Execution:
        """Run it with the demos skipped; again in full if a test missed a name a demo defines."""
        settings, demos = self.settings, self.demos[nb_id]
        seed = judging.student_seed(self.workspace, student, nb_id)
        skip = settings.skip_demos and bool(demos.cells)
        run = execution.run(sanitized, nb_id, self.servers, source, settings, skip_demos=skip, judge_seed=seed)
        if skip and execution.needs_full_run(run.notebook, demos):
            full = execution.run(sanitized, nb_id, self.servers, source, settings, skip_demos=False, judge_seed=seed)
            full.seconds += run.seconds
            run = full
        return run


def usable_cpus() -> int:
    """CPUs this process may run on (a container's CPU set, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def notebooks_due(intake: Intake, nb_ids: list[str] | None) -> dict[str, set[str]]:
    """The notebooks each student is graded on.

    With ``nb_ids`` (the notebooks the class was given): those, for everyone. Otherwise
    each student's own hand-ins, plus every notebook more than half of the class handed
    in, which a student without it is reported as missing (a class handing in one
    notebook each, not all the same, is not told it missed the others).
    """
    handed = {s: set(nbs) for s, nbs in intake.notebooks.items()}
    for p in intake.problems:
        if p.student and p.notebook:
            handed.setdefault(p.student, set()).add(p.notebook)
    students = intake.students
    if nb_ids:
        return {s: set(nb_ids) for s in students}
    counts = Counter(nb for nbs in handed.values() for nb in nbs)
    common = {nb for nb, n in counts.items() if n > len(students) / 2}
    return {s: handed.get(s, set()) | common for s in students}


def grade_class(submissions: Path, workspace: Path, nb_ids: list[str] | None = None,
                workers: int | None = None, settings: Settings | None = None) -> ClassResult:
    """Grade every submission found under ``submissions`` (a folder or a zip).

    ``workers`` submissions (default: one per CPU) are graded at once, each from start
    to end by one worker: sanitized, run in its own sandbox, recorded in the gradebook
    (its writes one at a time, under a lock) and its feedback page handed to a renderer
    process, which renders it while the worker goes on to its next submission.
    """
    settings = settings or Settings()
    if settings.sandboxed:
        ok, why = sandbox.check_sandbox()
        if not ok:
            raise SystemExit(f"error: cannot grade in the sandbox: {why}")
    workers = max(1, workers or usable_cpus())
    known = notebook_ids()
    workspace.mkdir(parents=True, exist_ok=True)
    judging.ensure_secret(workspace)
    with tempfile.TemporaryDirectory(prefix="intake-", dir=workspace) as tmp:
        intake: Intake = collect(unpack(submissions, Path(tmp)), known)
        due = notebooks_due(intake, nb_ids)
        wanted = sorted(set().union(*due.values())) or nb_ids or []
        if wanted:
            _register(wanted, workspace)
        problems = list(intake.problems)
        jobs = []
        for student in intake.students:
            if not due[student] and not any(p.student == student for p in intake.problems):
                problems.append(Problem(student, "", "no notebook was handed in"))
            for nb_id in sorted(due[student]):
                source = intake.notebooks.get(student, {}).get(nb_id)
                if source is not None:
                    jobs.append((student, nb_id, source))
                elif not any(p.student == student and p.notebook == nb_id for p in intake.problems):
                    problems.append(Problem(student, f"{nb_id}.ipynb", f"{nb_id}.ipynb was not submitted", nb_id))

        graded: dict[tuple[str, str], Future] = {}  # each graded submission's feedback page
        seconds: dict[tuple[str, str], float] = {}
        workers = max(1, min(workers, len(jobs)))  # a sandbox and a renderer per worker: no idle ones
        run_state = ClassRun(workspace, settings, wanted, workers) if jobs else None
        with closing(run_state) if run_state else nullcontext(), ThreadPoolExecutor(max_workers=workers) as threads:
            futures = {threads.submit(run_state.grade, *job): job for job in jobs}
            for future in tqdm(as_completed(futures), total=len(futures), desc="grading", unit="notebook"):
                student, nb_id, _ = futures[future]
                try:
                    done = future.result()
                    run, graded[(student, nb_id)] = done.run, done.feedback
                    seconds[(student, nb_id)] = run.seconds
                    if run.note:
                        problems.append(Problem(student, f"{nb_id}.ipynb", run.note, nb_id))
                except NotPrepared as exc:
                    problems.append(Problem(student, f"{nb_id}.ipynb", f"could not be prepared for grading ({exc})", nb_id))
                except Exception as exc:  # noqa: BLE001 - one bad notebook never stops the class
                    problems.append(Problem(student, f"{nb_id}.ipynb", f"grader error: {_first_line(exc)}", nb_id))
        for (student, nb_id), page in graded.items():  # all rendered: the renderers have closed
            if page.exception() is not None:  # the scores stand; only the page is missing
                problems.append(Problem(student, f"{nb_id}.ipynb",
                                        f"no feedback page: {_first_line(page.exception())}", nb_id))

    with Gradebook(_db_url(workspace), COURSE_ID) as gb:
        rows = [row for student in intake.students for nb_id in sorted(due[student])
                for row in _question_rows(gb, student, nb_id, (student, nb_id) in graded)]
    result = ClassResult(pd.DataFrame(rows, columns=COLUMNS), problems, workspace, seconds)
    (workspace / "problems.json").write_text(json.dumps([asdict(p) for p in problems], indent=1))
    write_grades_csv(result)
    return result


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else exc.__class__.__name__)[:160]


def export_from_gradebook(workspace: Path) -> Path:
    """grades.csv from the gradebook as it is now, hand-graded scores included."""
    if not (workspace / "gradebook.db").exists():
        raise SystemExit(f"error: no gradebook in {workspace}; run `course grade` first")
    with Gradebook(_db_url(workspace), COURSE_ID) as gb:
        rows = []
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                rows += _question_rows(gb, submission.student.id, assignment.name, True)
    saved = workspace / "problems.json"
    problems = [Problem(**p) for p in json.loads(saved.read_text())] if saved.exists() else []
    return write_grades_csv(ClassResult(pd.DataFrame(rows, columns=COLUMNS), problems, workspace))


def write_grades_csv(result: ClassResult) -> Path:
    """grades.csv: one row per student, one column per question, then totals and notes."""
    g = result.grades
    wide = g.pivot_table(index="student", columns=["notebook", "question"], values="score", aggfunc="sum")
    wide.columns = [f"{nb}/{q}" for nb, q in wide.columns]
    totals = result.totals()
    wide = wide.join(totals)
    wide.index.name = "student"
    wide.to_csv(result.csv_path)
    return result.csv_path
