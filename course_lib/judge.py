"""Hidden tests: how each TODO function is judged, on inputs drawn from a seed.

A case, registered with :func:`case` in ``course_lib/cases/<module>.py`` under the key
``"<module>.<function>"``, builds argument tuples from a seeded generator, says how one
call is observed and how close the answer must come to the course_lib reference, and
names the references an answer must not call. A hidden test cell reads

    judge.check("nb04.soft_update", soft_update)

Run by a student or a self-learner, :func:`check` compares the answer with the
reference right there and says what differs. Under ``course grade`` the hidden part
never reaches the student's kernel: the grader runs the same case itself (the
answer's outputs come from a judged call in the kernel, see
autograder/kernel_guard.py; the reference's outputs from the grader's own process),
so nothing the student's code does to this module, numpy or the references changes
a verdict.

    @case(reference=maddpg.soft_update, atol=1e-6)
    def soft_update(rng):           # key "nb04.soft_update"
        return [(..., ...), ...]    # argument tuples, built only from rng
"""
from __future__ import annotations

import importlib
import math
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any, Callable, Sequence

import numpy as np

MIME = "application/vnd.marl-course.judge+json"  # records of earlier kits; the grader drops them
CASES_PACKAGE = "course_lib.cases"
# Float answers are judged to the precision of float32 arithmetic unless a case says
# otherwise: a task that does not ask for float64 must accept float32 answers.
ATOL, RTOL = 1e-6, 1e-5


def _blocked(*args, **kwargs):
    # Swapped into a reference's __code__ while an answer is judged, so every name that
    # refers to the reference (an alias bound earlier included) fails. No globals but
    # builtins: it runs with the reference module's globals.
    __import__("sys").audit("course.reference_called")
    raise AssertionError("this answer calls the course_lib reference instead of implementing it")


BLOCKED_CODE = _blocked.__code__


@dataclass(frozen=True)
class Case:
    """How one TODO function is judged."""

    key: str
    make_inputs: Callable[[np.random.Generator], list]
    reference: Callable
    observe: Callable[[Callable, tuple], Any] | None
    atol: float
    rtol: float
    forbid: tuple = ()  # (module or class, names) pairs an answer must not call: the references
    describe: Callable[[tuple], str] | None = None  # one input in words

    @property
    def name(self) -> str:
        return self.key.partition(".")[2]

    def inputs(self, seed: int) -> list:
        """Freshly built argument tuples for a student's seed (an answer that edits them in
        place harms no one)."""
        return self.draw(case_seed(self.key, seed))

    def draw(self, seed: int) -> list:
        """The argument tuples drawn from this case's own seed (see :func:`case_seed`)."""
        inputs = list(self.make_inputs(np.random.default_rng(seed)))
        if not inputs:
            raise ValueError(f"case {self.key!r} built no inputs")
        return [tuple(args) for args in inputs]

    def observed(self, func: Callable, args: tuple) -> Any:
        """``func`` on one argument tuple, as plain numbers."""
        return plain(self.observe(func, args) if self.observe else func(*args))

    def outputs(self, func: Callable, seed: int) -> list:
        return [self.observed(func, args) for args in self.inputs(seed)]

    def forbidden(self) -> tuple[FunctionType, ...]:
        """The reference functions an answer must not call, as function objects."""
        return tuple(getattr(owner, name) for owner, names in self.forbid for name in names)

    def words(self, args: tuple) -> str:
        """One input in words, for a message a student can act on."""
        return self.describe(args) if self.describe else ", ".join(summary(a) for a in args)


_REGISTRY: dict[str, Case] = {}


def case(reference: Callable, *, atol: float = ATOL, rtol: float = RTOL,
         observe: Callable[[Callable, tuple], Any] | None = None,
         forbid: Sequence[tuple[ModuleType | type, Sequence[str]]] = (),
         describe: Callable[[tuple], str] | None = None) -> Callable:
    """Register the decorated input builder as the case ``<module>.<function name>``.

    ``reference`` computes the expected outputs; ``observe(fn, args)`` turns one call
    into the value compared (default ``fn(*args)``); ``describe(args)`` says what an
    input is, in words (default: a summary of the arguments). While the answer runs,
    the functions named in ``forbid`` (module or class, names) raise, so an answer that
    calls the reference instead of implementing it fails.
    """

    def register(make_inputs: Callable) -> Callable:
        key = f"{make_inputs.__module__.rsplit('.', 1)[-1]}.{make_inputs.__name__}"
        blocked = tuple((owner, tuple(names)) for owner, names in forbid)
        _REGISTRY[key] = Case(key, make_inputs, reference, observe, atol, rtol, blocked, describe)
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


def registered() -> dict[str, Case]:
    """Every case of the case modules imported so far, by key."""
    return dict(_REGISTRY)


def case_seed(key: str, seed: int) -> int:
    """Each case gets its own inputs, and each student its own draw."""
    return zlib.crc32(f"{seed}:{key}".encode())


def summary(value: Any) -> str:
    """A short description of one argument: shapes for arrays, values for small things."""
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float)):
        kind = "tensor" if hasattr(value, "detach") else "array"
        return f"{kind} of shape {tuple(int(s) for s in shape)}" if len(shape) else f"{float(value):.6g}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (int, str, bool)) or value is None:
        return repr(value)
    if isinstance(value, (tuple, list)) and len(value) <= 6 and all(isinstance(v, (int, float)) for v in value):
        return repr(tuple(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {summary(v)}" for k, v in value.items()) + "}"
    name = getattr(value, "__name__", None)
    return name if isinstance(name, str) else f"a {type(value).__name__}"


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
                return f"{where}{list(index) if index else ''} is {_values(g, w, atol, rtol)}"
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


def _values(got: Any, want: Any, atol: float, rtol: float) -> str:
    """'<got>, expected <want>', with as many digits as it takes to see them differ."""
    if not (isinstance(got, float) and isinstance(want, float)):
        return f"{got!r}, expected {want!r}"
    digits = next((d for d in range(6, 18) if f"{got:.{d}g}" != f"{want:.{d}g}"), 17)
    allowed = atol + rtol * abs(want)
    return f"{got:.{digits}g}, expected {want:.{digits}g} (off by {abs(got - want):.2g}; allowed {allowed:.2g})"


def _close(got: Any, want: Any, atol: float, rtol: float) -> bool:
    if isinstance(want, str) or isinstance(got, str):  # non-finite values must match exactly
        return got == want
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return False
    return abs(got - want) <= atol + rtol * abs(want)


def first_difference(current: Case, seed: int, outputs: Any) -> tuple[int, str] | None:
    """(input number, what differs) for the first recorded output that is wrong; None if all match."""
    want = current.outputs(current.reference, seed)
    if not isinstance(outputs, list) or len(outputs) != len(want):
        return 0, f"expected {len(want)} recorded outputs"
    for i, (got, expected) in enumerate(zip(outputs, want)):
        problem = difference(got, expected, current.atol, current.rtol, "the output")
        if problem:
            return i, problem
    return None


def verdict(key: str, seed: int, outputs: Any) -> str | None:
    """Compare recorded ``outputs`` with the reference on the same inputs; None if right."""
    current = lookup(key)
    wrong = first_difference(current, seed, outputs)
    if wrong is None:
        return None
    i, problem = wrong
    return f"gives a wrong answer for {current.words(current.inputs(seed)[i])}: {problem}"


def raised(name: str, words: str, exc_name: str, message: str) -> str:
    """What a student reads when their function raised on a judged input."""
    if exc_name == "NotImplementedError":
        return f"`{name}` is still the stub: replace the stub with your answer"
    return f"`{name}` raised {exc_name}" + (f": {message}" if message else "") + f" for {words}"


@contextmanager
def references_blocked(functions: Sequence[FunctionType]):
    """While inside, calling any of ``functions`` (under any name) raises an AssertionError."""
    saved = [(f, f.__code__) for f in functions]
    try:
        for f, _ in saved:
            f.__code__ = BLOCKED_CODE
        yield
    finally:
        for f, code in saved:
            f.__code__ = code


def check(key: str, answer: Callable, name: str | None = None) -> None:
    """Judge ``answer`` on case ``key`` with the reference at hand; fail with a message if wrong.

    This is the self-check students and self-learners run (with fixed inputs); under
    ``course grade`` the grader judges the answer itself and this function is not called.
    """
    name = name or getattr(answer, "__name__", "the answer")
    current = lookup(key)
    want = current.outputs(current.reference, 0)
    with references_blocked(current.forbidden()):
        got = []
        for i, args in enumerate(current.inputs(0)):
            try:
                got.append(current.observed(answer, args))
            except Exception as exc:
                raise AssertionError(raised(name, current.words(args), exc.__class__.__name__, str(exc))) from exc
    for i, (g, w) in enumerate(zip(got, want)):
        problem = difference(g, w, current.atol, current.rtol, "the output")
        if problem:
            raise AssertionError(f"`{name}` gives a wrong answer for {current.words(current.inputs(0)[i])}: "
                                 f"{problem}")
