"""One grading pipeline: plain `nbgrader autograde` with the kit's config gives the scores
`course grade` gives, on a class of fixture submissions (right, blank, wrong, and the
hostile ones of tests/test_grader_robustness.py that need the sandbox and the judge).

Both read the preprocessor lists of autograder/nbgrader_config.py: `course grade` runs
them itself (autograder/pipeline.py); nbgrader runs them through its Autograde converter,
with the repository's nbgrader_config.py pointed at a workspace of its own.
"""
from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest

from autograder.execution import Settings
from autograder.grades import long_grades
from autograder.grading import grade_class
from autograder.layout import REPO_ROOT, release_notebook
from autograder.release import generate
from autograder.sample_class import answer_cells, autograded_answers, perfect, submission
from autograder.sandbox import Limits, check_sandbox
from test_grader_robustness import THREATS

pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not check_sandbox()[0], reason=f"no sandbox here: {check_sandbox()[1]}")]
NB = "01_game_theory"
CELL_S, NOTEBOOK_S, MEMORY_MB = 5, 60, 2048
HOSTILE = ["fools_the_kernel", "skips_the_check", "eq_always_true", "aliased_reference", "copied_reference",
           "walks_the_stack", "records_the_reference", "infinite_loop", "os_exit"]


def students() -> dict:
    wrong = submission(NB, {**answer_cells(NB), autograded_answers(NB)[1]: "def pure_nash_equilibria(p):\n    return []"})
    class_ = {"perfect": perfect(NB), "blank": nbformat.read(release_notebook(NB), as_version=4), "wrong": wrong}
    class_.update({name: THREATS[name][0][0] for name in HOSTILE})
    return class_


def scores(workspace) -> dict[tuple[str, str], float]:
    g = long_grades(workspace)
    g = g[g.kind == "auto"]
    return {(s, q): v for s, q, v in zip(g.student, g.question, g.score)}


def test_nbgrader_autograde_with_the_kits_config_scores_as_course_grade(tmp_path):
    class_ = students()
    root = tmp_path / "class"
    for student, nb in class_.items():
        (root / student).mkdir(parents=True)
        nbformat.write(nb, root / student / f"{NB}.ipynb")
    settings = Settings(limits=Limits(memory_mb=MEMORY_MB, wall_seconds=NOTEBOOK_S, cell_seconds=CELL_S))
    ours = tmp_path / "course"
    grade_class(root, ours, [NB], workers=2, settings=settings)

    theirs = tmp_path / "nbgrader"
    generate([NB], theirs / "release", theirs)  # the assignment in the gradebook, as generate_assignment makes it
    for student, nb in class_.items():
        (theirs / "submitted" / student / NB).mkdir(parents=True)
        nbformat.write(nb, theirs / "submitted" / student / NB / f"{NB}.ipynb")
    env = {**os.environ, "COURSE_WORKSPACE": str(theirs), "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    run = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", NB, "--force",
                          f"--SandboxedExecute.cell_timeout={CELL_S}", f"--SandboxedExecute.time_limit={NOTEBOOK_S}",
                          f"--SandboxedExecute.memory_mb={MEMORY_MB}"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    course, plain = scores(ours), scores(theirs)
    assert set(plain) == set(course) and len({s for s, _ in course}) == len(class_)
    differ = {key: (course[key], plain[key]) for key in course if course[key] != plain[key]}
    assert not differ, differ
    # and the class is a real test of both: the hostile answers lost their question, the right one kept all
    assert sum(v for (s, _), v in course.items() if s == "perfect") > 0
    assert course[("fools_the_kernel", "best-response-tests")] == 0
    assert course[("perfect", "best-response-tests")] > 0
    # the steps only the kit's config adds ran on nbgrader's route too
    graded = nbformat.read(theirs / "autograded" / "fools_the_kernel" / NB / f"{NB}.ipynb", as_version=4)
    assert any(o.get("ename") == "JudgedWrong" for c in graded.cells if c.cell_type == "code" for o in c.outputs)

    # nbgrader's generate_feedback makes the course's page: no hidden test, hand grading named, math offline
    run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_feedback", NB, "--force", "--student=wrong"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    folder = theirs / "feedback" / "wrong" / NB
    page = (folder / f"{NB}.html").read_text(encoding="utf-8")
    assert "awaiting hand grading" in page
    assert 'pure-nash-tests">Test cell</a> (Score: 0.0 / 3.0)' in page  # this student's failed question, scored 0
    assert "BEGIN HIDDEN TESTS" not in page and "judge.check" not in page
    assert (folder / "mathjax" / "tex-svg.js").exists() and "cdnjs" not in page


def test_the_kits_config_names_only_options_nbgrader_knows(caplog):
    """Every preprocessor of the lists, and nbgrader's Execute (the Validate button's), takes
    the course's config without a "not recognized" warning (allow_errors was one)."""
    import logging

    from nbgrader.preprocessors import Execute

    from autograder import pipeline
    from autograder.nbgrader_config import AUTOGRADE, FEEDBACK, RELEASE, SANITIZE, course_config

    config = course_config()
    with caplog.at_level(logging.WARNING):
        pipeline.chain(config, RELEASE + SANITIZE + AUTOGRADE + FEEDBACK + [Execute])
    assert not [r.getMessage() for r in caplog.records if "not recognized" in r.getMessage()]
