"""nbgrader settings for this course: its layout and its one grading pipeline.

``solutions/`` is nbgrader's source directory and ``notebooks/`` its release
directory; everything a grading run writes (gradebook.db, submitted/, autograded/,
feedback/, a local exchange) goes to the workspace. The repository's top-level
``nbgrader_config.py`` calls :func:`configure`, so the plain ``nbgrader`` commands and
the formgrader see the same layout and run the same preprocessors as ``course``, which
builds its chains from these lists too (autograder/pipeline.py).
"""
from __future__ import annotations

from pathlib import Path

from traitlets.config import Config

from autograder.layout import REPO_ROOT, workspace_dir

COURSE_ID = "marl-course"
TEMPLATES = Path(__file__).resolve().parent / "templates"

# Releasing: nbgrader's steps, with a stub that names its function.
RELEASE = [
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "nbgrader.preprocessors.InstantiateTests",
    "nbgrader.preprocessors.LockCells",
    "autograder.preprocessors.ClearSolutions",
    "nbgrader.preprocessors.ClearOutput",
    "autograder.preprocessors.CheckCellMetadata",
    "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.SaveCells",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.ClearMarkScheme",
    "nbgrader.preprocessors.ComputeChecksums",
    "autograder.preprocessors.CheckCellMetadata",
]
STUB = '# YOUR CODE HERE\nraise NotImplementedError("{function}: replace the stub with your answer")'

# Sanitizing a submission before anything runs: outputs cleared, test cells restored
# from the gradebook, cells pasted from elsewhere made plain, the author's skip tags only.
SANITIZE = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "autograder.preprocessors.ForgetBrokenMetadata",
    "autograder.preprocessors.ForgetForeignCells",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "autograder.preprocessors.CheckCellMetadata",
    "autograder.preprocessors.AuthorSkipTags",
]
# Autograding: run it in the sandbox, judge the hidden tests in the grader's process,
# fail tests that never ran, judge a test by its errors only (not stderr), save.
AUTOGRADE = [
    "autograder.preprocessors.SandboxedExecute",
    "autograder.preprocessors.Rejudge",
    "autograder.preprocessors.FailUnrunTests",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "autograder.preprocessors.StderrIsNotFailure",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "autograder.preprocessors.CheckCellMetadata",
    "autograder.preprocessors.GraderNotes",
]
# Feedback: grades and hand-grading state from the gradebook; no hidden test, neither
# as code nor quoted in an output or a traceback; math rendered offline.
FEEDBACK = [
    "autograder.preprocessors.GetGrades",
    "autograder.preprocessors.HideTestTracebacks",
    "autograder.preprocessors.RedactHiddenTests",
    "autograder.preprocessors.ClearTestCellsHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "autograder.preprocessors.OfflineMath",
]


def formgrader_templates() -> Path:
    import nbgrader

    return Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"


def configure(c: Config, workspace: Path | None = None, release_directory: Path | None = None) -> Config:
    """Fill nbgrader's config ``c`` for this course and return it."""
    from autograder.nbgrader_api import share_gradebook_engines
    from autograder.sandbox import Limits

    share_gradebook_engines()
    ws = workspace_dir(workspace)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(REPO_ROOT)
    c.CourseDirectory.source_directory = "solutions"
    # Absolute paths: nbgrader joins them to root, which keeps them as they are.
    c.CourseDirectory.release_directory = str(release_directory or REPO_ROOT / "notebooks")
    c.CourseDirectory.submitted_directory = str(ws / "submitted")
    c.CourseDirectory.autograded_directory = str(ws / "autograded")
    c.CourseDirectory.feedback_directory = str(ws / "feedback")
    c.CourseDirectory.solution_directory = str(ws / "solution")
    c.CourseDirectory.source_with_tests_directory = str(ws / "source_with_tests")
    c.CourseDirectory.db_url = f"sqlite:///{ws / 'gradebook.db'}"
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
    # A local exchange in the workspace (`course grade` releases into it): the
    # formgrader shows released assignments, and the Assignment List works.
    c.Exchange.root = str(ws / "exchange")
    c.Exchange.assignment_dir = str(ws / "fetched")

    c.GenerateAssignment.preprocessors = list(RELEASE)
    c.ClearSolutions.code_stub = {"python": STUB}

    c.OverwriteCells.add_missing_cells = True
    c.Autograde.sanitize_preprocessors = list(SANITIZE)
    c.Autograde.autograde_preprocessors = list(AUTOGRADE)
    # The Validate button runs nbgrader's own Execute (the student's notebook, unsandboxed).
    c.Execute.timeout = Limits.cell_seconds
    c.Execute.interrupt_on_timeout = True
    # The kernel's own log (e.g. its notice about TCP on loopback) is not the student's output.
    c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]

    c.GenerateFeedback.preprocessors = list(FEEDBACK)
    # The course's feedback template (autograder/templates/feedback) comes first, before
    # nbgrader's of the same name; the formgrader picks its own by name. A page shows
    # what the student's code displayed: scripts and raw HTML are sanitized, or they
    # would run in the reader's browser.
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(formgrader_templates())]
    c.HTMLExporter.sanitize_html = True
    return c


def course_config(workspace: Path | None = None, release_directory: Path | None = None) -> Config:
    return configure(Config(), workspace, release_directory)
