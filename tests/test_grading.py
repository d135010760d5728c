"""The grading path end to end on notebook 01, driven through the real commands.

One class of fixture submissions is graded once (module fixture); each test reads
its verdicts. Every fixture is made from the real release and solution notebooks.
"""
from __future__ import annotations

import copy
import html
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder.grading import autograded_path, grade_class
from autograder.layout import REPO_ROOT, release_notebook, source_notebook
from autograder.cells import hidden_line_numbers
from autograder.sample_class import answer_cells, autograded_answers, perfect, submission
from conftest import load_wrong_answers, owned_tests

pytestmark = pytest.mark.grading
NB = "01_game_theory"
NOISE = "a harmless warning the student's code writes to stderr"


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def with_stderr_noise(source: str) -> str:
    """A correct answer whose functions write to stderr every time they are called."""
    names = re.findall(r"^def (\w+)\(", source, flags=re.MULTILINE)
    wrappers = "".join(
        f"\n{name} = _noisy({name})" for name in names
    )
    return (source + "\n\nimport functools as _functools, sys as _sys\n"
            "def _noisy(func):\n"
            "    @_functools.wraps(func)\n"
            "    def wrapper(*args, **kwargs):\n"
            f"        print({NOISE!r}, file=_sys.stderr)\n"
            "        return func(*args, **kwargs)\n"
            "    return wrapper\n" + wrappers)


def without_cell(nb, grade_id):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if _meta(c).get("grade_id") != grade_id]
    return nb


def with_cell_source(nb, grade_id, source):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if _meta(cell).get("grade_id") == grade_id:
            cell.source = source
    return nb


PRINT_HISTORY = """
print(In)
print(_ih)
import linecache
print([''.join(entry[2]) for entry in linecache.cache.values() if len(entry) > 2])
print(open('01_game_theory.ipynb').read())
"""


def with_foreign_cell(nb, other: str = "02_independent_learners"):
    """A copy of another notebook's first answer cell, nbgrader metadata and all (as JupyterLab pastes it)."""
    nb = copy.deepcopy(nb)
    foreign = next(c for c in nbformat.read(release_notebook(other), as_version=4).cells if _meta(c).get("solution"))
    foreign = copy.deepcopy(foreign)
    foreign.id = "pasted-cell"
    nb.cells.insert(len(nb.cells) // 2, foreign)
    return nb


def with_duplicated_cell(nb, grade_id, source):
    """A copy of the cell (same grade_id, as copy-paste makes it) with new source, put before it."""
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade_id") == grade_id)
    duplicate = copy.deepcopy(nb.cells[index])
    duplicate.source = source
    duplicate.id = "duplicated-cell"
    nb.cells.insert(index, duplicate)
    return nb


@pytest.fixture(scope="module")
def fixtures():
    wrong = load_wrong_answers(NB)
    answers = answer_cells(NB)
    tests = owned_tests(NB)
    first_answer = autograded_answers(NB)[0]
    first_test = tests[first_answer][0]
    wrong_first = submission(NB, {**answers, first_answer: wrong.WRONG[first_answer]})
    noisy = {gid: with_stderr_noise(src) if gid in autograded_answers(NB) else src for gid, src in answers.items()}
    students = {
        "perfect": perfect(NB),
        "blank": nbformat.read(release_notebook(NB), as_version=4),
        "stderr_warning": submission(NB, noisy),
        "deleted_test_correct": without_cell(perfect(NB), first_test),
        "deleted_test_wrong": without_cell(wrong_first, first_test),
        "edited_test_correct": with_cell_source(perfect(NB), first_test, "pass"),
        "edited_test_wrong": with_cell_source(wrong_first, first_test, "pass  # all good"),
        "duplicated_test_wrong": with_duplicated_cell(wrong_first, first_test, "pass"),
        "answer_raises": submission(NB, {**answers, first_answer: answers[first_answer] + "\nraise ValueError('unfinished')"}),
        "prints_history": submission(NB, {**answers, autograded_answers(NB)[-1]:
                                          answers[autograded_answers(NB)[-1]] + PRINT_HISTORY}),
        "quotes_the_marker": submission(NB, {**answers, first_answer: "# ### BEGIN HIDDEN TESTS is where the grader "
                                             "hides its tests\n" + answers[first_answer]}),
        "pasted_foreign_cell": with_foreign_cell(perfect(NB)),
    }
    # two wrong answers, for the feedback test (failing hidden tests); tests/test_notebooks.py
    # checks every wrong answer loses points on its own question only
    for gid, source in list(wrong.WRONG.items())[:2]:
        students[f"wrong_{gid}"] = submission(NB, {**answers, gid: source})
    return dict(students=students, wrong=wrong, tests=tests, first_answer=first_answer, first_test=first_test)


@pytest.fixture(scope="module")
def graded(fixtures, tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    for student, nb in fixtures["students"].items():
        (root / student).mkdir()
        nbformat.write(nb, root / student / f"{NB}.ipynb")
    # Submissions the intake must sort out.
    (root / "lms_renamed").mkdir()
    nbformat.write(perfect(NB), root / "lms_renamed" / f"{NB} (1).ipynb")
    (root / "misnamed").mkdir()
    nbformat.write(perfect(NB), root / "misnamed" / "homework.ipynb")
    (root / "damaged").mkdir()
    text = nbformat.writes(perfect(NB))
    (root / "damaged" / f"{NB}.ipynb").write_text(text[: len(text) // 3])
    (root / "nothing").mkdir()
    (root / "nothing" / "notes.txt").write_text("forgot the notebook")
    workspace = tmp_path_factory.mktemp("workspace")
    return grade_class(root, workspace, [NB])


def scores(result, student: str) -> pd.Series:
    g = result.grades
    return g[(g.student == student) & (g.kind == "auto")].set_index("question").score


def max_scores(result) -> pd.Series:
    g = result.grades
    return g[(g.student == "perfect") & (g.kind == "auto")].set_index("question").max_score


def test_perfect_submission_earns_every_autograded_point(graded):
    assert max_scores(graded).sum() > 0
    assert (scores(graded, "perfect") == max_scores(graded)).all()


def test_unmodified_release_scores_zero_without_grader_errors(graded):
    assert (scores(graded, "blank") == 0).all()
    assert not [p for p in graded.problems if p.student == "blank"]


def test_a_correct_answer_that_writes_to_stderr_keeps_full_marks(graded):
    assert (scores(graded, "stderr_warning") == max_scores(graded)).all()
    # The fixture really did write to stderr inside the test cells.
    executed = nbformat.read(graded.workspace / "autograded" / "stderr_warning" / NB / f"{NB}.ipynb", as_version=4)
    outputs = [o.get("text", "") for c in executed.cells if _meta(c).get("grade") and c.cell_type == "code"
               for o in c.get("outputs", [])]
    assert any(NOISE in text for text in outputs)


def test_deleted_or_edited_test_cells_are_restored_and_judge_the_answer(graded, fixtures):
    first_test = fixtures["first_test"]
    full = max_scores(graded)[first_test]
    assert scores(graded, "deleted_test_correct")[first_test] == full
    assert scores(graded, "edited_test_correct")[first_test] == full
    assert scores(graded, "deleted_test_wrong")[first_test] < full
    assert scores(graded, "edited_test_wrong")[first_test] < full
    assert scores(graded, "duplicated_test_wrong")[first_test] < full


def _feedback_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def hidden_test_lines() -> list[str]:
    """Lines that only the hidden part of the source's test cells holds."""
    nb = nbformat.read(source_notebook(NB), as_version=4)
    hidden, visible = set(), set()
    for cell in nb.cells:
        lines = cell.source.split("\n")
        secret = hidden_line_numbers(cell.source) if cell.cell_type == "code" else set()
        for number, line in enumerate(lines, start=1):
            (hidden if number in secret else visible).add(line.strip())
    return sorted(line for line in hidden - visible if len(line) >= 12 and "HIDDEN TESTS" not in line)


def test_failing_tests_get_plain_tracebacks_and_answers_keep_their_context(graded):
    """The kernel formats a test cell's traceback plainly (the grader cuts it to one
    line anyway, and the context costs 25 ms a test), a failing answer's with context."""
    tracebacks = {"test": [], "answer": []}
    for student in ("blank", "answer_raises"):
        nb = nbformat.read(autograded_path(graded.workspace, student, NB), as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and _meta(cell).get("grade_id"):
                    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output.traceback))
                    tracebacks["answer" if _meta(cell).get("solution") else "test"].append(text)
    assert tracebacks["test"] and tracebacks["answer"]
    arrow = re.compile(r"^-+> ", re.MULTILINE)  # the context view's pointer at the failing line
    assert all("Cell In[" in t and not arrow.search(t) for t in tracebacks["test"]), tracebacks["test"][0]
    assert all(arrow.search(t) for t in tracebacks["answer"]), tracebacks["answer"][0]


def test_feedback_never_shows_hidden_tests(graded):
    pages = sorted(graded.feedback_dir.glob(f"*/{NB}/{NB}.html"))
    assert len(pages) >= 10
    secret = hidden_test_lines()
    assert secret, "notebook 01 should have hidden tests"
    texts = {page.parent.parent.name: _feedback_text(page) for page in pages}
    for student, text in texts.items():
        leaked = [line for line in secret if line in text]
        assert not leaked, f"{student}'s feedback shows hidden test code: {leaked[:3]}"
    # Failing hidden tests were reported, in one line, without their code.
    assert any("a hidden test failed" in text for text in texts.values())


def test_printing_the_kernels_history_shows_no_hidden_test(graded):
    """In, _ih, linecache and the notebook file in the kernel's folder hold no hidden test code."""
    executed = nbformat.read(autograded_path(graded.workspace, "prints_history", NB), as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert "Self-check for best_response" in printed  # the history really was printed
    leaked = [line for line in hidden_test_lines() if line in printed]
    assert not leaked, leaked[:3]
    assert (scores(graded, "prints_history") == max_scores(graded)).all()


def test_an_answer_quoting_the_hidden_test_marker_keeps_its_page_and_points(graded):
    assert (graded.feedback_dir / "quotes_the_marker" / NB / f"{NB}.html").exists()
    assert not [p.reason for p in graded.problems if p.student == "quotes_the_marker"]
    assert (scores(graded, "quotes_the_marker") == max_scores(graded)).all()


def test_a_cell_pasted_from_another_notebook_costs_nothing_else(graded):
    """Its foreign grade id is dropped with a note; the notebook is graded as usual."""
    assert (scores(graded, "pasted_foreign_cell") == max_scores(graded)).all()
    reasons = [p.reason for p in graded.problems if p.student == "pasted_foreign_cell"]
    assert len(reasons) == 1 and "came from another notebook (grade id 'epsilon-greedy')" in reasons[0], reasons


def test_unusable_submissions_are_reported_by_name_and_score_zero(graded):
    reasons = {}
    for p in graded.problems:
        reasons[p.student] = reasons.get(p.student, "") + p.reason + "; "
    assert "not valid JSON" in reasons["damaged"]
    assert "unknown notebook name 'homework.ipynb'" in reasons["misnamed"]
    assert "was not submitted" in reasons["nothing"]
    for student in ("damaged", "misnamed", "nothing"):
        assert (scores(graded, student) == 0).all()
    # An LMS copy suffix is undone, and the others were graded normally.
    assert (scores(graded, "lms_renamed") == max_scores(graded)).all()


def test_grades_csv_has_a_row_per_student_and_a_column_per_question(graded):
    table = pd.read_csv(graded.csv_path, index_col="student_id", dtype={"student_id": str})
    assert set(table.index) == set(graded.grades.student)
    assert list(table.columns[:1]) == ["name"]
    assert list(table.columns[-6:]) == ["auto_score", "manual_score", "total", "max", "complete", "notes"]
    for question in graded.grades.question.unique():
        assert f"{NB}/{question}" in table.columns
    assert table.loc["perfect", "auto_score"] == max_scores(graded).sum()
    assert "not valid JSON" in table.loc["damaged", "notes"]
    # written answers of the perfect submission await hand grading: empty, not 0, and not complete
    written = [c for c in table.columns if c.startswith(f"{NB}/written")]
    assert written and table.loc["perfect", written].isna().all()
    assert not table.loc["perfect", "complete"]
    # the blank release wrote no answer: 0, nothing to hand-grade
    assert (table.loc["blank", written] == 0).all() and table.loc["blank", "complete"]


def course(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_release_check_passes_on_the_repository():
    run = course("release", "--check")
    assert run.returncode == 0, run.stdout + run.stderr


def test_release_check_names_a_stale_notebook(tmp_path):
    from autograder.release import stale_notebooks
    import shutil

    copy_root = tmp_path / "notebooks"
    shutil.copytree(REPO_ROOT / "notebooks" / NB, copy_root / NB)
    nb = nbformat.read(copy_root / NB / f"{NB}.ipynb", as_version=4)
    nb.cells[0].source += "\nedited by hand"
    nbformat.write(nb, copy_root / NB / f"{NB}.ipynb")
    assert stale_notebooks([NB], copy_root) == [(NB, f"notebooks/{NB}/{NB}.ipynb differs from what solutions/ generates")]


def test_course_check_passes_for_notebook_01(tmp_path):
    run = course("--workspace", str(tmp_path), "check", NB)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(rf"{NB}\s+(\d+)/\1\s+0/\1\s+[\d.]+\s+ok", run.stdout), run.stdout


def test_course_demo_prints_the_grade_table(tmp_path):
    run = course("--workspace", str(tmp_path), "demo")
    assert run.returncode == 0, run.stdout + run.stderr
    for student in ("ada_perfect", "ben_partial", "cy_blank", "dee_broken"):
        assert student in run.stdout
    assert (tmp_path / "demo" / "grades.csv").exists()


def test_grading_threads_judging_at_once_agree_with_one_thread():
    """Judge cases seed torch's global generator: verdicts in parallel threads must not mix."""
    from concurrent.futures import ThreadPoolExecutor

    from autograder import judging
    from course_lib import judge

    jobs = []
    for key in ("nb04.soft_update", "nb04.actor_loss", "nb04.critic_td_target"):
        case = judge.lookup(key)
        for seed in range(4):
            jobs.append((key, seed, {"key": key, "outputs": case.outputs(case.reference, seed)}))
    with ThreadPoolExecutor(max_workers=4) as threads:
        problems = list(threads.map(lambda job: judging._problem(job[0], [job[2]], job[1])[0], jobs * 3))
    assert problems == [None] * len(problems)


def test_a_page_that_fails_costs_only_the_page(tmp_path, monkeypatch):
    """Pages render in the background; one that fails is reported, and its student's scores stand."""
    from autograder import feedback

    for student in ("alice", "bob"):
        (tmp_path / "class" / student).mkdir(parents=True)
        nbformat.write(perfect(NB), tmp_path / "class" / student / f"{NB}.ipynb")
    render = feedback.FeedbackPool.write

    def write(self, autograded, nb_id, student):
        if student == "bob":
            raise RuntimeError("feedback page: the renderer broke")
        return render(self, autograded, nb_id, student)

    monkeypatch.setattr(feedback.FeedbackPool, "write", write)
    result = grade_class(tmp_path / "class", tmp_path / "workspace", [NB], workers=2)
    auto = result.grades[result.grades.kind == "auto"]
    assert len(auto) and (auto.score == auto.max_score).all()
    assert [(p.student, p.reason) for p in result.problems] == [
        ("bob", "no feedback page: feedback page: the renderer broke")]
    assert (result.feedback_dir / "alice" / NB / f"{NB}.html").exists()
    assert not (result.feedback_dir / "bob").exists()


def test_default_workers_follow_the_cpus_this_process_may_use():
    """In a container (or under taskset) limited to one CPU of many, one worker, not one per host CPU."""
    run = subprocess.run([sys.executable, "-c", "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
                          "from autograder.grading import usable_cpus; print(usable_cpus(), os.cpu_count())"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    usable, host = map(int, run.stdout.split())
    assert usable == 1 and host >= 1, run.stdout + run.stderr
