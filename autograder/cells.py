"""What a notebook cell is to the grader: the one place these questions are answered.

Plain functions on cells as nbformat nodes or as plain JSON dicts (the sandboxed
worker reads notebooks as JSON before nbformat is loaded), without nbgrader itself:
the worker and the kernel guard import this module inside the sandbox.
"""
from __future__ import annotations

import ast
import threading

HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata ({} when it has none)."""
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def source_text(cell) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def is_test_cell(cell) -> bool:
    """A graded code cell that is not an answer: nbgrader's autograder tests."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_answer_cell(cell) -> bool:
    """A cell the student writes in (code or markdown)."""
    return bool(nbgrader_meta(cell).get("solution"))


def hidden_line_numbers(source: str, begin: str = HIDDEN_BEGIN, end: str = HIDDEN_END) -> set[int]:
    """1-based line numbers of a cell's hidden-test region, delimiters included."""
    hidden, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        if begin in line:
            inside = True
        if inside:
            hidden.add(number)
        if end in line:
            inside = False
    return hidden


_PARSING = threading.Lock()


def parse_python(source: str) -> ast.Module:
    """``ast.parse``, one thread at a time: CPython 3.11's parser keeps its recursion
    depth in shared state, and two grading threads parsing at once can fail with
    "SystemError: AST constructor recursion depth mismatch"."""
    with _PARSING:
        return ast.parse(source)
