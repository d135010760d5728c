"""The course's nbgrader preprocessors: every step of grading that plain nbgrader lacks.

They are listed, in order, once: in ``autograder/nbgrader_config.py``
(``Autograde.sanitize_preprocessors``, ``Autograde.autograde_preprocessors``,
``GenerateFeedback.preprocessors``, ``GenerateAssignment.preprocessors``). ``course
grade`` runs those lists (autograder/pipeline.py), and so does a plain ``nbgrader
autograde`` / ``generate_feedback`` with the course's config.

Releasing:
- ClearSolutions: nbgrader's, with a stub that names its function ("best_response:
  replace the stub with your answer") instead of a bare NotImplementedError.

Sanitizing (before anything runs):
- ForgetBrokenMetadata: nbgrader's DeduplicateIds leaves an empty ``nbgrader``
  entry on a copied cell, on which its own OverwriteCells then fails for the
  whole notebook. A cell whose nbgrader metadata has no grade id becomes a
  plain cell; the original it was copied from is restored from the gradebook.
- ForgetForeignCells: a cell pasted from another notebook keeps that notebook's
  grade id (JupyterLab copies the metadata), which OverwriteCells cannot place and
  fails on, for the whole notebook. Such a cell becomes a plain cell, with a note
  in ``resources["nbgrader"]["notes"]``; the rest is graded as usual.
- CheckCellMetadata: nbgrader's, with one JSON-schema validator kept per schema
  (nbgrader checks the unchanging schema itself again for every cell).
- AuthorSkipTags: only the author decides which cells grading may skip.

Autograding:
- SandboxedExecute: runs the notebook in the sandbox, with the judge's guard, and
  never sends hidden test code to the kernel (autograder/execution.py).
- Rejudge: the hidden tests' verdicts, made in the grader's own process
  (autograder/judging.py). Until it has run, every judged test cell fails.
- FailUnrunTests: a test cell that never ran fails (nbgrader reads no output as a pass).
- StderrIsNotFailure: nbgrader zeroes a test cell that wrote anything to stderr,
  so a correct answer that triggers a harmless warning would lose its points. Only
  an error fails a test; the stderr text stays visible as ordinary output.
- GraderNotes: what went wrong, in one line at the top of the graded notebook.

Feedback:
- GetGrades: nbgrader's, which also says which answers await hand grading and keeps
  only comments a grader wrote.
- HideTestTracebacks: a traceback quotes the failing line of the test cell, and
  that line may be a hidden test. In feedback, a failing test cell keeps only the
  exception's type and message, and says "a hidden test failed" when the failing
  line lies in the hidden part.
- RedactHiddenTests: no output of any cell may quote a line of hidden test code
  (the grader never sends it to the kernel; this is the second line of defence).
- ClearTestCellsHiddenTests: nbgrader's ClearHiddenTests, on test cells only: an
  answer that quotes the hidden-test marker keeps its page.
- OfflineMath: MathJax from a Python package, written next to the page (no CDN).
"""
from __future__ import annotations

import atexit
import re
import threading
from pathlib import Path

import jsonschema
import nbformat
from nbgrader import preprocessors as nbp
from nbgrader.nbgraderformat import MetadataValidator, SchemaTooNewError, SchemaTooOldError, ValidationError
from nbgrader.nbgraderformat.common import BaseMetadataValidator
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from traitlets import Bool, Float, Integer, Unicode

from autograder.cells import grade_id, hidden_line_numbers, is_test_cell
from autograder.sandbox import Limits

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython names the cell's own frame "Cell In[7], line 12" (older: "<ipython-input-7-...> in <module>\n---> 12").
CELL_LINE = re.compile(r"(?:Cell In\s*\[(\d*)\],\s*line\s+(\d+))|(?:^-+>\s*(\d+))", re.MULTILINE)
GRADER_ERRORS = {"NotRun", "CellTimeoutError", "NoReply", "AwaitingVerdict"}
SKIP_TAG = "grading-skip"  # demo cells the author marked as not needed for grading


def notes(resources) -> list[str]:
    """The grader's notes on this submission (one line each), kept in ``resources``."""
    return resources.setdefault("nbgrader", {}).setdefault("notes", [])


def course_state(resources) -> dict:
    """What the course's steps hand each other in ``resources``: the judged calls, the
    seed, and, under ``course grade``, its fork servers and settings."""
    return resources.setdefault("autograder", {})


# ----------------------------------------------------------------- releasing
class ClearSolutions(nbp.ClearSolutions):
    """nbgrader's ClearSolutions; ``{function}`` in the stub becomes the name of the
    function the solution region lies in."""

    DEF = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)\s*\(")

    def _replace_solution_region(self, cell, language):
        replaced = super()._replace_solution_region(cell, language)
        if replaced and cell.cell_type == "code" and "{function}" in cell.source:
            lines, name = [], "this function"
            for line in cell.source.split("\n"):
                found = self.DEF.match(line)
                name = found.group(1) if found else name
                lines.append(line.replace("{function}", name))
            cell.source = "\n".join(lines)
        return replaced


# ----------------------------------------------------------------- sanitizing
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
        self.notes = notes(resources)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {})
        found = grade_id(cell)
        if found and found not in self.known:
            del meta["nbgrader"]
            self.notes.append(f"cell {index + 1} came from another notebook (grade id {found!r}): "
                              "graded as a plain cell")
        return cell, resources


def _kept_validator(version: int, schema: dict):
    """One JSON-schema validator per schema version, kept: nbgrader's ``jsonschema.validate``
    checks the unchanging schema itself again for every cell (0.2 s of CPU per notebook)."""
    with _KEPT_LOCK:
        if version not in _KEPT:
            validator_class = jsonschema.validators.validator_for(schema)
            validator_class.check_schema(schema)
            _KEPT[version] = validator_class(schema)
    return _KEPT[version]


_KEPT: dict[int, object] = {}
_KEPT_LOCK = threading.Lock()


class _SchemaCheck(BaseMetadataValidator):
    """nbgrader's schema check of one cell (BaseMetadataValidator.validate_cell), same
    errors, with a kept validator. Placed under MetadataValidatorV3 by inheritance, so
    its own checks call this one."""

    def validate_cell(self, cell):
        if "nbgrader" not in cell.metadata:
            return
        version = cell.metadata["nbgrader"].get("schema_version", 0)
        if version < self.schema_version:
            raise SchemaTooOldError(f"Outdated schema version: {version} (expected {self.schema_version})",
                                    version, self.schema_version)
        if version > self.schema_version:
            raise SchemaTooNewError(f"Schema version is too new: {version} (expected {self.schema_version})",
                                    version, self.schema_version)
        error = jsonschema.exceptions.best_match(_kept_validator(self.schema_version, self.schema).iter_errors(cell.metadata["nbgrader"]))
        if error is not None:
            raise error


class _MetadataValidator(MetadataValidator, _SchemaCheck):
    """nbgrader's metadata validator (MRO: its own checks, then _SchemaCheck's)."""


class CheckCellMetadata(nbp.CheckCellMetadata):
    """nbgrader's CheckCellMetadata, with kept schema validators."""

    def preprocess(self, nb, resources):
        try:
            _MetadataValidator().validate_nb(nb)
        except ValidationError:
            self.log.error("Notebook failed to validate; the nbgrader metadata may be corrupted.")
            raise ValidationError("Notebook failed to validate; the nbgrader metadata may be corrupted.")
        return nb, resources


class AuthorSkipTags(NbGraderPreprocessor):
    """The ``grading-skip`` tag stays only on the cells the author tagged in the source."""

    def preprocess(self, nb, resources):
        from autograder.execution import demo_cells

        skippable = demo_cells(resources["nbgrader"]["notebook"]).cells
        for cell in nb.cells:
            tags = [t for t in cell.metadata.get("tags", []) if t != SKIP_TAG]
            if grade_id(cell) in skippable:
                tags.append(SKIP_TAG)
            if tags:
                cell.metadata["tags"] = tags
            else:
                cell.metadata.pop("tags", None)
        nbformat.validator.normalize(nb)
        return nb, resources


# ----------------------------------------------------------------- autograding
class SandboxedExecute(NbGraderPreprocessor):
    """Run the notebook in the grading sandbox, its hidden tests judged by the grader.

    ``course grade`` hands its fork servers over in ``resources`` (one per grading
    thread); a plain ``nbgrader autograde`` gets fork servers of its own, kept for the
    run. The limits' defaults are autograder/sandbox.py's ``Limits``.
    """

    sandboxed = Bool(True, help="Run submissions under bubblewrap (False: only limits and "
                                "time-outs, no isolation; for code you trust)").tag(config=True)
    cell_timeout = Integer(Limits.cell_seconds, help="Seconds a cell may run").tag(config=True)
    time_limit = Float(Limits.wall_seconds, help="Seconds a notebook may run").tag(config=True)
    memory_mb = Integer(Limits.memory_mb, help="Memory a submission may use (MB)").tag(config=True)
    skip_demos = Bool(True, help="Skip the cells the author tagged grading-skip "
                                 "(run again in full when a test needs them)").tag(config=True)

    def settings(self):
        from autograder.execution import Settings

        return Settings(sandboxed=self.sandboxed, skip_demos=self.skip_demos,
                        limits=Limits(memory_mb=self.memory_mb, wall_seconds=self.time_limit,
                                      cell_seconds=self.cell_timeout))

    def preprocess(self, nb, resources):
        from autograder import execution

        info, state = resources["nbgrader"], course_state(resources)
        nb_id, student = info["notebook"], info["student"]
        workspace = Path(info["db_url"].removeprefix("sqlite:///")).parent
        settings = state.get("settings") or self.settings()
        sessions = state.get("sessions") or _own_sessions(workspace, settings, nb_id)
        folder = Path(resources.get("metadata", {}).get("path") or ".")
        run = execution.execute(nb, nb_id, student, workspace, sessions, folder, settings)
        state.update(calls=run.calls, judged=run.judged, seed=run.seed, seconds=run.seconds, stopped=run.note)
        if run.note:
            notes(resources).append(run.note)
        for index in run.calls:  # failed until Rejudge has judged it
            cell = run.notebook.cells[index]
            if cell.get("execution_count") is not None and not _has_error(cell):
                cell.outputs.append(_error("AwaitingVerdict", "the grader has not judged this test"))
        return run.notebook, resources


_SESSIONS: dict[tuple, object] = {}
_SESSIONS_LOCK = threading.Lock()


def _own_sessions(workspace: Path, settings, nb_id: str):
    """Fork servers for a plain ``nbgrader autograde`` run, one set per notebook, closed at exit."""
    from autograder import execution

    key = (str(workspace), repr(settings), nb_id)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            if settings.sandboxed:
                from autograder import sandbox

                ok, why = sandbox.check_sandbox()
                if not ok:
                    raise RuntimeError(f"cannot grade in the sandbox: {why}")
            _SESSIONS[key] = pool = execution.sessions(workspace, settings, [nb_id])
            atexit.register(pool.close)
        return _SESSIONS[key]


def _has_error(cell) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def _error(ename: str, evalue: str):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class Rejudge(NbGraderPreprocessor):
    """Judge the answers the hidden tests name, in the grader's own process."""

    def preprocess(self, nb, resources):
        from autograder import judging

        state = course_state(resources)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.get("outputs", []) if o.get("ename") != "AwaitingVerdict"]
        if "calls" in state:
            for note in judging.rejudge(nb, state["seed"], state["calls"], state["judged"]):
                notes(resources).append(note)
        return nb, resources


class FailUnrunTests(NbGraderPreprocessor):
    """A test cell that never ran fails, with the reason (nbgrader reads no output as a pass)."""

    def preprocess(self, nb, resources):
        reason = course_state(resources).get("stopped") or "the notebook stopped before this cell ran"
        unrun = 0
        for cell in nb.cells:
            if is_test_cell(cell) and cell.get("execution_count") is None:
                cell.outputs = [_error("NotRun", reason)]
                unrun += 1
        if unrun and not course_state(resources).get("stopped"):
            notes(resources).append(f"{unrun} test cell(s) did not run")
        return nb, resources


class StderrIsNotFailure(NbGraderPreprocessor):
    """Turn stderr output of test cells into stdout so only errors fail a test."""

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


class GraderNotes(NbGraderPreprocessor):
    """Say what went wrong at the top of the graded notebook (and so of its feedback)."""

    def preprocess(self, nb, resources):
        said = notes(resources)
        if said:
            nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Grader note:** {'; '.join(said)}."))
        return nb, resources


# ----------------------------------------------------------------- feedback
class GetGrades(nbp.GetGrades):
    """nbgrader's GetGrades; also marks answers that await hand grading, and keeps only
    the comments a grader wrote (not nbgrader's automatic "No response.")."""

    def _get_comment(self, cell, resources):
        comment = self.gradebook.find_comment(grade_id(cell), self.notebook_id, self.assignment_id,
                                              self.student_id)
        cell.metadata.nbgrader["comment"] = (comment.manual_comment or "").strip() or None
        cell.metadata.nbgrader["unanswered"] = comment.auto_comment == "No response."

    def _get_score(self, cell, resources):
        from autograder.grades import awaits_hand_grading

        grade = self.gradebook.find_grade(grade_id(cell), self.notebook_id, self.assignment_id, self.student_id)
        cell.metadata.nbgrader["score"] = grade.score
        cell.metadata.nbgrader["points"] = grade.max_score
        cell.metadata.nbgrader["awaiting"] = awaits_hand_grading(grade.needs_manual_grade, grade.manual_score)

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        awaiting = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("awaiting")]
        resources["nbgrader"]["awaiting"] = len(awaiting)
        resources["nbgrader"]["awaiting_points"] = sum(c.metadata.nbgrader.get("points") or 0 for c in awaiting)
        return nb, resources


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
        if not is_test_cell(cell):
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
            secret = hidden_line_numbers(cell.source) if is_test_cell(cell) else set()
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
        if not is_test_cell(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, index)


class OfflineMath(NbGraderPreprocessor):
    """MathJax (SVG output, one file) from the django-static-mathjax package, written
    next to the page as ``mathjax/`` (nbconvert's writer writes ``resources["outputs"]``),
    so a page renders its math offline, also when handed to a student on its own."""

    FILES = ("tex-svg.js", "ui/safe.js")  # the renderer; the extension that refuses unsafe links

    @staticmethod
    def source(name: str) -> Path:
        import mathjax

        return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / name

    def preprocess(self, nb, resources):
        outputs = resources.setdefault("outputs", {})
        for name in self.FILES:
            outputs[f"mathjax/{name}"] = _read_once(self.source(name))
        return nb, resources


_READ: dict[Path, bytes] = {}


def _read_once(path: Path) -> bytes:
    if path not in _READ:
        _READ[path] = path.read_bytes()
    return _READ[path]
