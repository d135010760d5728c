"""A configured nbgrader API for one workspace, with its failures turned into exceptions."""
from __future__ import annotations

import logging
from pathlib import Path

from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.nbgrader_config import course_config


class NbgraderError(RuntimeError):
    """nbgrader reported a failure; the message carries its log."""


def make_api(workspace: Path, release_directory: Path | None = None) -> NbGraderAPI:
    workspace.mkdir(parents=True, exist_ok=True)
    config = course_config(workspace, release_directory)
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log_level = logging.ERROR
    return api


def checked(result: dict, what: str) -> dict:
    """Raise NbgraderError unless an NbGraderAPI call succeeded."""
    if not result.get("success"):
        detail = (result.get("error") or "") + "\n" + (result.get("log") or "")
        raise NbgraderError(f"{what} failed:\n{detail.strip()}")
    return result
