"""nbgrader settings for this course's layout.

``solutions/`` is nbgrader's source directory and ``notebooks/`` its release
directory; everything a grading run writes (gradebook.db, submitted/, autograded/,
feedback/) goes to the workspace. The repository's top-level ``nbgrader_config.py``
calls :func:`configure`, so the plain ``nbgrader`` commands and the formgrader see
the same layout as ``course``.
"""
from __future__ import annotations

from pathlib import Path

from traitlets.config import Config

from autograder.layout import REPO_ROOT, workspace_dir

COURSE_ID = "marl-course"
CELL_TIMEOUT_S = 120  # per cell while autograding; notebooks run their quick budget then


def configure(c: Config, workspace: Path | None = None, release_directory: Path | None = None) -> Config:
    """Fill nbgrader's config ``c`` for this course and return it."""
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


    # Autograding: restore deleted test cells, never stop on a student's error,
    # and judge a test by its errors only (a warning on stderr is not a failure).
    c.OverwriteCells.add_missing_cells = True
    c.Execute.timeout = CELL_TIMEOUT_S
    c.Execute.interrupt_on_timeout = True
    c.Execute.allow_errors = True
    # The kernel's own log (e.g. its notice about TCP on loopback) is not the student's output.
    c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
    c.Autograde.sanitize_preprocessors = [
        "nbgrader.preprocessors.ClearOutput",
        "nbgrader.preprocessors.DeduplicateIds",
        "autograder.preprocessors.ForgetBrokenMetadata",
        "autograder.preprocessors.ForgetForeignCells",
        "nbgrader.preprocessors.OverwriteKernelspec",
        "nbgrader.preprocessors.OverwriteCells",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    c.Autograde.autograde_preprocessors = [
        "nbgrader.preprocessors.Execute",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "autograder.preprocessors.StderrIsNotFailure",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]

    # Feedback: nbgrader copies hidden tests into it by default; strip them, and
    # reduce test-cell tracebacks (which quote the failing line) to one line.
    c.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "autograder.preprocessors.HideTestTracebacks",
        "autograder.preprocessors.RedactHiddenTests",
        "autograder.preprocessors.ClearTestCellsHiddenTests",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    ]
    return c


def course_config(workspace: Path | None = None, release_directory: Path | None = None) -> Config:
    return configure(Config(), workspace, release_directory)
