"""The class's grades, always from the whole gradebook: grades.csv and the LMS import files.

The gradebook (nbgrader's, in the workspace) holds every student ever graded there,
with their names and LMS ids, and every submission's scores, hand grades included.
``problems.json`` beside it keeps what went wrong per student and notebook (a damaged
file, a notebook not handed in); a run replaces the entries of the submissions it
graded and keeps the others. Every table here is made from both, never from one run's
batch alone, so grading a late student never drops the rest of the class.

A student is due a notebook when they have a submission for it or a problem recorded
against it; a notebook due and not graded scores 0 (with its note), and an answer that
still awaits hand grading is left empty, never 0.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from nbgrader.api import BaseCell, Grade, Gradebook, Notebook, SubmittedAssignment, SubmittedNotebook

from autograder.intake import Problem
from autograder.nbgrader_config import COURSE_ID

PROBLEMS_FILE = "problems.json"
COLUMNS = ["student", "notebook", "question", "kind", "score", "max_score"]
LMS_FORMATS = ("moodle", "canvas")


def db_url(workspace: Path) -> str:
    return f"sqlite:///{workspace / 'gradebook.db'}"


def gradebook(workspace: Path) -> Gradebook:
    return Gradebook(db_url(workspace), COURSE_ID)


# ----------------------------------------------------------------- problems.json
def load_problems(workspace: Path) -> list[Problem]:
    path = workspace / PROBLEMS_FILE
    return [Problem(**p) for p in json.loads(path.read_text())] if path.exists() else []


def save_problems(workspace: Path, problems: list[Problem], graded: set[tuple[str, str | None]]) -> None:
    """Replace the recorded problems of the (student, notebook) pairs in ``graded``
    (``(student, None)``: that student's problems that name no notebook) with ``problems``."""
    kept = [p for p in load_problems(workspace) if (p.student, p.notebook) not in graded]
    path = workspace / PROBLEMS_FILE
    path.write_text(json.dumps([asdict(p) for p in kept + problems], indent=1))


# ----------------------------------------------------------------- the class in long form
def awaits_hand_grading(needs_manual_grade, manual_score) -> bool:
    """nbgrader's flag, unless a grader's score is there (set without the formgrader, the
    flag can stay up)."""
    return bool(needs_manual_grade) and manual_score is None



def _cells(gb: Gradebook, nb_id: str) -> list[tuple[str, str, float]]:
    """(question, kind, max score) of each graded cell of a notebook, in its order."""
    notebook = gb.find_notebook(nb_id, nb_id)
    manual = {c.name for c in notebook.solution_cells}
    return [(cell.name, "manual" if cell.cell_type == "markdown" or cell.name in manual else "auto",
             float(cell.max_score)) for cell in notebook.grade_cells]


def _scores(gb: Gradebook) -> dict[tuple[str, str], dict[str, float | None]]:
    """(student, notebook) -> question -> score (None while it awaits hand grading), every
    submission of the gradebook in one query (one per submission takes minutes for a large class)."""
    rows = (gb.db.query(SubmittedAssignment.student_id, Notebook.name, BaseCell.name, Grade.score,
                        Grade.manual_score, Grade.needs_manual_grade)
            .select_from(Grade)
            .join(SubmittedNotebook, Grade.notebook_id == SubmittedNotebook.id)
            .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
            .join(Notebook, SubmittedNotebook.notebook_id == Notebook.id)
            .join(BaseCell, Grade.cell_id == BaseCell.id))
    found: dict[tuple[str, str], dict[str, float | None]] = {}
    for student, nb_id, question, score, manual, needs_manual in rows:
        awaiting = awaits_hand_grading(needs_manual, manual)
        found.setdefault((student, nb_id), {})[question] = None if awaiting else float(score or 0.0)
    return found


def long_grades(workspace: Path, students: list[str] | None = None,
                problems: list[Problem] | None = None) -> pd.DataFrame:
    """Every due question of every student in the gradebook (or of ``students``), in long
    form: its score (None while it awaits hand grading; 0 when the notebook was not graded).
    ``problems``: problems.json's, when the caller has read them already."""
    problems = load_problems(workspace) if problems is None else problems
    rows = []
    with gradebook(workspace) as gb:
        scores = _scores(gb)
        known = {a.name for a in gb.assignments}
        cells = {nb_id: _cells(gb, nb_id) for nb_id in known}
        chosen = students if students is not None else [s.id for s in gb.students]
        due_by_student: dict[str, set[str]] = {}
        for student, nb_id in scores:
            due_by_student.setdefault(student, set()).add(nb_id)
        for p in problems:
            if p.notebook in known:
                due_by_student.setdefault(p.student, set()).add(p.notebook)
        for student in chosen:
            due = due_by_student.get(student, set())
            for nb_id in sorted(due):
                got = scores.get((student, nb_id), {})
                rows += [dict(student=student, notebook=nb_id, question=question, kind=kind,
                              score=got.get(question, 0.0) if (student, nb_id) in scores else 0.0,
                              max_score=max_score)
                         for question, kind, max_score in cells[nb_id]]
    return pd.DataFrame(rows, columns=COLUMNS)


def roster(workspace: Path) -> pd.DataFrame:
    """student_id, name, lms_id of every student in the gradebook."""
    with gradebook(workspace) as gb:
        rows = [dict(student_id=s.id, name=" ".join(x for x in (s.first_name, s.last_name) if x) or s.id,
                     lms_id=s.lms_user_id or "") for s in gb.students]
    return pd.DataFrame(rows, columns=["student_id", "name", "lms_id"]).set_index("student_id")


def notes_by_student(problems: list[Problem]) -> dict[str, str]:
    """One line per student: the notebooks not handed in together, then the other problems."""
    missing, other = {}, {}
    for p in problems:
        key = p.student or "(unknown)"
        if p.reason.endswith("was not submitted") and p.notebook:
            missing.setdefault(key, []).append(p.notebook)
        else:
            other.setdefault(key, []).append(p.reason)
    lines = {}
    for student in set(missing) | set(other):
        parts = list(other.get(student, []))
        if missing.get(student):
            parts.append("not handed in: " + ", ".join(f"{nb}.ipynb" for nb in sorted(missing[student])))
        lines[student] = "; ".join(parts)
    return lines


def totals(grades: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """Per student: auto_score, auto_max, manual_score, manual_max, total, max, awaiting
    (points still to hand-grade), complete, notes."""
    g = grades.assign(graded=grades.score.notna(), pending=grades.max_score.where(grades.score.isna(), 0.0))
    by = g.groupby("student")
    table = pd.DataFrame({
        "auto_score": g[g.kind == "auto"].groupby("student").score.sum(),
        "auto_max": g[g.kind == "auto"].groupby("student").max_score.sum(),
        "manual_score": g[g.kind == "manual"].groupby("student").score.sum(),
        "manual_max": g[g.kind == "manual"].groupby("student").max_score.sum(),
        "total": by.score.sum(),
        "max": by.max_score.sum(),
        "awaiting": by.pending.sum(),
    }).reindex(sorted(set(grades.student) | {p.student for p in problems if p.student})).fillna(0.0)
    table["complete"] = table.awaiting == 0
    notes = notes_by_student(problems)
    table["notes"] = [notes.get(s, "") for s in table.index]
    table.index.name = "student"
    return table


# ----------------------------------------------------------------- grades.csv
def write_grades_csv(workspace: Path) -> Path:
    """grades.csv from the whole gradebook: student_id, name, one column per question
    (empty while it awaits hand grading), auto_score, manual_score, total, max, complete, notes."""
    problems = load_problems(workspace)
    grades = long_grades(workspace, problems=problems)
    people = roster(workspace)
    wide = grades.assign(column=grades.notebook + "/" + grades.question).pivot(
        index="student", columns="column", values="score")
    wide = wide[list(dict.fromkeys(grades.notebook + "/" + grades.question))]  # the notebooks' own order
    summary = totals(grades, problems)
    everyone = sorted(set(summary.index) | set(people.index))  # nobody in the gradebook is left out
    summary = summary.reindex(everyone).fillna({"auto_score": 0.0, "manual_score": 0.0, "total": 0.0, "max": 0.0,
                                                "complete": True, "notes": ""})
    table = summary[[]].join(wide).join(summary[["auto_score", "manual_score", "total", "max", "complete", "notes"]])
    table.insert(0, "name", [people.name.get(s, s) for s in table.index])
    table.index.name = "student_id"
    path = workspace / "grades.csv"
    table.to_csv(path)
    return path


# ----------------------------------------------------------------- LMS import files
def _lms_rows(workspace: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per student and notebook: total, max, complete; the roster), refusing students without an LMS id."""
    grades, people = long_grades(workspace), roster(workspace)
    missing = sorted(s for s in set(grades.student) if not people.lms_id.get(s))
    if missing:
        raise SystemExit("error: an LMS import needs each student's LMS id, which only Moodle and Canvas "
                         f"downloads give; these students came from plain folders: {', '.join(missing)}")
    g = grades.assign(pending=grades.score.isna())
    per = g.groupby(["student", "notebook"]).agg(total=("score", "sum"), max=("max_score", "sum"),
                                                 pending=("pending", "any"))
    per["complete"] = ~per.pending
    return per, people


def export_lms(workspace: Path, fmt: str, out_dir: Path | None = None) -> tuple[list[Path], list[str]]:
    """The LMS's own grade-import files; and the students whose grade was left empty
    because hand grading is not finished (an empty grade changes nothing in the LMS)."""
    if fmt not in LMS_FORMATS:
        raise SystemExit(f"error: unknown format {fmt!r}; expected one of {', '.join(LMS_FORMATS)}")
    per, people = _lms_rows(workspace)
    out_dir = out_dir or workspace
    incomplete = sorted({f"{s} ({nb})" for (s, nb), row in per.iterrows() if not row.complete})
    grade = lambda row: f"{row.total:g}" if row.complete else ""  # noqa: E731
    paths = []
    if fmt == "moodle":
        # Moodle's "Upload grading worksheet" of an assignment: one file per notebook
        # (one Moodle assignment each); rows matched by "Participant <id>".
        stamp = time.strftime("%A, %d %B %Y, %I:%M %p")
        for nb_id, rows in per.groupby(level="notebook"):
            path = out_dir / f"moodle-{nb_id}.csv"
            with path.open("w", newline="", encoding="utf-8") as fh:
                out = csv.writer(fh)
                out.writerow(["Identifier", "Full name", "Grade", "Maximum Grade", "Last modified (grade)"])
                for (student, _), row in rows.iterrows():
                    out.writerow([f"Participant {people.lms_id[student]}", people.name[student], grade(row),
                                  f"{row['max']:g}", stamp])
            paths.append(path)
    else:
        # Canvas's Gradebook import: one file, one column per notebook, rows matched by ID.
        notebooks = sorted(per.index.get_level_values("notebook").unique())
        path = out_dir / "canvas.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *notebooks])
            out.writerow(["Points Possible", "", "", "", "",
                          *[f"{per.xs(nb, level='notebook')['max'].max():g}" for nb in notebooks]])
            for student in sorted(set(per.index.get_level_values("student"))):
                cells = [grade(per.loc[(student, nb)]) if (student, nb) in per.index else "" for nb in notebooks]
                out.writerow([people.name[student], people.lms_id[student], "", "", "", *cells])
        paths.append(path)
    return paths, incomplete
