"""The grader against hostile and broken submissions, driven through the real pipeline.

One class holds a perfect submission and one submission per threat, each made from
notebook 01's reference answers with one answer cell turned hostile. Every threat
must leave the class finishing within its limits, the perfect student's grade intact,
the hostile question scored for what it earned, and a one-line reason in the summary.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from autograder.execution import Settings
from autograder.grading import grade_class
from autograder.layout import REPO_ROOT, SOLUTIONS
from autograder.sample_class import answer_cells, autograded_answers, perfect, submission
from autograder.sandbox import Limits, check_sandbox
from autograder.worker import INTERRUPT_GRACE_S

pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(not check_sandbox()[0], reason=f"no sandbox here: {check_sandbox()[1]}")]
NB = "01_game_theory"
CELL_S, NOTEBOOK_S = 5, 60
GAMES = REPO_ROOT / "course_lib" / "games.py"


def hostile(answer_index: int, before: str = "", after: str = "", replace: str | None = None):
    """Reference answers, with code put before/after the answer cell number ``answer_index``
    (or ``replace`` as that cell)."""
    answers = answer_cells(NB)
    gid = autograded_answers(NB)[answer_index]
    answers[gid] = replace if replace is not None else f"{before}\n{answers[gid]}\n{after}"
    return submission(NB, answers), gid


FIRST, LAST = 0, -1
READ_SOLUTION = f"""
import json
source = json.load(open({str(SOLUTIONS / NB / (NB + '.ipynb'))!r}))
exec(next(c["source"] for c in source["cells"] if "def best_response" in "".join(c["source"])))
"""
WRITE_OUTSIDE = f"""
for target in [{str(GAMES)!r}, {str(REPO_ROOT / 'pwned.txt')!r}, '/etc/pwned']:
    try:
        open(target, 'a').write('# pwned')
    except OSError as exc:
        print('refused:', target, type(exc).__name__)
"""

# Wrong answers to the first question that also tamper with what judges them in the kernel.
WRONG_FIRST = "def best_response(payoffs, player, profile):\n    return [0]"
LIAR = """
class Liar(list):
    def __eq__(self, other):
        return True
    __hash__ = list.__hash__
def best_response(payoffs, player, profile):
    return Liar([0])
"""
FOOL_THE_KERNEL = """
import numpy as np
import course_lib.checks, course_lib.judge
from course_lib import games
np.allclose = np.array_equal = lambda *a, **k: True
course_lib.checks.assert_close = lambda *a, **k: None
course_lib.checks.as_profiles = lambda value, name='': [(0,)]
assert_close, as_profiles = course_lib.checks.assert_close, course_lib.checks.as_profiles
games.best_response = best_response                      # the in-kernel reference agrees now
course_lib.judge.difference = lambda *a, **k: None        # and the kernel's comparison says yes
"""
SKIP_THE_CHECK = "import course_lib.judge\ncourse_lib.judge.check = lambda *a, **k: None"

# Score-gaming: answers that get the reference's values instead of computing them.
WRONG_BEYOND_THE_VISIBLE_CHECKS = """
import numpy as np
def _honest(payoffs, player, profile):
    payoffs = np.asarray(payoffs, dtype=float)
    index = [int(a) for a in profile]
    index[player] = slice(None)
    values = payoffs[tuple(index) + (player,)]
    return [int(a) for a in np.flatnonzero(values >= values.max() - 1e-9)]
"""
ALIASED_REFERENCE = """
from course_lib.games import best_response as _reference
def best_response(payoffs, player, profile):
    return _reference(payoffs, player, profile)
"""
COPIED_REFERENCE = """
import types
from course_lib import games
_copy = types.FunctionType(games.best_response.__code__, games.__dict__)
def best_response(payoffs, player, profile):
    return _copy(payoffs, player, profile)
"""
RELOADED_REFERENCE = """
import importlib.util
from course_lib import games
_spec = importlib.util.spec_from_file_location("games_again", games.__file__)
_again = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_again)
def best_response(payoffs, player, profile):
    return _again.best_response(payoffs, player, profile)
"""
REFERENCE_IN_A_SUBPROCESS = """
import pickle, subprocess, sys
_CODE = ("import pickle, sys; from course_lib.games import best_response as b; "
         "pickle.dump(b(*pickle.load(sys.stdin.buffer)), sys.stdout.buffer)")
def best_response(payoffs, player, profile):
    run = subprocess.run([sys.executable, "-c", _CODE], input=pickle.dumps((payoffs, player, profile)),
                         capture_output=True)
    return pickle.loads(run.stdout)
"""
REFERENCE_IN_A_HELPER_PROCESS = """
import os, pickle
from course_lib import games
_ask_r, _ask_w = os.pipe()
_tell_r, _tell_w = os.pipe()
if os.fork() == 0:  # a helper that answers with the reference, started before the judge comes
    with os.fdopen(_ask_r, "rb") as ask, os.fdopen(_tell_w, "wb") as tell:
        while True:
            pickle.dump(games.best_response(*pickle.load(ask)), tell)
            tell.flush()
_ask, _tell = os.fdopen(_ask_w, "wb"), os.fdopen(_tell_r, "rb")
def best_response(payoffs, player, profile):
    pickle.dump((payoffs, player, profile), _ask)
    _ask.flush()
    return pickle.load(_tell)
"""
RECORDS_THE_REFERENCE = WRONG_BEYOND_THE_VISIBLE_CHECKS + """
import course_lib.judge, course_lib.checks
from course_lib import games
_check = course_lib.judge.check
course_lib.judge.check = lambda key, answer, name=None: _check(key, games.best_response, name)
assert_close = course_lib.checks.assert_close = lambda *a, **k: None
def best_response(payoffs, player, profile):
    return [0]
"""
WALKS_THE_STACK = WRONG_BEYOND_THE_VISIBLE_CHECKS + """
import sys
def best_response(payoffs, player, profile):
    frame = sys._getframe(1)
    while frame is not None:  # the judge's own frames hold the inputs and the expected values
        inputs, want = frame.f_locals.get("inputs"), frame.f_back and frame.f_back.f_locals.get("want")
        if inputs and want:
            mine = next(i for i, args in enumerate(inputs) if args[0] is payoffs)
            return [int(v) for v in want[mine]["values"]]
        frame = frame.f_back
    if set(np.shape(payoffs)[:-1]) == {2}:  # the visible checks' games: 2 actions each
        return _honest(payoffs, player, profile)
    return [0]
"""


def reads_a_peer(class_root: Path):
    """A first answer that takes a classmate's best_response from the class folder."""
    code = f"""
import glob, json
_found = glob.glob({str(class_root)!r} + "/*/{NB}.ipynb")
print("PEERS FOUND", len(_found))
for _path in _found:
    for _cell in json.load(open(_path))["cells"]:
        if "".join(_cell["source"]).startswith("def best_response"):
            exec("".join(_cell["source"]))
            break
"""
    return hostile(FIRST, replace=code)[0]


def hunts_solutions():
    """A first answer that searches the machine for a copy of the solutions and runs its answer."""
    code = """
import json, os
_skip = {"proc", "sys", "dev", "usr", "site-packages", ".venv", ".git", ".pyenv", "lib", "lib64", "share"}
_found = []
for _top, _dirs, _files in os.walk("/"):
    _dirs[:] = [d for d in _dirs if d not in _skip]
    _found += [os.path.join(_top, f) for f in _files if f == "01_game_theory.ipynb" and "/scratch/" not in _top]
print("SOLUTIONS FOUND", len(_found))
for _path in _found:
    try:
        _cells = json.load(open(_path))["cells"]
    except (OSError, ValueError):
        continue
    for _cell in _cells:
        if "BEGIN SOLUTION" in "".join(_cell["source"]) and "def best_response" in "".join(_cell["source"]):
            exec("".join(_cell["source"]))
"""
    return hostile(FIRST, replace=code)[0]

# Output that would run in the browser of whoever opens the feedback page.
SCRIPT = """
from IPython.display import HTML, Javascript, display
display(HTML("<b>hi</b><script>window.PWNED_HTML = 1</script><img src=x onerror='window.PWNED_IMG = 1'>"))
display(Javascript("window.PWNED_JS = 1"))
"""

# student -> (notebook, questions it must lose, words the summary must say)
THREATS = {
    "infinite_loop": (hostile(FIRST, before="while True:\n    pass"), "cell time limit"),
    "ignores_interrupts": (hostile(LAST, before="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                               "while True:\n    pass"), "time limit"),
    "fork_bomb": (hostile(LAST, before="import os\nwhile True:\n    os.fork()"), None),
    "os_exit": (hostile(LAST, before="import os\nos._exit(3)"), "kernel died"),
    "segfault": (hostile(LAST, before="import ctypes\nctypes.string_at(0)"), "kernel died"),
    "reads_solutions": (hostile(FIRST, before=READ_SOLUTION), None),
    "eq_always_true": (hostile(FIRST, after=LIAR), None),
    "fools_the_kernel": (hostile(FIRST, after=WRONG_FIRST + FOOL_THE_KERNEL), None),
    "skips_the_check": (hostile(FIRST, after=WRONG_FIRST + "\n" + SKIP_THE_CHECK), "replaced course_lib.judge.check"),
    "aliased_reference": (hostile(FIRST, replace=ALIASED_REFERENCE), "called a course_lib reference"),
    "copied_reference": (hostile(FIRST, replace=COPIED_REFERENCE), "copying a course_lib reference's code (refused)"),
    "reloaded_reference": (hostile(FIRST, replace=RELOADED_REFERENCE), "a second copy of a course_lib reference"),
    "reference_in_a_subprocess": (hostile(FIRST, replace=REFERENCE_IN_A_SUBPROCESS), "starting a process"),
    "reference_in_a_helper_process": (hostile(FIRST, replace=REFERENCE_IN_A_HELPER_PROCESS),
                                      "left running were stopped before judging"),
    "records_the_reference": (hostile(FIRST, replace=RECORDS_THE_REFERENCE), "course_lib.judge.check"),
    "walks_the_stack": (hostile(FIRST, replace=WALKS_THE_STACK), "inspected the interpreter's frames"),
}
PEEKS = ("reads_a_peer", "hunts_solutions")  # made in the fixture: they need its class folder
HARMLESS = {  # hostile code that fails without costing the (correct) answer anything
    "sys_exit": hostile(LAST, after="import sys\nsys.exit(1)"),
    "output_flood": hostile(FIRST, after="print('x' * 100_000_000)"),
    "memory_hog": hostile(FIRST, after="hog = bytearray(16 * 1024**3)"),
    "network": hostile(FIRST, after="import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=3)\n"
                                    "    print('CONNECTED')\nexcept OSError as exc:\n    print('offline', exc)"),
    "reads_gradebook": hostile(FIRST, after="import glob\nprint('FOUND', glob.glob('/tmp/pytest-of-*/*/*/gradebook.db')"
                                            f" + glob.glob({str(REPO_ROOT / '.workspace' / '*.db')!r}))"),
    "writes_outside": hostile(FIRST, after=WRITE_OUTSIDE),
    "script_in_feedback": hostile(FIRST, after=SCRIPT),
}


def old_nbformat(nb) -> str:
    """The same notebook as nbformat 4.4 JSON, without cell ids."""
    data = json.loads(nbformat.writes(nb))
    data["nbformat_minor"] = 4
    for cell in data["cells"]:
        cell.pop("id", None)
    return json.dumps(data)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    # Outside /tmp (the sandbox's /tmp is private anyway, which would make the peeking
    # students fail for the wrong reason), as a class folder and another checkout are.
    outside = Path(tempfile.mkdtemp(prefix="hostile-class-", dir="/var/tmp"))
    outside.chmod(0o755)
    root = outside / "class"
    root.mkdir()
    other_checkout = outside / "other-checkout" / "solutions" / NB
    other_checkout.mkdir(parents=True)
    shutil.copyfile(SOLUTIONS / NB / f"{NB}.ipynb", other_checkout / f"{NB}.ipynb")
    notebooks = {"perfect": perfect(NB), "reads_a_peer": reads_a_peer(root), "hunts_solutions": hunts_solutions()}
    notebooks.update({s: nb for s, ((nb, _), _) in THREATS.items()})
    notebooks.update({s: nb for s, (nb, _) in HARMLESS.items()})
    for student, nb in notebooks.items():
        (root / student).mkdir()
        nbformat.write(nb, root / student / f"{NB}.ipynb")
    (root / "nbformat_44").mkdir()
    (root / "nbformat_44" / f"{NB}.ipynb").write_text(old_nbformat(perfect(NB)))
    games_before = hashlib.sha256(GAMES.read_bytes()).hexdigest()
    settings = Settings(limits=Limits(memory_mb=2048, max_processes=64, file_size_mb=64, output_mb=32,
                                      wall_seconds=NOTEBOOK_S, cell_seconds=CELL_S))
    start = time.perf_counter()
    try:
        result = grade_class(root, tmp_path_factory.mktemp("workspace"), [NB], workers=2, settings=settings)
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    result.wall_seconds = time.perf_counter() - start
    result.games_unchanged = hashlib.sha256(GAMES.read_bytes()).hexdigest() == games_before
    return result


def auto_scores(result, student) -> pd.Series:
    g = result.grades
    return g[(g.student == student) & (g.kind == "auto")].set_index("question").score


def notes(result, student) -> str:
    return "; ".join(p.reason for p in result.problems if p.student == student)


def test_the_class_finishes_within_its_limits(graded):
    students = len(THREATS) + len(HARMLESS) + len(PEEKS) + 2
    # two workers; a hostile notebook may take its whole notebook limit, the others seconds
    assert graded.wall_seconds < NOTEBOOK_S * 3 + 20 * students / 2, graded.wall_seconds


def test_the_perfect_student_keeps_every_point(graded):
    full = auto_scores(graded, "perfect")
    assert full.sum() > 0 and not notes(graded, "perfect")
    g = graded.grades
    assert (full == g[(g.student == "perfect") & (g.kind == "auto")].set_index("question").max_score).all()


@pytest.mark.parametrize("student", sorted(THREATS))
def test_a_hostile_answer_loses_its_own_question_and_says_why(graded, student):
    (_, gid), words = THREATS[student]
    full = auto_scores(graded, "perfect")
    got = auto_scores(graded, student)
    own = f"{gid}-tests"
    assert got[own] == 0, f"{student} earned points on {own}"
    earlier = list(full.index[: list(full.index).index(own)])
    # questions answered before the hostile cell keep their points
    assert (got[earlier] == full[earlier]).all(), got
    if words:
        assert words in notes(graded, student), notes(graded, student)


@pytest.mark.parametrize("student", sorted(HARMLESS) + ["nbformat_44"])
def test_harmless_misbehaviour_costs_nothing(graded, student):
    assert (auto_scores(graded, student) == auto_scores(graded, "perfect")).all(), notes(graded, student)


def printed(result, student) -> str:
    nb = nbformat.read(result.workspace / "autograded" / student / NB / f"{NB}.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_the_sandbox_kept_the_code_in(graded):
    assert graded.games_unchanged
    assert not (REPO_ROOT / "pwned.txt").exists()
    assert "offline" in printed(graded, "network") and "CONNECTED" not in printed(graded, "network")
    assert "FOUND []" in printed(graded, "reads_gradebook")
    assert printed(graded, "writes_outside").count("refused:") == 3
    flood = (graded.workspace / "autograded" / "output_flood" / NB / f"{NB}.ipynb").stat().st_size
    assert flood < 5_000_000


def test_feedback_pages_do_not_run_the_students_scripts(graded):
    """The page shows the student's HTML as text or harmless markup, never as a live script."""
    page = (graded.feedback_dir / "script_in_feedback" / NB / f"{NB}.html").read_text()
    assert "<b>hi</b>" in page  # harmless markup is still shown
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, re.S)
    assert scripts and not any("PWNED" in script for script in scripts)
    assert not re.search(r"<img[^>]*onerror", page)


def test_the_grader_not_the_kernel_decides(graded):
    """The kernel was fooled into passing the test; the grader's own comparison failed it."""
    nb = nbformat.read(graded.workspace / "autograded" / "fools_the_kernel" / NB / f"{NB}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "best-response-tests")
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["JudgedWrong"], errors


def test_grading_twice_gives_identical_scores(tmp_path):
    wrong_first = submission(NB, {**answer_cells(NB), autograded_answers(NB)[0]: "def best_response(p, i, a):\n    return [0]"})
    for student, nb in {"perfect": perfect(NB), "wrong": wrong_first}.items():
        (tmp_path / "class" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "class" / student / f"{NB}.ipynb")
    first = grade_class(tmp_path / "class", tmp_path / "ws", [NB], workers=2)
    second = grade_class(tmp_path / "class", tmp_path / "ws", [NB], workers=2)
    pd.testing.assert_frame_equal(first.grades, second.grades)
    assert first.grades.score.sum() > 0


def test_a_cell_that_ignores_the_interrupt_ends_soon_after_the_cell_limit(graded):
    """The kernel is killed a few seconds after the interrupt it ignored, not at the notebook limit."""
    assert graded.seconds[("ignores_interrupts", NB)] < CELL_S + INTERRUPT_GRACE_S + 10
    assert "ignored the interrupt" in notes(graded, "ignores_interrupts")


@pytest.mark.parametrize("student", PEEKS)
def test_peeking_at_classmates_or_solutions_finds_nothing(graded, student):
    full = auto_scores(graded, "perfect")
    got = auto_scores(graded, student)
    own = f"{autograded_answers(NB)[FIRST]}-tests"
    assert got[own] == 0
    assert (got.drop(own) == full.drop(own)).all()
    assert re.search(r"(PEERS|SOLUTIONS) FOUND 0", printed(graded, student)), printed(graded, student)[:500]
