"""`course grade`: autograde a class with nbgrader, write feedback and grades.csv.

One submission's trouble (damaged file, grader error) is recorded against that
student and notebook and never stops the others.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from tqdm.auto import tqdm

from autograder.intake import Intake, Problem, collect, unpack
from autograder.layout import notebook_ids
from autograder.nbgrader_api import NbgraderError, checked, make_api
from autograder.nbgrader_config import COURSE_ID
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


def _place_submission(workspace: Path, student: str, nb_id: str, source: Path) -> None:
    folder = workspace / "submitted" / student / nb_id
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(source, folder / f"{nb_id}.ipynb")
    # Files the student handed in beside the notebook (data, helpers) go along.
    for extra in source.parent.iterdir():
        if extra.is_file() and extra.suffix != ".ipynb":
            shutil.copyfile(extra, folder / extra.name)


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


def grade_class(submissions: Path, workspace: Path, nb_ids: list[str] | None = None) -> ClassResult:
    """Grade every submission found under ``submissions`` (a folder or a zip)."""
    known = notebook_ids()
    workspace.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="intake-", dir=workspace) as tmp:
        intake: Intake = collect(unpack(submissions, Path(tmp)), known)
        wanted = nb_ids or sorted({nb for nbs in intake.notebooks.values() for nb in nbs}) or known
        _register(wanted, workspace)
        api = make_api(workspace)
        problems = list(intake.problems)
        graded: set[tuple[str, str]] = set()
        seconds: dict[tuple[str, str], float] = {}
        jobs = [(s, nb) for s in intake.students for nb in wanted]
        for student, nb_id in tqdm(jobs, desc="grading", unit="notebook"):
            source = intake.notebooks.get(student, {}).get(nb_id)
            if source is None:
                if not any(p.student == student and p.notebook == nb_id for p in intake.problems):
                    problems.append(Problem(student, f"{nb_id}.ipynb", f"{nb_id}.ipynb was not submitted", nb_id))
                continue
            start = time.perf_counter()
            _place_submission(workspace, student, nb_id, source)
            try:
                checked(api.autograde(nb_id, student, force=True, create=True), f"autograding {student}/{nb_id}")
                graded.add((student, nb_id))
                checked(api.generate_feedback(nb_id, student, force=True), f"feedback for {student}/{nb_id}")
            except NbgraderError as exc:
                first = str(exc).splitlines()[0]
                problems.append(Problem(student, f"{nb_id}.ipynb", f"grader error: {first}", nb_id))
            seconds[(student, nb_id)] = time.perf_counter() - start

    with Gradebook(_db_url(workspace), COURSE_ID) as gb:
        rows = [row for student in intake.students for nb_id in wanted
                for row in _question_rows(gb, student, nb_id, (student, nb_id) in graded)]
    result = ClassResult(pd.DataFrame(rows, columns=COLUMNS), problems, workspace, seconds)
    (workspace / "problems.json").write_text(json.dumps([asdict(p) for p in problems], indent=1))
    write_grades_csv(result)
    return result


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
