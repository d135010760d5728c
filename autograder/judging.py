"""Judge the recorded answers again, in the grader's own process.

A test cell that calls ``judge.check("nbNN.name", answer)`` (course_lib/judge.py) leaves
a record of the answer's outputs. Here, where the student's code never ran, each
record is compared with the course_lib reference on the same inputs. A wrong record,
a missing one (the check was patched away) or a duplicate (a forged extra record)
fails the cell, whatever the student's kernel concluded. The keys a cell must record
come from its source, which the grader restored from the gradebook.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from course_lib import judge

CHECK_CALL = re.compile(r"judge\.check\(\s*['\"]([A-Za-z_][\w]*\.[A-Za-z_]\w*)['\"]")
SECRET_FILE = "judge_secret"  # in the workspace, which the sandbox hides
ERROR_NAME = "JudgedWrong"
# Judge cases seed torch's global generator to build their networks; two grading
# threads judging at once would draw from it in turn and get each other's weights.
VERDICTS_ONE_AT_A_TIME = threading.Lock()


def ensure_secret(workspace: Path) -> None:
    """Create the workspace's judging secret once, before any submission runs."""
    path = workspace / SECRET_FILE
    if not path.exists():
        path.write_text(secrets.token_hex(16))


def student_seed(workspace: Path, student: str, nb_id: str) -> int:
    """A seed per student and notebook, fixed for a workspace (regrading gives the same inputs).

    Students cannot precompute answers for it: the secret lives in the workspace,
    which the sandbox hides.
    """
    ensure_secret(workspace)
    secret = (workspace / SECRET_FILE).read_text().strip()
    digest = hashlib.sha256(f"{secret}:{student}:{nb_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def expected_keys(source: str) -> list[str]:
    """The judge cases a test cell checks, in order."""
    return list(dict.fromkeys(CHECK_CALL.findall(source)))


def _records(cell) -> list[dict]:
    found = []
    for output in cell.get("outputs", []):
        data = output.get("data", {}) if output.get("output_type") in ("display_data", "execute_result") else {}
        if judge.MIME in data:
            found.append(data[judge.MIME])
    return found


def _without_records(outputs: list) -> list:
    return [o for o in outputs if judge.MIME not in o.get("data", {})]


def _fail(cell, message: str) -> None:
    cell.outputs.append(nbformat.v4.new_output("error", ename=ERROR_NAME, evalue=message,
                                               traceback=[f"{ERROR_NAME}: {message}"]))


def _problem(key: str, records: list, seed: int) -> tuple[str | None, bool]:
    """(what is wrong with the answer's record or None, whether the record was tampered with)."""
    mine = [r for r in records if isinstance(r, dict) and r.get("key") == key]
    if not mine:
        return f"{key}: the answer's values were not recorded (was the check changed?)", True
    if len(mine) > 1:
        return f"{key}: recorded {len(mine)} times; a check records once", True
    try:
        with VERDICTS_ONE_AT_A_TIME:
            wrong = judge.verdict(key, seed, mine[0].get("outputs"))
    except Exception as exc:  # noqa: BLE001 - malformed records from an untrusted kernel
        return f"{key}: the recorded values could not be judged ({exc.__class__.__name__})", True
    return (f"{key}: {wrong}" if wrong else None), False


def rejudge(nb: NotebookNode, seed: int) -> list[str]:
    """Fail every test cell whose judged records are wrong; return notes on tampering."""
    notes = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        records = _records(cell)
        cell.outputs = _without_records(cell.get("outputs", []))  # feedback shows no raw records
        keys = expected_keys(cell.source)
        if not keys or any(o.get("output_type") == "error" for o in cell.outputs):
            continue  # nothing judged here, or the cell failed already
        for key in keys:
            problem, tampered = _problem(key, records, seed)
            if problem:
                _fail(cell, problem)
                if tampered:
                    notes.append(f"test {meta.get('grade_id')}: {problem}")
                break
    return notes
