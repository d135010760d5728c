"""The instructor's workflow after autograding, driven through the `course` command.

A Moodle download of notebook 01 (two students named John Smith, and a third) is
graded once (module fixture); each test works on its own copy of that workspace: a
late batch of one student, hand grades entered through nbgrader's API, `course export`
(grades.csv and the LMS's import files), `course feedback`.
"""
from __future__ import annotations

import csv
import html
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbgrader.api import Gradebook

from autograder.cli import main
from autograder.grades import db_url
from autograder.grading import grade_class
from autograder.layout import release_notebook
from autograder.sample_class import partial, perfect
from autograder.sandbox import check_sandbox

pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not check_sandbox()[0], reason=f"no sandbox here: {check_sandbox()[1]}")]
NB = "01_game_theory"
MOODLE = {"John Smith_2001_assignsubmission_file_": perfect, "John Smith_2002_assignsubmission_file_": partial,
          "Ann Lee_2003_assignsubmission_file_": lambda nb: nbformat.read(release_notebook(nb), as_version=4)}


def write_class(root: Path, students: dict) -> Path:
    for folder, make in students.items():
        (root / folder).mkdir(parents=True)
        nbformat.write(make(NB), root / folder / f"{NB}.ipynb")
    return root


@pytest.fixture(scope="module")
def graded_workspace(tmp_path_factory):
    root = write_class(tmp_path_factory.mktemp("moodle"), MOODLE)
    workspace = tmp_path_factory.mktemp("graded") / "ws"
    grade_class(root, workspace, workers=2)
    return workspace


@pytest.fixture
def workspace(graded_workspace, tmp_path) -> Path:
    """A copy of the graded class's workspace, for one test to change."""
    return Path(shutil.copytree(graded_workspace, tmp_path / "ws"))


def grades_csv(workspace: Path) -> pd.DataFrame:
    return pd.read_csv(workspace / "grades.csv", index_col="student_id", dtype={"student_id": str})


def page_text(workspace: Path, student: str) -> str:
    page = (workspace / "feedback" / student / NB / f"{NB}.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_students_of_the_same_name_stay_two_rows_with_their_ids(workspace):
    table = grades_csv(workspace)
    assert list(table.index) == ["2001", "2002", "2003"]
    assert list(table.name) == ["John Smith", "John Smith", "Ann Lee"]
    assert table.loc["2001", "auto_score"] > table.loc["2002", "auto_score"]  # each graded on their own work


def test_a_batch_of_one_keeps_the_whole_class_in_grades_csv(workspace, tmp_path):
    before = grades_csv(workspace)
    late = write_class(tmp_path / "late", {"Late Comer_2004_assignsubmission_file_": perfect})
    assert main(["grade", str(late), "--workspace", str(workspace)]) == 0
    after = grades_csv(workspace)
    assert list(after.index) == ["2001", "2002", "2003", "2004"]
    pd.testing.assert_frame_equal(after.loc[before.index], before)
    # grading one student again replaces that student's row, and only it
    again = write_class(tmp_path / "again", {"John Smith_2002_assignsubmission_file_": perfect})
    assert main(["grade", str(again), "--workspace", str(workspace)]) == 0
    regraded = grades_csv(workspace)
    assert list(regraded.index) == ["2001", "2002", "2003", "2004"]
    assert regraded.loc["2002", "auto_score"] == regraded.loc["2001", "auto_score"]
    pd.testing.assert_frame_equal(regraded.loc[["2001", "2003", "2004"]], after.loc[["2001", "2003", "2004"]])


def test_hand_grades_reach_export_and_feedback(workspace):
    """Written answers await hand grading (empty in grades.csv, named on the page); grades
    and a comment entered through nbgrader's API change `course export`'s total and
    `complete`, and `course feedback`'s page."""
    table = grades_csv(workspace)
    written = [c for c in table.columns if c.startswith(f"{NB}/written")]
    assert written and table.loc["2001", written].isna().all() and not table.loc["2001", "complete"]
    assert "await hand grading" in page_text(workspace, "2001")
    with Gradebook(db_url(workspace)) as gb:
        for column in written:
            grade = gb.find_grade(column.split("/")[1], NB, NB, "2001")
            grade.manual_score = grade.max_score
        comment = gb.find_comment(written[0].split("/")[1], NB, NB, "2001")
        comment.manual_comment = "Clear argument, well done."
        gb.db.commit()
    assert main(["export", "--workspace", str(workspace)]) == 0
    after = grades_csv(workspace)
    assert after.loc["2001", "complete"] and after.loc["2001", written].notna().all()
    assert after.loc["2001", "manual_score"] == after.loc["2001", written].sum() > 0
    assert after.loc["2001", "total"] == table.loc["2001", "total"] + after.loc["2001", "manual_score"]
    assert after.loc["2001", "total"] == after.loc["2001", "max"]
    text = page_text(workspace, "2001")
    assert "Clear argument, well done." in text
    assert "await hand grading" not in text and "awaiting hand grading" not in text
    assert "No response." not in text
    # the student who wrote nothing: 0 for an answer not written, no hand grading waits
    assert "no answer written" in page_text(workspace, "2003") and "No response." not in page_text(workspace, "2003")


def test_feedback_pages_render_math_from_a_local_copy(workspace):
    folder = workspace / "feedback" / "2001" / NB
    page = (folder / f"{NB}.html").read_text(encoding="utf-8")
    sources = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", page)
    assert sources == ["mathjax/tex-svg.js"], sources
    assert not re.search(r"https?://[^\"']*(mathjax|cdn)", page, re.I)
    assert (folder / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000
    assert (folder / "mathjax" / "ui" / "safe.js").exists()


def test_lms_import_files(workspace, tmp_path):
    # hand-grade 2001 fully; the others still await hand grading (2002) or need none (2003)
    with Gradebook(db_url(workspace)) as gb:
        for grade in gb.find_submission_notebook(NB, NB, "2001").grades:
            if grade.needs_manual_grade:
                grade.manual_score = grade.max_score
        gb.db.commit()
    assert main(["export", "--format", "moodle", "--workspace", str(workspace)]) == 0
    rows = list(csv.DictReader((workspace / f"moodle-{NB}.csv").open(encoding="utf-8")))
    assert [r["Identifier"] for r in rows] == ["Participant 2001", "Participant 2002", "Participant 2003"]
    assert [r["Full name"] for r in rows] == ["John Smith", "John Smith", "Ann Lee"]
    table = grades_csv(workspace)
    assert float(rows[0]["Grade"]) == table.loc["2001", "total"] == table.loc["2001", "max"]
    assert rows[1]["Grade"] == ""  # awaiting hand grading: left empty, never a made-up total
    assert float(rows[2]["Grade"]) == 0.0
    assert main(["export", "--format", "canvas", "--workspace", str(workspace)]) == 0
    rows = list(csv.reader((workspace / "canvas.csv").open(encoding="utf-8")))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", NB]
    assert rows[1][0] == "Points Possible" and float(rows[1][5]) == table.loc["2001", "max"]
    assert [(r[0], r[1]) for r in rows[2:]] == [("John Smith", "2001"), ("John Smith", "2002"), ("Ann Lee", "2003")]
    # a student from a plain folder has no LMS id: the LMS export refuses, naming them
    plain = write_class(tmp_path / "plain", {"ada": perfect})
    assert main(["grade", str(plain), "--workspace", str(workspace)]) == 0
    with pytest.raises(SystemExit, match="plain folders: ada"):
        main(["export", "--format", "moodle", "--workspace", str(workspace)])
