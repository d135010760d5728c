"""Hidden tests whose verdict is decided where the student's code has not run.

A test cell calls ``judge.check(key, answer)``. The case ``key`` (registered with
:func:`case` in ``course_lib/cases/<module>.py``) builds argument tuples from a seed;
the answer is called on them, its outputs are converted to plain numbers, shown as a
record with the MIME type :data:`MIME`, and compared with the reference so the student
gets a helpful message. The grader then compares each record again in its own process
(autograder/judging.py), with a reference the student's code never touched, and fails
the cell when a record is wrong or missing. Patching numpy, the assert helpers, this
module or the course_lib reference inside the kernel therefore changes messages, not
verdicts.

    @case(reference=maddpg.soft_update, atol=1e-6)
    def soft_update(rng):           # key "nb04.soft_update"
        return [(..., ...), ...]    # argument tuples, built only from rng
"""
from __future__ import annotations

import importlib
import math
import os
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np

from course_lib.checks import reference_disabled

MIME = "application/vnd.marl-course.judge+json"
SEED_ENV = "COURSE_JUDGE_SEED"  # set by the grader, per student; absent when students run tests
CASES_PACKAGE = "course_lib.cases"


@dataclass(frozen=True)
class Case:
    """How one TODO function is judged."""

    key: str
    make_inputs: Callable[[np.random.Generator], list]
    reference: Callable
    observe: Callable[[Callable, tuple], Any] | None
    atol: float
    rtol: float
    forbid: tuple = ()  # (module, names) pairs an answer must not call: the references

    def outputs(self, func: Callable, seed: int) -> list:
        """``func`` on freshly built inputs (so an answer that edits them in place harms no one)."""
        rng = np.random.default_rng(case_seed(self.key, seed))
        inputs = list(self.make_inputs(rng))
        if not inputs:
            raise ValueError(f"case {self.key!r} built no inputs")
        observe = self.observe or (lambda f, args: f(*args))
        return [plain(observe(func, tuple(args))) for args in inputs]


_REGISTRY: dict[str, Case] = {}


def case(reference: Callable, *, atol: float = 1e-6, rtol: float = 1e-5,
         observe: Callable[[Callable, tuple], Any] | None = None,
         forbid: Sequence[tuple[ModuleType, Sequence[str]]] = ()) -> Callable:
    """Register the decorated input builder as the case ``<module>.<function name>``.

    ``reference`` computes the expected outputs; ``observe(fn, args)`` turns one call
    into the value compared (default ``fn(*args)``); while the answer runs, the
    functions named in ``forbid`` (module, names) raise, so an answer that calls the
    reference instead of implementing it fails.
    """

    def register(make_inputs: Callable) -> Callable:
        key = f"{make_inputs.__module__.rsplit('.', 1)[-1]}.{make_inputs.__name__}"
        blocked = tuple((module, tuple(names)) for module, names in forbid)
        _REGISTRY[key] = Case(key, make_inputs, reference, observe, atol, rtol, blocked)
        return make_inputs

    return register


def lookup(key: str) -> Case:
    """The case registered under ``key`` ("nb04.soft_update"), importing its module."""
    module, _, name = str(key).partition(".")
    if not module.isidentifier() or not name:
        raise KeyError(f"judge case keys look like 'nb04.soft_update'; got {key!r}")
    importlib.import_module(f"{CASES_PACKAGE}.{module}")
    if key not in _REGISTRY:
        raise KeyError(f"no judge case {key!r} in {CASES_PACKAGE}.{module}")
    return _REGISTRY[key]


def run_seed() -> int:
    """The grader's seed for this student (0 when students run the tests themselves)."""
    try:
        return int(os.environ.get(SEED_ENV, "0"))
    except ValueError:
        return 0


def case_seed(key: str, seed: int) -> int:
    """Each case gets its own inputs, and each student run its own draw."""
    return zlib.crc32(f"{seed}:{key}".encode())


def plain(value: Any) -> Any:
    """``value`` as JSON-safe plain numbers: nested lists of floats, dicts of them.

    Tensors, arrays, numbers and (nested) tuples, lists and dicts of them are accepted;
    whatever else an object claims about itself (``__eq__``, ``__float__`` tricks aside)
    ends up as floats the grader compares on its own. Non-finite values become strings.
    """
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if hasattr(value, "detach") and callable(value.detach):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)):
        try:
            array = np.array(value, dtype=float)
        except (TypeError, ValueError):  # ragged or mixed: keep the structure
            return [plain(v) for v in value]
        return _floats(array)
    try:
        array = np.array(value, dtype=float, copy=True)
    except Exception as exc:  # noqa: BLE001 - anything that is not numbers
        raise AssertionError(f"the answer should return numbers (arrays, tensors, floats); "
                             f"got {type(value).__name__}: {exc}") from None
    return _floats(array)


def _floats(array: np.ndarray) -> Any:
    def finite(x: float) -> float | str:
        return float(x) if math.isfinite(x) else repr(float(x))

    flat = [finite(x) for x in np.asarray(array, dtype=float).ravel().tolist()]
    return {"shape": list(array.shape), "values": flat}


def difference(got: Any, want: Any, atol: float, rtol: float, where: str = "output") -> str | None:
    """Where ``got`` differs from ``want`` (both from :func:`plain`), in words; None if it matches."""
    if isinstance(want, dict) and "shape" in want and "values" in want:
        if not (isinstance(got, dict) and got.get("shape") == want["shape"]
                and isinstance(got.get("values"), list) and len(got["values"]) == len(want["values"])):
            shape = got.get("shape") if isinstance(got, dict) else type(got).__name__
            return f"{where} has shape {shape}, expected {want['shape']}"
        for i, (g, w) in enumerate(zip(got["values"], want["values"])):
            if not _close(g, w, atol, rtol):
                index = tuple(int(j) for j in np.unravel_index(i, want["shape"])) if want["shape"] else ()
                return f"{where}{list(index) if index else ''} is {_show(g)}, expected {_show(w)}"
        return None
    if isinstance(want, dict):
        if not isinstance(got, dict) or sorted(got) != sorted(want):
            return f"{where} should have the keys {sorted(want)}"
        for k in want:
            problem = difference(got[k], want[k], atol, rtol, f"{where}[{k!r}]")
            if problem:
                return problem
        return None
    if not isinstance(got, list) or len(got) != len(want):
        return f"{where} should be a sequence of {len(want)} items"
    for i, (g, w) in enumerate(zip(got, want)):
        problem = difference(g, w, atol, rtol, f"{where}[{i}]")
        if problem:
            return problem
    return None


def _show(x: Any) -> str:
    return f"{x:.6g}" if isinstance(x, float) else repr(x)


def _close(got: Any, want: Any, atol: float, rtol: float) -> bool:
    if isinstance(want, str) or isinstance(got, str):  # non-finite values must match exactly
        return got == want
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False
    return abs(got - want) <= atol + rtol * abs(want)


def verdict(key: str, seed: int, outputs: Any) -> str | None:
    """Compare recorded ``outputs`` with the reference on the same inputs; None if right."""
    current = lookup(key)
    want = current.outputs(current.reference, seed)
    if not isinstance(outputs, list) or len(outputs) != len(want):
        return f"expected {len(want)} recorded outputs"
    for i, (got, expected) in enumerate(zip(outputs, want)):
        problem = difference(got, expected, current.atol, current.rtol, f"output {i + 1}")
        if problem:
            return problem
    return None


def check(key: str, answer: Callable, name: str | None = None) -> None:
    """Judge ``answer`` on case ``key``: record its outputs, and fail with a message if wrong."""
    from IPython.display import display

    name = name or getattr(answer, "__name__", "the answer")
    current = lookup(key)
    seed = run_seed()
    want = current.outputs(current.reference, seed)
    with ExitStack() as stack:
        for module, names in current.forbid:
            stack.enter_context(reference_disabled(module, *names))
        got = current.outputs(answer, seed)
    display({MIME: {"key": key, "seed": seed, "outputs": got},
             "text/plain": f"[judged {key}]"}, raw=True)
    for i, (g, w) in enumerate(zip(got, want)):
        problem = difference(g, w, current.atol, current.rtol, f"output {i + 1}")
        if problem:
            raise AssertionError(f"`{name}` on test input {i + 1}: {problem}")
