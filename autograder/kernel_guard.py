"""The judge's side inside the student's kernel: judged calls the notebook cannot fake.

Under ``course grade`` no hidden test runs in the student's kernel. After a test cell
has run, the worker (autograder/worker.py) asks the kernel to judge the answer: it
sends a token naming the case and the answer, with the case's seed encrypted under a
key that only the worker and this module hold. :func:`install` puts an audit hook
(PEP 578; Python code cannot remove one) into the kernel before any student code runs.
On the token's event the hook

1. arms: the case's references get a ``__code__`` that raises, so every name bound to
   them (an alias from an earlier cell included) fails;
2. has the seed decrypted, builds the inputs, calls the answer (looked up in the
   notebook's namespace, and required to be a function written in a notebook cell)
   through the case's observer and converts each output to plain numbers;
3. has the record signed, disarms, and displays the record for the worker.

The key lives in a thread of its own that never runs student code; it decrypts and
signs only while armed. So the seed exists in the kernel only while the references are
blocked, the expected values never do (the grader computes them in its own process),
and a record the worker accepts was made by this hook, armed, from the answer's own
outputs. The hook also refuses, always: copies of a reference's code (a new function or
code object from it, its module loaded a second time, its source text compiled
elsewhere), the interpreter's views that reach the key thread (gc's object lists, other
threads' frames, more audit hooks), and reading a process's memory through /proc; and,
while armed: starting processes, ctypes, and changing any function's code. Each refusal
is logged and reported with the next record; the grader makes it a note.

What it cannot do: the answer runs in the student's own process. A program written to
attack this module from inside it (reading the key out of memory with ctypes before a
judged call, say) is beyond any check that runs there; such code is plain to see in the
notebook.
"""
from __future__ import annotations

import _thread
import functools
import inspect
import json
import os
import types
from dataclasses import dataclass
from types import MappingProxyType

from course_lib import judge

EVENT = "course.judge"
MIME = "application/vnd.marl-course.judged+json"
KEY_BYTES = 32
KEY_THREAD_TIMEOUT_S = 30.0
MAX_LOG = 20

ALWAYS_REFUSED = {
    "gc.get_objects": "listing the interpreter's objects (gc.get_objects)",
    "gc.get_referrers": "listing the interpreter's objects (gc.get_referrers)",
    "gc.get_referents": "listing the interpreter's objects (gc.get_referents)",
    "sys._current_frames": "reading other threads' frames (sys._current_frames)",
    "sys.addaudithook": "adding an audit hook",
}
STARTS_PROCESS = ("os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen",
                  "pty.spawn")
CTYPES = ("ctypes.addressof", "ctypes.call_function", "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.create_string_buffer",
          "ctypes.create_unicode_buffer", "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.get_errno",
          "ctypes.set_errno", "ctypes.PyObj_FromPtr", "ctypes.string_at", "ctypes.wstring_at")
CODE_ATTRIBUTES = ("__code__", "__defaults__", "__kwdefaults__")
FRAME_EVENTS = ("sys._getframe", "object.__getattr__")  # the latter: also tb_frame, gi_frame...
FRAME_ATTRIBUTES = ("tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back")


# ----------------------------------------------------------------------------- both sides
def _pad(secret: bytes, nonce: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(secret + b"seed" + nonce).digest()[:8]


def _mac(secret: bytes, label: bytes, data: bytes) -> bytes:
    import hmac

    return hmac.digest(secret, label + data, "sha256")


def make_token(secret: bytes, key: str, name: str, seed: int, nonce: bytes) -> str:
    """The worker's request: the case and the answer's name in clear, the seed encrypted."""
    cipher = bytes(a ^ b for a, b in zip(seed.to_bytes(8, "big"), _pad(secret, nonce)))
    head = f"{key}|{name}|{nonce.hex()}|{cipher.hex()}"
    return f"{head}|{_mac(secret, b'token|', head.encode()).hex()}"


def read_record(secret: bytes, nonce: bytes, data: object) -> dict | None:
    """The record in a displayed ``data`` if its signature is good for ``nonce``, else None."""
    import hmac

    if not isinstance(data, dict) or not isinstance(data.get("payload"), str) or not isinstance(data.get("mac"), str):
        return None
    good = _mac(secret, b"record|" + nonce, data["payload"].encode())
    if not hmac.compare_digest(good.hex(), data["mac"]):
        return None
    try:
        record = json.loads(data["payload"])
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("nonce") == nonce.hex() else None


# ----------------------------------------------------------------------------- prepared outside the kernel
@dataclass(frozen=True)
class Guarded:
    """Everything the hook needs about the references of a notebook's cases."""

    cases: dict  # key -> (Case, forbidden functions)
    functions: frozenset  # every reference an answer must not call
    codes: frozenset  # their code objects, nested ones included
    names: frozenset  # (file name, qualified name) of each such code object
    files: frozenset  # the files of the modules that hold them
    bytecodes: frozenset  # their bytecode
    sources: tuple  # their source text
    watched: tuple  # (owner, attribute, original): helpers a notebook could replace to fool its own checks


def _nested(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested(const)


@functools.lru_cache(maxsize=1)
def guarded() -> Guarded:
    """The references of every judge case loaded (cached: the fork server prepares them
    once, after importing the case modules of the notebooks it grades)."""
    import numpy
    from course_lib import checks

    cases = {key: (case, case.forbidden()) for key, case in judge.registered().items()}
    functions = frozenset(f for _, forbidden in cases.values() for f in forbidden)
    codes = frozenset(c for f in functions for c in _nested(f.__code__))
    sources = []
    for f in functions:
        try:
            sources.append(inspect.getsource(f))
        except (OSError, TypeError):
            pass
    watched = [(numpy, name, getattr(numpy, name)) for name in ("allclose", "array_equal", "isclose")]
    watched += [(numpy.testing, "assert_allclose", numpy.testing.assert_allclose)]
    watched += [(checks, name, getattr(checks, name)) for name in ("assert_close", "as_numbers", "as_profiles",
                                                                     "assert_written_here")]
    watched += [(judge, name, getattr(judge, name)) for name in ("check", "verdict", "difference", "plain", "lookup")]
    for case, _ in cases.values():
        watched += [(owner, name, getattr(owner, name)) for owner, names in case.forbid for name in names]
    return Guarded(cases, functions, codes, frozenset((c.co_filename, c.co_qualname) for c in codes),
                   frozenset(f.__code__.co_filename for f in functions), frozenset(c.co_code for c in codes),
                   tuple(sources), tuple(watched))


def _owner_name(owner: object) -> str:
    return getattr(owner, "__name__", type(owner).__name__)


# ----------------------------------------------------------------------------- in the kernel
def install(shell, secret_fd: int, cell_prefix: str) -> None:
    """Guard the kernel (before any student code): start the key thread, add the audit hook.

    The key thread writes its freshly drawn key to ``secret_fd`` for the worker and
    closes it. ``cell_prefix`` starts the file name of every code object compiled from
    a notebook cell.
    """
    info = guarded()
    # Read-only copies of everything the hook uses, bound here: a notebook can reach this
    # module's globals, ``guarded()`` and, through frames, the hook's own variables, but
    # can change none of these.
    cases, functions, codes, names = MappingProxyType(dict(info.cases)), info.functions, info.codes, info.names
    files, bytecodes, sources, watched = info.files, info.bytecodes, info.sources, info.watched
    blocked, function_type, code_type, any_of = judge.BLOCKED_CODE, types.FunctionType, types.CodeType, any
    refused_always, starts_process, code_attributes = MappingProxyType(dict(ALWAYS_REFUSED)), STARTS_PROCESS, CODE_ATTRIBUTES
    frame_events, frame_attributes, event_name, mime = FRAME_EVENTS, FRAME_ATTRIBUTES, EVENT, MIME
    user_ns = shell.user_ns
    student_code = (cell_prefix, os.path.join(os.getcwd(), ""))
    import sys
    import traceback

    get_frame, frame_helpers = sys._getframe, frozenset({inspect.__file__, traceback.__file__})
    from IPython.display import display

    # Only C functions and values captured here are used by the key thread, so nothing a
    # notebook patches later (builtins included) ever runs there.
    import _hashlib
    from _operator import _compare_digest

    sha256, hmac_digest, urandom, write, close = _hashlib.openssl_sha256, _hashlib.hmac_digest, os.urandom, os.write, os.close
    from_bytes, str_type, bytes_type, tuple_type, int_type = int.from_bytes, str, bytes, tuple, type(0)
    fromhex, type_of, length, base_exception, pairwise = bytes.fromhex, type, len, BaseException, zip
    requests, replies = [None], [None]
    asked, answered, one_at_a_time = _thread.allocate_lock(), _thread.allocate_lock(), _thread.allocate_lock()
    asked.acquire()
    answered.acquire()
    armed = False
    answering = False  # the answer itself runs (not the case's input builder)
    swapping = False
    looking = False

    def keeper() -> None:
        secret = urandom(KEY_BYTES)
        try:
            write(secret_fd, secret)
        finally:
            close(secret_fd)
        while True:
            asked.acquire()
            result = None
            try:
                request = requests[0]
                requests[0] = None
                if armed and type_of(request) is tuple_type and length(request) == 2:
                    op, arg = request[0], request[1]
                    if op == "open" and type_of(arg) is str_type:
                        result = _open(secret, arg)
                    elif op == "seal" and type_of(arg) is tuple_type and length(arg) == 2 \
                            and type_of(arg[0]) is bytes_type and type_of(arg[1]) is str_type:
                        result = hmac_digest(secret, b"record|" + arg[0] + arg[1].encode(), "sha256").hex()
            except base_exception:
                result = None
            replies[0] = result
            answered.release()

    def _open(secret: bytes, token: str):
        parts = token.split("|")
        if length(parts) != 5:
            return None
        head = "|".join(parts[:4])
        if not _compare_digest(hmac_digest(secret, b"token|" + head.encode(), "sha256").hex(), parts[4]):
            return None
        nonce, cipher = fromhex(parts[2]), fromhex(parts[3])
        pad = sha256(secret + b"seed" + nonce).digest()[:8]
        plain = bytes_type([a ^ b for a, b in pairwise(cipher, pad)])
        return from_bytes(plain, "big")

    def ask(op: str, arg):
        with one_at_a_time:
            requests[0] = (op, arg)
            replies[0] = None
            asked.release()
            if not answered.acquire(timeout=KEY_THREAD_TIMEOUT_S):
                return None
            return replies[0] if type_of(replies[0]) in (int_type, str_type) else None

    log: list[str] = []
    reported = 0

    def note(what: str) -> None:
        if length(log) < MAX_LOG and what not in log:
            log.append(what)

    class Refused(RuntimeError):
        """An operation the grader does not allow while it judges a notebook."""

    def refuse(what: str):
        note(f"tried {what} (refused)")
        raise Refused(f"not allowed while grading: {what}")

    def is_reference_code(code) -> bool:
        return code in codes or (code.co_filename, code.co_qualname) in names or code.co_code in bytecodes

    def swap(functions, to_blocked: bool) -> None:
        nonlocal swapping
        swapping = True
        try:
            for f, original in functions:
                f.__code__ = blocked if to_blocked else original
        finally:
            swapping = False

    originals = MappingProxyType({f: f.__code__ for f in functions})

    def written_here(fn) -> str | None:
        """None when ``fn`` (or what it wraps) is a function compiled from a notebook cell
        (or from a file the student handed in with it)."""
        seen = fn
        for _ in range(10):
            if type_of(seen) is function_type and seen.__code__.co_filename.startswith(student_code):
                return None
            seen = getattr(seen, "__wrapped__", None)
            if seen is None:
                break
        code = getattr(fn, "__code__", None)
        origin = getattr(code, "co_filename", None) or getattr(fn, "__module__", None) or type_of(fn).__name__
        return f"it comes from {origin}"

    def replaced() -> list[str]:
        found = [f"{_owner_name(owner)}.{name}" for owner, name, original in watched
                 if getattr(owner, name, None) is not original]
        found += [name for owner, name, original in watched
                  if owner.__name__ == "course_lib.checks" and name in user_ns and user_ns[name] is not original]
        return found

    def asked_by_the_notebook() -> bool:
        """Whether the code that asked for a frame (directly or through inspect or traceback)
        is the student's, not a library's (torch looks at its own stack, for one)."""
        nonlocal looking
        looking = True  # our own look at the stack raises the same events
        try:
            frame = get_frame(2)  # 0: this function, 1: the hook, 2: whoever raised the event
            while frame is not None and frame.f_code.co_filename in frame_helpers:
                frame = frame.f_back
            return frame is not None and frame.f_code.co_filename.startswith(student_code)
        finally:
            looking = False

    def judged(token) -> None:
        nonlocal armed, answering, reported
        if armed or type_of(token) is not str_type or token.count("|") != 4:
            return
        key, name, nonce_hex = token.split("|")[:3]
        if key not in cases:
            return
        case, forbidden = cases[key]
        record = {"key": key, "name": name, "nonce": nonce_hex}
        pairs = tuple((f, originals[f]) for f in forbidden)
        swap(pairs, True)
        armed = True
        payload = None
        try:
            seed = ask("open", token)
            fn = user_ns.get(name)
            if seed is None:
                record["problem"] = "the judge's request could not be read"
            elif fn is None:
                record["missing"] = True
            elif written_here(fn) is not None:
                record["not_written_here"] = written_here(fn)
            else:
                outputs = []
                for i, args in enumerate(case.draw(seed)):
                    answering = True
                    try:
                        outputs.append(case.observed(fn, args))
                    except base_exception as exc:
                        record["error"] = {"input": i, "message": f"{exc.__class__.__name__}: {exc}"[:500]}
                        break
                    finally:
                        answering = False
                record["outputs"] = outputs
            changed = replaced()
            if changed:
                note("replaced " + ", ".join(changed) + " (the grader judged without them)")
            record["log"] = log[reported:]
            reported = length(log)
            payload = json.dumps(record)
        except base_exception as exc:
            payload = json.dumps({**{k: record[k] for k in ("key", "name", "nonce")},
                                  "problem": f"the judged call failed: {exc.__class__.__name__}"})
        finally:
            mac = ask("seal", (fromhex(nonce_hex), payload)) if type_of(payload) is str_type else None
            armed = False
            swap(pairs, False)
        if mac is not None:
            display({mime: {"payload": payload, "mac": mac}}, raw=True)

    def hook(event: str, args: tuple) -> None:
        if event not in watched_events:
            return
        if event in refused_always:
            refuse(refused_always[event])
        elif event == event_name:
            judged(args[0] if args else None)
        elif event == "course.reference_called":
            if armed:
                note("called a course_lib reference while its answer was judged")
        elif event in frame_events:
            if answering and not looking and (event == "sys._getframe" or (
                    length(args) >= 2 and args[1] in frame_attributes)) and asked_by_the_notebook():
                note("inspected the interpreter's frames while its answer was judged")
        elif event == "function.__new__":
            if args and type_of(args[0]) is code_type and is_reference_code(args[0]):
                refuse("copying a course_lib reference's code")
        elif event == "exec":
            code = args[0] if args else None
            if type_of(code) is code_type and (code in codes or (code.co_name == "<module>"
                                                                 and code.co_filename in files)):
                refuse("loading a second copy of a course_lib reference")
        elif event == "code.__new__":
            if args and type_of(args[0]) is bytes_type and args[0] in bytecodes:
                refuse("copying a course_lib reference's code")
        elif event == "compile":
            source, filename = (args + (None, None))[:2]
            if type_of(filename) is str_type and (filename in files or filename.startswith(student_code)):
                return
            if type_of(source) is bytes_type:
                source = source.decode("utf-8", "replace")
            if type_of(source) is str_type and any_of(text in source for text in sources):
                refuse("compiling the source of a course_lib reference")
        elif event == "object.__setattr__":
            if length(args) >= 2 and args[1] in code_attributes and not swapping and (
                    armed or args[0] in functions):
                refuse("changing a function's code")
        elif event == "open":
            path = args[0] if args else None
            if type_of(path) is bytes_type:
                path = path.decode("utf-8", "replace")
            if type_of(path) is str_type and (path.endswith("/mem") or path == "mem"):
                refuse("reading a process's memory")
        elif armed:
            refuse("starting a process while the answer is judged" if event in starts_process
                   else "calling C code through ctypes while the answer is judged")

    watched_events = frozenset([*ALWAYS_REFUSED, EVENT, "course.reference_called", "function.__new__", "exec",
                                "code.__new__", "compile", "object.__setattr__", "open", *FRAME_EVENTS,
                                *STARTS_PROCESS, *CTYPES])
    _thread.start_new_thread(keeper, ())
    sys.addaudithook(hook)
