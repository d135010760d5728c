"""`course grade`: autograde a class, write feedback and grades.csv.

Each submission goes through the course's one pipeline: the sanitize and autograde
preprocessor lists of autograder/nbgrader_config.py (autograder/pipeline.py), on
fork servers in the sandbox, several at once. One submission's trouble (damaged file,
grader error) is recorded against that student and notebook and never stops the
others. grades.csv is written from the whole gradebook (autograder/grades.py).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd
from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning
from tqdm.auto import tqdm

from autograder import execution, grades, judging, pipeline, sandbox
from autograder.execution import Settings
from autograder.feedback import FeedbackPool
from autograder.intake import Intake, Problem, collect, copy_submission, describe, unpack
from autograder.layout import notebook_ids
from autograder.nbgrader_api import make_api
from autograder.nbgrader_config import AUTOGRADE, SANITIZE, course_config
from autograder.release import generate

# nbgrader's gradebook code trips SQLAlchemy's autoflush notices on every new submission.
warnings.filterwarnings("ignore", category=SAWarning)


@dataclass
class ClassResult:
    """The grades of the students in this run, in long form, what went wrong, and where files are."""

    grades: pd.DataFrame  # student, notebook, question, kind, score (None: awaits hand grading), max_score
    problems: list[Problem]
    workspace: Path
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def feedback_dir(self) -> Path:
        return self.workspace / "feedback"

    @property
    def csv_path(self) -> Path:
        return self.workspace / "grades.csv"

    def totals(self) -> pd.DataFrame:
        """One row per student of this run: autograded points and their maximum, hand-graded
        points and theirs, points awaiting hand grading, complete, notes."""
        return grades.totals(self.grades, self.problems)


def autograded_path(workspace: Path, student: str, nb_id: str) -> Path:
    return workspace / "autograded" / student / nb_id / f"{nb_id}.ipynb"


class NotPrepared(Exception):
    """A submission nbgrader's sanitizers could not read (damaged cells, metadata)."""


@dataclass
class Graded:
    """One submission, executed and recorded in the gradebook; its feedback page rendering."""

    notes: list[str]
    seconds: float
    feedback: Future  # of the page's path


class ClassRun:
    """What the grading threads share: the configuration, the fork servers, the feedback
    processes, and the one lock every gradebook write takes (SQLite, one writer;
    readers, such as sanitizing and the feedback renderers, need none)."""

    def __init__(self, workspace: Path, settings: Settings, nb_ids: list[str], workers: int):
        self.workspace, self.settings, self.workers = workspace, settings, workers
        self.config = course_config(workspace)
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
        resources = {"nbgrader": {"notebook": nb_id, "assignment": nb_id, "student": student,
                                  "db_url": grades.db_url(self.workspace), "notes": []},
                     "metadata": {"path": str(source.parent)},
                     "autograder": {"sessions": self.servers, "settings": self.settings}}
        try:
            nb = nbformat.read(source, as_version=4)
            nb, resources = pipeline.run(pipeline.chain(self.config, SANITIZE), nb, resources)
        except Exception as exc:  # noqa: BLE001 - reported against this submission only
            raise NotPrepared(f"{exc.__class__.__name__}: {str(exc)[:120]}") from exc

        def new_submission():
            with Gradebook(grades.db_url(self.workspace)) as gb:
                gb.update_or_create_submission(nb_id, student)
            copy_submission(source, self.workspace / "submitted" / student / nb_id, nb_id)

        nb, resources = pipeline.run(pipeline.chain(self.config, AUTOGRADE), nb, resources,
                                     writing=self.gradebook, before_writing=new_submission)
        target = autograded_path(self.workspace, student, nb_id)
        if target.parent.exists():
            shutil.rmtree(target.parent)
        target.parent.mkdir(parents=True)
        nbformat.write(nb, target)
        page = self.feedback.submit(target, nb_id, student)
        return Graded(resources["nbgrader"]["notes"], resources["autograder"].get("seconds", 0.0), page)


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


def _register(nb_ids: list[str], workspace: Path, intake: Intake) -> None:
    """Record each notebook's source cells in the gradebook (needed to restore test cells),
    release it into the workspace's exchange (so the formgrader lists it as released),
    and record every student of the batch with their name and LMS id."""
    generate(nb_ids, workspace / "release", workspace)
    api = make_api(workspace, release_directory=workspace / "release")
    for nb_id in nb_ids:
        api.release_assignment(nb_id)  # a failure here only leaves the formgrader's status a draft
    with Gradebook(grades.db_url(workspace)) as gb:
        for student in intake.students:
            first, _, last = intake.names.get(student, student).strip().rpartition(" ")
            gb.update_or_create_student(student, first_name=first or None, last_name=last or None,
                                        lms_user_id=intake.lms_ids.get(student))


def grade_class(submissions: Path, workspace: Path, nb_ids: list[str] | None = None,
                workers: int | None = None, settings: Settings | None = None) -> ClassResult:
    """Grade every submission found under ``submissions`` (a folder or a zip).

    ``workers`` submissions (default: one per CPU) are graded at once, each from start
    to end by one worker: sanitized, run in its own sandbox, recorded in the gradebook
    (its writes one at a time, under a lock) and its feedback page handed to a renderer
    process, which renders it while the worker goes on to its next submission. An input
    with nothing to grade stops with SystemExit before the workspace is touched; grades.csv
    is written again from the whole gradebook.
    """
    settings = settings or Settings()
    workers = max(1, workers or usable_cpus())
    known = notebook_ids()
    with tempfile.TemporaryDirectory(prefix="course-intake-") as tmp:
        root, damaged = unpack(submissions, Path(tmp))
        intake: Intake = collect(root, known, damaged)
        if not intake.usable:
            raise SystemExit(f"error: nothing to grade in {submissions}: no notebook of the course was found "
                             f"({describe(root)}); expected <student>/<NN_topic>.ipynb, Moodle folders "
                             "(Name_123_assignsubmission_file_/) or Canvas files (name_123_456_<NN_topic>.ipynb). "
                             "Nothing was changed.")
        if settings.sandboxed:
            ok, why = sandbox.check_sandbox()
            if not ok:
                raise SystemExit(f"error: cannot grade in the sandbox: {why}")
        workspace.mkdir(parents=True, exist_ok=True)
        judging.ensure_secret(workspace)
        due = notebooks_due(intake, nb_ids)
        wanted = sorted(set().union(*due.values())) or nb_ids or []
        _register(wanted, workspace, intake)
        problems = list(intake.problems)
        jobs = []
        for student in intake.students:
            if not due[student] and not any(p.student == student for p in intake.problems):
                problems.append(Problem(student, "", _nothing_handed_in(intake.other_files.get(student, []))))
            for nb_id in sorted(due[student]):
                source = intake.notebooks.get(student, {}).get(nb_id)
                if source is not None:
                    jobs.append((student, nb_id, source))
                elif not any(p.student == student and p.notebook == nb_id for p in intake.problems):
                    problems.append(Problem(student, f"{nb_id}.ipynb", f"{nb_id}.ipynb was not submitted", nb_id))
        for student in intake.students:  # say what they did hand in, when it was not a notebook
            others = intake.other_files.get(student, [])
            if others and not intake.notebooks.get(student) and due[student]:
                problems.append(Problem(student, others[0], "handed in " + ", ".join(others[:5])
                                        + ": not a notebook of the course"))

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
                    graded[(student, nb_id)] = done.feedback
                    seconds[(student, nb_id)] = done.seconds
                    if done.notes:
                        problems.append(Problem(student, f"{nb_id}.ipynb", "; ".join(done.notes), nb_id))
                except NotPrepared as exc:
                    problems.append(Problem(student, f"{nb_id}.ipynb", f"could not be prepared for grading ({exc})", nb_id))
                except Exception as exc:  # noqa: BLE001 - one bad notebook never stops the class
                    problems.append(Problem(student, f"{nb_id}.ipynb", f"grader error: {_first_line(exc)}", nb_id))
        for (student, nb_id), page in graded.items():  # all rendered: the renderers have closed
            if page.exception() is not None:  # the scores stand; only the page is missing
                problems.append(Problem(student, f"{nb_id}.ipynb",
                                        f"no feedback page: {_first_line(page.exception())}", nb_id))

    touched = {(s, nb) for s in intake.students for nb in due[s]} | {(s, None) for s in intake.students}
    grades.save_problems(workspace, problems, touched)
    result = ClassResult(grades.long_grades(workspace, intake.students), problems, workspace, seconds,
                         dict(intake.names))
    grades.write_grades_csv(workspace)
    return result


def _nothing_handed_in(others: list[str]) -> str:
    if others:
        return "no notebook was handed in (only " + ", ".join(others[:5]) + ")"
    return "no notebook was handed in"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else exc.__class__.__name__)[:160]


def export_from_gradebook(workspace: Path) -> Path:
    """grades.csv from the gradebook as it is now, hand-graded scores included."""
    if not (workspace / "gradebook.db").exists():
        raise SystemExit(f"error: no gradebook in {workspace}; run `course grade` first")
    return grades.write_grades_csv(workspace)
