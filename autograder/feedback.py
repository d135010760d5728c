"""Feedback pages: nbgrader's feedback template, rendered by one reusable exporter.

nbgrader's GenerateFeedback builds a new converter and compiles its templates for
every student (about a second each); one HTMLExporter kept for the whole class does
the same pages for a fraction of that. The preprocessors are this course's feedback
set: grades from the gradebook, test tracebacks reduced to one line, hidden tests
removed (nbgrader would copy them into the page).
"""
from __future__ import annotations

from pathlib import Path

import nbgrader
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbformat import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

from autograder.nbgrader_config import course_config
from autograder.preprocessors import HideTestTracebacks

FORMGRADER = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"


class FeedbackWriter:
    def __init__(self, workspace: Path):
        self.workspace = workspace
        self.config = course_config(workspace)
        self.config.HTMLExporter.template_name = "feedback"
        self.config.HTMLExporter.extra_template_basedirs = [str(FORMGRADER / "templates")]
        self.config.HTMLExporter.extra_template_paths = [
            str(FORMGRADER / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
        self.exporter = HTMLExporter(config=self.config)
        for preprocessor in (GetGrades, HideTestTracebacks, ClearHiddenTests, CSSHTMLHeaderPreprocessor):
            self.exporter.register_preprocessor(preprocessor(config=self.config), enabled=True)

    def write(self, nb: NotebookNode, nb_id: str, student: str) -> Path:
        resources = {"unique_key": nb_id, "metadata": {"name": nb_id},
                     "nbgrader": {"notebook": nb_id, "assignment": nb_id, "student": student,
                                  "db_url": self.config.CourseDirectory.db_url}}
        html, _ = self.exporter.from_notebook_node(nb, resources=resources)
        target = self.workspace / "feedback" / student / nb_id / f"{nb_id}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        return target
