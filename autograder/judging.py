"""Hidden tests, judged by the grader: what each test cell's hidden part asks, and the verdicts.

A hidden part holds ``judge.check("nbNN.name", answer)`` calls (course_lib/judge.py),
with the imports and ``assert_written_here`` lines that go with them. The grader never
sends it to the student's kernel: :func:`kernel_copy` blanks it out and lists its calls;
after the test cell ran, the worker has the kernel's guard run each call
(autograder/kernel_guard.py) and reports the answer's outputs in a record signed by the
guard. Here, in the grader's own process, where no student code runs, :func:`rejudge`
compares those outputs with the course_lib reference on the same inputs and fails the
cell when they differ, when the record is missing or forged, or when the answer called
a reference or is not the notebook's own; the notes say why.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import secrets
import threading
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from autograder.cells import grade_id, hidden_line_numbers, is_test_cell, parse_python
from course_lib import judge

SECRET_FILE = "judge_secret"  # in the workspace, which the sandbox hides
ERROR_NAME = "JudgedWrong"
# Judge cases seed torch's global generator to build their networks; two grading
# threads judging at once would draw from it in turn and get each other's weights.
VERDICTS_ONE_AT_A_TIME = threading.Lock()
IMPLIED = {"assert_written_here"}  # the guard checks that the answer is the notebook's own


def ensure_secret(workspace: Path) -> None:
    """Create the workspace's judging secret once, before any submission runs."""
    path = workspace / SECRET_FILE
    if not path.exists():
        path.write_text(secrets.token_hex(16))


def student_seed(workspace: Path, student: str, nb_id: str) -> int:
    """A seed per student and notebook, fixed for a workspace (regrading gives the same inputs).

    Students cannot precompute answers for it: the secret lives in the workspace, which
    the sandbox hides, and only the worker ever holds the seed (never the kernel).
    """
    ensure_secret(workspace)
    secret = (workspace / SECRET_FILE).read_text().strip()
    digest = hashlib.sha256(f"{secret}:{student}:{nb_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def hidden_calls(source: str) -> list[tuple[str, str]]:
    """(case key, answer name) of each ``judge.check`` in a hidden part, in order.

    Raises ValueError on anything else but the imports and ``assert_written_here``
    lines that go with them: the grader runs no other hidden code.
    """
    calls = []
    for node in parse_python(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        call = node.value if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
        func = call.func if call else None
        if isinstance(func, ast.Name) and func.id in IMPLIED:
            continue
        if (isinstance(func, ast.Attribute) and func.attr == "check" and len(call.args) >= 2
                and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
                and isinstance(call.args[1], ast.Name)):
            calls.append((call.args[0].value, call.args[1].id))
            continue
        raise ValueError(f"hidden tests may only call judge.check(key, answer); line {node.lineno} does more")
    return calls


def kernel_copy(nb: NotebookNode) -> tuple[NotebookNode, dict[int, list[tuple[str, str]]]]:
    """The notebook as the kernel gets it, with every hidden test part blanked out (its
    lines kept, empty, so line numbers stay), and the judged calls of each test cell."""
    nb = copy.deepcopy(nb)
    calls: dict[int, list[tuple[str, str]]] = {}
    for index, cell in enumerate(nb.cells):
        hidden = hidden_line_numbers(cell.source) if is_test_cell(cell) else set()
        if not hidden:
            continue
        lines = cell.source.split("\n")
        part = "\n".join(line for number, line in enumerate(lines, start=1) if number in hidden)
        try:
            calls[index] = hidden_calls(part)
        except (SyntaxError, ValueError) as exc:
            calls[index] = [("", f"cannot be judged: {exc}")]
        cell.source = "\n".join("" if number in hidden else line for number, line in enumerate(lines, start=1))
    return nb, calls


def case_modules(calls: dict[int, list[tuple[str, str]]]) -> list[str]:
    """The case modules the calls need (the fork server imports them once)."""
    return sorted({f"{judge.CASES_PACKAGE}.{key.partition('.')[0]}" for pairs in calls.values()
                   for key, _ in pairs if key})


def _fail(cell, message: str) -> None:
    cell.outputs.append(nbformat.v4.new_output("error", ename=ERROR_NAME, evalue=message,
                                               traceback=[f"{ERROR_NAME}: {message}"]))


def _without_records(outputs: list) -> list:
    return [o for o in outputs if judge.MIME not in o.get("data", {})]


def _problem(key: str, records: list, seed: int) -> tuple[str | None, bool]:
    """(what is wrong with the answer's outputs or None, whether the record was tampered with).

    ``records``: the judged records the worker reported for this cell."""
    mine = [r for r in records if isinstance(r, dict) and r.get("key") == key]
    if not mine:
        return f"{key}: the answer's values were not recorded", True
    if len(mine) > 1:
        return f"{key}: recorded {len(mine)} times; a check records once", True
    try:
        with VERDICTS_ONE_AT_A_TIME:
            wrong = judge.verdict(key, seed, mine[0].get("outputs"))
    except Exception as exc:  # noqa: BLE001 - malformed records from an untrusted kernel
        return f"{key}: the recorded values could not be judged ({exc.__class__.__name__})", True
    return wrong, False


def _judge_call(test: str, key: str, name: str, result: dict | None, seed: int) -> tuple[str | None, list[str]]:
    """(why the answer fails this call or None, notes for the summary) for one judged call of test cell ``test``."""
    if not key:
        return f"the grader cannot judge this test: {name}", [f"test {test}: {name}"]
    notes = []
    if result and result.get("stopped"):
        notes.append(f"{result['stopped']} process(es) the notebook left running were stopped before judging")
    record = result.get("record") if result else None
    if not isinstance(record, dict):
        why = ("no answer came back from the judged call" if not result or not result.get("shown") else
               "the judged call's record was not the grader's (forged or repeated)")
        return f"`{name}` could not be judged: {why}", notes + [f"test {test}: `{name}`: {why}"]
    notes += [f"the notebook {entry}" for entry in record.get("log", []) if isinstance(entry, str)][:5]
    if record.get("problem"):
        return (f"`{name}` could not be judged: {record['problem']}",
                notes + [f"test {test}: `{name}`: {record['problem']}"])
    if record.get("missing"):
        return f"`{name}` is not defined; define it in its answer cell", notes
    if record.get("not_written_here"):
        why = f"`{name}` must be written in this notebook; {record['not_written_here']}"
        return why, notes + [f"test {test}: {why}"]
    error = record.get("error")
    current = judge.lookup(key)
    if isinstance(error, dict):
        i = int(error.get("input", 0))
        with VERDICTS_ONE_AT_A_TIME:
            words = current.words(current.inputs(seed)[i])
        exc_name, _, message = str(error.get("message", "")).partition(": ")
        return judge.raised(name, words, exc_name or "an error", message), notes
    problem, tampered = _problem(key, [record], seed)
    if problem and tampered:
        notes.append(f"test {test}: `{name}`: {problem}")
    return (f"`{name}` {problem}" if problem else None), notes


def rejudge(nb: NotebookNode, seed: int, calls: dict[int, list[tuple[str, str]]],
            judged: dict[int, list[dict]]) -> list[str]:
    """Fail every test cell whose judged calls went wrong; return notes on tampering.

    ``calls``: the judged calls of each test cell (from :func:`kernel_copy`); ``judged``:
    what the worker reported for them, by cell index."""
    notes: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = _without_records(cell.get("outputs", []))  # records of old kits: never shown
        if index not in calls or cell.get("execution_count") is None:
            continue
        if any(o.get("output_type") == "error" for o in cell.outputs):
            continue  # the visible part failed already
        results = {r.get("key"): r for r in judged.get(index, []) if isinstance(r, dict)}
        for key, name in calls[index]:
            problem, found = _judge_call(grade_id(cell), key, name, results.get(key), seed)
            notes += [n for n in found if n not in notes]
            if problem:
                _fail(cell, problem)
                break
    return notes
