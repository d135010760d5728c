"""nbgrader preprocessors that make grading fairer and feedback safe.

- StderrIsNotFailure: nbgrader zeroes a test cell that wrote anything to stderr,
  so a correct answer that triggers a harmless warning would lose its points. Only
  an error fails a test; the stderr text stays visible as ordinary output.
- ForgetBrokenMetadata: nbgrader's DeduplicateIds leaves an empty ``nbgrader``
  entry on a copied cell, on which its own OverwriteCells then fails for the
  whole notebook. A cell whose nbgrader metadata has no grade id becomes a
  plain cell; the original it was copied from is restored from the gradebook.
- HideTestTracebacks: a traceback quotes the failing line of the test cell, and
  that line may be a hidden test. In feedback, a failing test cell keeps only the
  exception's type and message, and says "a hidden test failed" when the failing
  line lies in the hidden part.
"""
from __future__ import annotations

import re

from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython names the cell's own frame "Cell In[7], line 12" (older: "<ipython-input-7-...> in <module>\n---> 12").
CELL_LINE = re.compile(r"(?:Cell In\s*\[\d*\],\s*line\s+(\d+))|(?:^-+>\s*(\d+))", re.MULTILINE)


GRADER_ERRORS = {"NotRun", "CellTimeoutError", "NoReply"}


def _is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


class StderrIsNotFailure(NbGraderPreprocessor):
    """Turn stderr output of test cells into stdout so only errors fail a test."""

    def preprocess_cell(self, cell, resources, index):
        if _is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


class ForgetBrokenMetadata(NbGraderPreprocessor):
    """Drop nbgrader metadata that names no grade id (duplicates, hand-edited metadata)."""

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {})
        if "nbgrader" in meta and not meta["nbgrader"].get("grade_id"):
            del meta["nbgrader"]
        return cell, resources


def hidden_line_numbers(source: str, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS") -> set[int]:
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


def failing_cell_line(traceback_lines: list[str]) -> int | None:
    """The line of the test cell itself where the error was raised, if the traceback says."""
    text = ANSI.sub("", "\n".join(traceback_lines))
    first_frame = CELL_LINE.search(text)
    if not first_frame:
        return None
    return int(first_frame.group(1) or first_frame.group(2))


class HideTestTracebacks(NbGraderPreprocessor):
    """Reduce errors in test cells to one line that never quotes hidden test code."""

    hidden_message = Unicode("a hidden test failed", help="Shown instead of a hidden test's error").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if not _is_test_cell(cell):
            return cell, resources
        hidden = hidden_line_numbers(cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            line = failing_cell_line(output.get("traceback", []))
            ename, evalue = output.get("ename", "Error"), str(output.get("evalue", ""))
            if ename in GRADER_ERRORS:  # written by the grader, not raised by a test
                summary = f"{ename}: {evalue}"
            elif hidden and (line is None or line in hidden):
                summary = f"{ename}: {self.hidden_message}" + (f" ({evalue})" if evalue else "")
            else:
                summary = f"{ename}: {evalue}" if evalue else ename
            output["traceback"] = [summary]
        return cell, resources
