"""Small helpers every notebook uses: seeding and run budgets.

Taught in: every notebook's setup cell.
"""
from __future__ import annotations

import os
import random

import numpy as np

QUICK_ENV_VAR = "COURSE_QUICK"


def is_quick() -> bool:
    """True when notebooks should run their quick budget.

    Quick mode is on when ``COURSE_QUICK=1`` (tests, CI, ``course check``) or while
    nbgrader (or our grader, which sets the same variable) autogrades a notebook.
    """
    if os.environ.get(QUICK_ENV_VAR, "").strip().lower() in {"1", "true", "yes"}:
        return True
    return os.environ.get("NBGRADER_EXECUTION", "") in {"autograde", "validate"}


def budget(full, quick):
    """Return ``quick`` in quick mode and ``full`` otherwise.

    >>> budget(full=20_000, quick=500)  # doctest: +SKIP
    """
    return quick if is_quick() else full


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (when imported) PyTorch; return a NumPy Generator."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import sys

        if "torch" in sys.modules:  # seed torch only if the notebook uses it
            sys.modules["torch"].manual_seed(seed)
    except Exception:  # pragma: no cover - torch missing or broken
        pass
    return np.random.default_rng(seed)


def bench_results(name: str) -> dict | None:
    """The measured results of ``bench/<name>.py`` (``bench/results/<name>.json``), or None
    with a note when the bench has not been run.

    Works from a checkout (editable install) and from an installed wheel, which ships
    the results inside course_lib (``course_lib.bench_results``).
    """
    import json
    from importlib import resources
    from pathlib import Path

    filename = f"{name}.json"
    try:
        packaged = resources.files("course_lib.bench_results") / filename
        if packaged.is_file():
            return json.loads(packaged.read_text())
    except ModuleNotFoundError:  # an editable install maps no such package: read the checkout
        pass
    checkout = Path(__file__).resolve().parents[1] / "bench" / "results" / filename
    if checkout.is_file():
        return json.loads(checkout.read_text())
    print(f"no bench results {filename}: run `python bench/{name}.py` (or `make bench`) from the repository root")
    return None


def machine_info() -> dict:
    """Where a measurement was taken: processor, cores, platform, Python and torch versions."""
    import platform

    import torch

    return {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__}
