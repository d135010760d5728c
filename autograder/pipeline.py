"""The preprocessor chains of autograder/nbgrader_config.py, built and run the way nbgrader does.

``course grade`` grades each submission with the same lists a plain ``nbgrader
autograde`` / ``generate_feedback`` reads from the course's config, without nbgrader's
per-submission file shuffling (submitted/ to autograded/ and back), so the two routes
run the same steps. Each submission gets fresh preprocessor instances (they keep
per-notebook state, and grading threads run at once).
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Callable

from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
from traitlets.config import Config
from traitlets.utils.importstring import import_item

WRITES_GRADEBOOK = (SaveAutoGrades, AssignLatePenalties)


def chain(config: Config, names: list) -> list[Preprocessor]:
    """The preprocessors named in ``names`` (dotted names or classes), configured by ``config``."""
    return [(import_item(name) if isinstance(name, str) else name)(config=config) for name in names]


def run(preprocessors: list[Preprocessor], nb, resources: dict,
        writing: AbstractContextManager = nullcontext(), before_writing: Callable[[], None] | None = None):
    """Run ``nb`` through ``preprocessors`` as nbconvert does (a disabled one is skipped).

    The steps that write the gradebook run while ``writing`` is held (SQLite takes one
    writer at a time); ``before_writing`` runs once under it, before the first of them."""
    prepared = False
    for preprocessor in preprocessors:
        if isinstance(preprocessor, WRITES_GRADEBOOK):
            with writing:
                if before_writing and not prepared:
                    before_writing()
                    prepared = True
                nb, resources = preprocessor(nb, resources)
        else:
            nb, resources = preprocessor(nb, resources)
    return nb, resources
