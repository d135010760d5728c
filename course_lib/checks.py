"""Helpers for the self-checks and hidden tests in the notebooks.

Every test cell compares the student's answer with the course_lib reference after
coercing both to plain numbers, so an object that redefines ``==`` or a subclass of
``ndarray`` cannot change the verdict, and says what differs in words a student can
act on.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def as_numbers(value: Any, name: str = "answer") -> np.ndarray:
    """``value`` as a plain float64 array (copied), or an AssertionError saying why not."""
    try:
        array = np.array(value, dtype=float, copy=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not numbers"
        raise AssertionError(
            f"{name} should be numbers (an array, list or float); "
            f"got {type(value).__name__} that could not be converted: {exc}"
        ) from None
    return np.ascontiguousarray(array).view(np.ndarray)


def assert_close(actual: Any, expected: Any, name: str = "answer", atol: float = 1e-6, rtol: float = 1e-6) -> None:
    """Assert ``actual`` matches ``expected`` in shape and value, with a helpful message.

    The default tolerance admits float32 arithmetic (a relative error of about 1e-7).
    """
    got = as_numbers(actual, name)
    want = as_numbers(expected, "the reference")
    if got.shape != want.shape:
        raise AssertionError(f"{name} has shape {got.shape}, expected {want.shape}")
    bad = ~np.isclose(got, want, atol=atol, rtol=rtol, equal_nan=True)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(
            f"{name} differs from the expected value at index {where}: "
            f"got {got[where]:.10g}, expected {want[where]:.10g} "
            f"({int(bad.sum())} of {bad.size} entries differ)"
        )


def as_profiles(value: Any, name: str = "answer") -> list[tuple[int, ...]]:
    """A collection of action profiles as a sorted list of int tuples (order-free compare)."""
    try:
        profiles = sorted(tuple(int(a) for a in profile) for profile in value)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(
            f"{name} should be a list of action tuples like [(0, 1), (1, 0)]; "
            f"got {type(value).__name__}: {exc}"
        ) from None
    return profiles


def assert_written_here(func: Callable, name: str) -> None:
    """The answer must be defined in the notebook, not imported from a library."""
    if not callable(func):
        raise AssertionError(f"`{name}` should be a function, got {type(func).__name__}")
    module = getattr(func, "__module__", None)
    if module != "__main__":
        raise AssertionError(
            f"`{name}` must be written in this notebook; it comes from module {module!r}"
        )
