"""Every notebook of the course through the grader, in quick mode.

For each notebook one class is graded: the reference solution itself, a perfect
submission (the release with the reference answers), the untouched release, and one
submission per known-wrong answer in tests/fixtures/wrong_answers/<notebook>.py, and
one per right answer written differently from the reference in
tests/fixtures/right_answers/<notebook>.py (where there is one). The solution, the
perfect submission and every right answer earn every autograded point, the release
none, and each wrong answer loses points on exactly its own question.
"""
from __future__ import annotations

import shutil

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from autograder.grading import grade_class
from autograder.layout import notebook_ids, release_notebook, source_notebook
from autograder.sample_class import answer_cells, perfect, submission
from conftest import FIXTURES, load_right_answers, load_wrong_answers, owned_tests

pytestmark = pytest.mark.grading


@pytest.mark.notebook
@pytest.mark.timeout(300)
@pytest.mark.parametrize("nb_id", notebook_ids())
def test_solution_runs_top_to_bottom(nb_id):
    """What a self-learner does: every cell of the solution, demos included, in quick mode."""
    path = source_notebook(nb_id)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks cleared"
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    stderr = [o for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
              for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, "test cells must not write to stderr"


def test_every_notebook_has_its_release_and_wrong_answer_fixtures():
    assert notebook_ids(), "no notebooks in solutions/"
    for nb_id in notebook_ids():
        assert release_notebook(nb_id).exists(), f"run `course release {nb_id}`"
        assert (FIXTURES / "wrong_answers" / f"{nb_id}.py").exists(), nb_id


@pytest.fixture(scope="module", params=notebook_ids())
def graded(request, tmp_path_factory):
    nb_id = request.param
    wrong = load_wrong_answers(nb_id).WRONG
    root = tmp_path_factory.mktemp(f"class-{nb_id}")
    notebooks = {"perfect": perfect(nb_id), "blank": nbformat.read(release_notebook(nb_id), as_version=4)}
    notebooks.update({f"wrong_{gid}": submission(nb_id, {**answer_cells(nb_id), gid: src})
                      for gid, src in wrong.items()})
    notebooks.update({f"right_{gid}": submission(nb_id, {**answer_cells(nb_id), gid: src})
                      for gid, src in load_right_answers(nb_id).items()})
    for student, nb in notebooks.items():
        (root / student).mkdir()
        nbformat.write(nb, root / student / f"{nb_id}.ipynb")
    (root / "solution").mkdir()
    shutil.copyfile(source_notebook(nb_id), root / "solution" / f"{nb_id}.ipynb")
    result = grade_class(root, tmp_path_factory.mktemp(f"ws-{nb_id}"), [nb_id], workers=2)
    return nb_id, wrong, result


def auto(result, student: str) -> pd.Series:
    g = result.grades
    return g[(g.student == student) & (g.kind == "auto")].set_index("question")


def test_solution_and_perfect_earn_everything_release_nothing(graded):
    nb_id, _, result = graded
    assert not result.problems, [(p.student, p.reason) for p in result.problems]
    full = auto(result, "perfect").max_score
    assert full.sum() > 0
    for student in ("solution", "perfect"):
        assert (auto(result, student).score == full).all(), f"{nb_id}: {student}\n{auto(result, student)}"
    assert (auto(result, "blank").score == 0).all(), f"{nb_id}: the release earns points"


def test_each_wrong_answer_loses_points_on_its_own_question_only(graded):
    nb_id, wrong, result = graded
    assert len(wrong) >= 3, f"{nb_id}: at least three wrong-answer fixtures"
    tests = owned_tests(nb_id)
    full = auto(result, "perfect").max_score
    for gid in wrong:
        got = auto(result, f"wrong_{gid}").score
        own = tests[gid]
        assert (got[own] < full[own]).all(), f"{nb_id}: wrong {gid} kept its points on {own}"
        others = got.drop(own)
        assert (others == full.drop(own)).all(), f"{nb_id}: wrong {gid} lost points elsewhere:\n{others}"


def test_right_answers_written_differently_keep_every_point(graded):
    """Float32 arithmetic where the task allows it, helpers named like a test's own variables."""
    nb_id, _, result = graded
    full = auto(result, "perfect").max_score
    for gid in load_right_answers(nb_id):
        got = auto(result, f"right_{gid}").score
        assert (got == full).all(), f"{nb_id}: the right answer {gid} lost points:\n{got[got < full]}"
