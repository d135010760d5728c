"""nbgrader preprocessors that make grading fairer and feedback safe.

- StderrIsNotFailure: nbgrader zeroes a test cell that wrote anything to stderr,
  so a correct answer that triggers a harmless warning would lose its points. Only
  an error fails a test; the stderr text stays visible as ordinary output.
- ForgetBrokenMetadata: nbgrader's DeduplicateIds leaves an empty ``nbgrader``
  entry on a copied cell, on which its own OverwriteCells then fails for the
  whole notebook. A cell whose nbgrader metadata has no grade id becomes a
  plain cell; the original it was copied from is restored from the gradebook.
- ForgetForeignCells: a cell pasted from another notebook keeps that notebook's
  grade id (JupyterLab copies the metadata), which OverwriteCells cannot place and
  fails on, for the whole notebook. Such a cell becomes a plain cell, with a note
  in ``resources["nbgrader"]["notes"]``; the rest is graded as usual.
- HideTestTracebacks: a traceback quotes the failing line of the test cell, and
  that line may be a hidden test. In feedback, a failing test cell keeps only the
  exception's type and message, and says "a hidden test failed" when the failing
  line lies in the hidden part.
- RedactHiddenTests: no output of any cell may quote a line of hidden test code
  (the grader never sends it to the kernel; this is the second line of defence).
- ClearTestCellsHiddenTests: nbgrader's ClearHiddenTests, on test cells only: an
  answer that quotes the hidden-test marker keeps its page.
"""
from __future__ import annotations

import re

from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from traitlets import Unicode

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython names the cell's own frame "Cell In[7], line 12" (older: "<ipython-input-7-...> in <module>\n---> 12").
CELL_LINE = re.compile(r"(?:Cell In\s*\[(\d*)\],\s*line\s+(\d+))|(?:^-+>\s*(\d+))", re.MULTILINE)


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


class ForgetForeignCells(NbGraderPreprocessor):
    """Drop nbgrader metadata whose grade id this notebook's source does not have."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            source = gb.find_notebook(info["notebook"], info["assignment"])
            self.known = {cell.name for cell in source.source_cells}
        self.notes = info.setdefault("notes", [])
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {})
        grade_id = meta.get("nbgrader", {}).get("grade_id")
        if grade_id and grade_id not in self.known:
            del meta["nbgrader"]
            self.notes.append(f"cell {index + 1} came from another notebook (grade id {grade_id!r}): "
                              "graded as a plain cell")
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
    """The line of the test cell itself where the error was raised, if the traceback says
    (its innermost frame in the cell: a test cell runs inside a function of its own)."""
    text = ANSI.sub("", "\n".join(traceback_lines))
    frames = list(CELL_LINE.finditer(text))
    if not frames:
        return None
    own = [f for f in frames if f.group(1) == frames[0].group(1)]  # not the answer cells it called
    return int(own[-1].group(2) or own[-1].group(3))


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


REDACTED = "[hidden test code]"
MIN_REDACTED = 10  # shorter lines (a bracket, "x = 1") say nothing and appear everywhere


class RedactHiddenTests(NbGraderPreprocessor):
    """Cut every line of hidden test code out of every output (text, HTML, errors)."""

    def preprocess(self, nb, resources):
        hidden, visible = set(), set()
        for cell in nb.cells:
            secret = hidden_line_numbers(cell.source) if _is_test_cell(cell) else set()
            for number, line in enumerate(cell.source.split("\n"), start=1):
                (hidden if number in secret else visible).add(line.strip())
        self.lines = sorted((line for line in hidden - visible if len(line) >= MIN_REDACTED), key=len, reverse=True)
        self.lines += ["BEGIN HIDDEN TESTS", "END HIDDEN TESTS"]
        return super().preprocess(nb, resources)

    def _redact(self, value):
        if isinstance(value, str):
            for line in self.lines:
                value = value.replace(line, REDACTED)
            return value
        if isinstance(value, list):
            return [self._redact(v) for v in value]
        if isinstance(value, dict):
            return {k: self._redact(v) for k, v in value.items()}
        return value

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            for field in ("text", "evalue", "traceback"):
                if field in output:
                    output[field] = self._redact(output[field])
            if "data" in output:
                output["data"] = {mime: self._redact(v) if mime.startswith("text/") else v
                                  for mime, v in output["data"].items()}
        return cell, resources


class ClearTestCellsHiddenTests(ClearHiddenTests):
    """nbgrader's ClearHiddenTests for test cells; other cells are the student's text."""

    def preprocess_cell(self, cell, resources, index):
        if not _is_test_cell(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, index)
