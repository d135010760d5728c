"""A configured nbgrader API for one workspace, with its failures turned into exceptions."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import jsonschema
import nbgrader.api
import sqlalchemy
import nbgrader.nbgraderformat.common
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.dbutil import ALEMBIC_DIR

from autograder.nbgrader_config import course_config


class NbgraderError(RuntimeError):
    """nbgrader reported a failure; the message carries its log."""


def alembic_head() -> str:
    """The gradebook schema's newest revision, read with alembic's own API.

    nbgrader asks a new `alembic` process for it each time it creates a gradebook,
    2 to 4 s of every grading run; the same scripts read here cost a few milliseconds.
    """
    from alembic.script import ScriptDirectory

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


nbgrader.api.get_alembic_version = alembic_head


class SchemaValidation:
    """``jsonschema.validate`` with one validator kept per schema.

    nbgrader validates every cell's metadata with ``jsonschema.validate``, which
    checks the schema itself again on each call: 0.2 s of CPU per graded notebook,
    nine tenths of it on the unchanging schema. Same errors, raised the same way.
    """

    def __init__(self):
        self._validators: dict[int, tuple[dict, jsonschema.protocols.Validator]] = {}

    def validate(self, instance, schema) -> None:
        kept = self._validators.get(id(schema))
        if kept is None or kept[0] is not schema:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            kept = self._validators[id(schema)] = (schema, cls(schema))
        error = jsonschema.exceptions.best_match(kept[1].iter_errors(instance))
        if error is not None:
            raise error


nbgrader.nbgraderformat.common.jsonschema = SchemaValidation()

_engines: dict[tuple, sqlalchemy.Engine] = {}


def shared_engine(db_url: str, **kwargs) -> sqlalchemy.Engine:
    """One SQLAlchemy engine per gradebook for the whole process.

    nbgrader opens a new Gradebook, and so a new engine, several times for each
    submission, and each new engine compiles every query again (a tenth of the
    grader's own time per submission). A kept engine keeps its compiled queries; the
    Gradebook's close() still returns its connections (dispose), as before.
    """
    key = (db_url, tuple(sorted(kwargs.items())))
    if key not in _engines:
        _engines[key] = sqlalchemy.create_engine(db_url, **kwargs)
    return _engines[key]


nbgrader.api.create_engine = shared_engine


def _alembic_on_path() -> None:
    # nbgrader runs `alembic` from PATH when it creates a gradebook: make this
    # interpreter's scripts visible even when the virtual environment is not activated.
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def make_api(workspace: Path, release_directory: Path | None = None) -> NbGraderAPI:
    _alembic_on_path()
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
