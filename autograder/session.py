"""A grading thread's fork server (autograder/forkserver.py), running in its own sandbox.

Each grading thread keeps one session: a sandbox whose only writable folder is the
thread's scratch folder, with a fork server inside that has imported the notebook's
libraries once. A submission is a request; its cells come back as JSON lines, then
a ``finished`` line. A session that dies, hangs past a notebook's time limit or
floods its output is killed, and the next submission gets a fresh one.
"""
from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import json
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder import sandbox
from autograder.cells import parse_python

FORKSERVER = Path(__file__).with_name("forkserver.py")
START_TIMEOUT_S = 120
TIMED_OUT = object()
SESSION_HOURS = 24


@dataclass
class Outcome:
    """What came back for one submission."""

    stdout: str  # the worker's JSON lines
    finished: dict | None  # the server's closing line; None when the session broke
    problem: str | None  # why the session broke, in words
    output_truncated: bool = False


def preload_modules(notebooks: list[Path]) -> list[str]:
    """The modules the notebooks import at top level (imported once by the server)."""
    names: dict[str, None] = {}
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            try:
                tree = parse_python(cell.source)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.Import):
                    names.update((alias.name, None) for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names[node.module] = None
    return list(names)


class Session:
    """One fork server in one sandbox; not thread-safe (one grading thread uses it)."""

    def __init__(self, scratch: Path, hide: list[Path], limits: sandbox.Limits, env: dict,
                 preload: list[str], sandboxed: bool = True):
        self.scratch, self.hide, self.limits = scratch, hide, limits
        self.env, self.preload, self.sandboxed = env, preload, sandboxed
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.abort = threading.Event()
        self.result: sandbox.SandboxResult | None = None
        self.alive = False
        self._partial = b""
        self._next_id = 0

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._read, self._write = os.pipe()
        argv = [sys.executable, "-P", str(FORKSERVER), str(self.scratch), "--preload", ",".join(self.preload)]
        if not self.sandboxed:
            argv.append("--unsandboxed")
        limits = dataclasses.replace(self.limits, wall_seconds=SESSION_HOURS * 3600)
        self._thread = threading.Thread(target=self._serve, args=(argv, limits), daemon=True)
        self._thread.start()
        self.alive = True
        line = self._next_line(START_TIMEOUT_S)
        if not isinstance(line, str) or '"ready"' not in line:
            why = self.result.killed_reason if self.result else "no answer"
            self.close()
            raise RuntimeError(f"the grading sandbox did not start ({why})")

    def _serve(self, argv: list[str], limits: sandbox.Limits) -> None:
        try:
            self.result = sandbox.run_sandboxed(
                argv, scratch=self.scratch, hide=self.hide, limits=limits, env=self.env,
                unsandboxed=not self.sandboxed, stdin_fd=self._read, on_stdout=self._feed, abort=self.abort)
        finally:
            self.lines.put(None)  # end of the session

    def _feed(self, chunk: bytes) -> None:
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        for line in complete:
            self.lines.put(line.decode(errors="replace"))

    def _next_line(self, timeout: float) -> str | None | object:
        """The next line; None when the session ended; TIMED_OUT when none came in time."""
        try:
            return self.lines.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return TIMED_OUT

    def close(self) -> None:
        """End the session (the server exits when its stdin closes) and everything in it."""
        if not self.alive:
            return
        self.alive = False
        os.close(self._write)
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            self.abort.set()
            self._thread.join()
        os.close(self._read)

    def _kill(self) -> None:
        self.abort.set()
        self.close()

    # ------------------------------------------------------------------ one submission
    def execute(self, notebook: str, *, cell_timeout: int, skip_tag: str, wall_seconds: float,
                env: dict, judged: dict[int, list[tuple[str, str]]], seed: int, cap_kb: int = 1024) -> Outcome:
        """Run ``notebook`` (a file in the scratch folder) and collect what it reported.

        ``judged``: the judged calls of each test cell; ``seed``: the student's judging
        seed, on a line of its own that only the forked worker reads."""
        self._next_id += 1
        request = {"id": self._next_id, "notebook": notebook, "cell_timeout": cell_timeout,
                   "skip_tag": skip_tag, "cap_kb": cap_kb, "wall_seconds": wall_seconds, "env": env,
                   "judged": {str(i): pairs for i, pairs in judged.items()}}
        os.write(self._write, (json.dumps(request) + "\n" + json.dumps({"seed": int(seed)}) + "\n").encode())
        collected: list[str] = []
        size, cap = 0, int(self.limits.output_mb * (1 << 20))
        deadline = time.monotonic() + wall_seconds + 15  # the server enforces the limit; this is our backstop
        while True:
            line = self._next_line(deadline - time.monotonic())
            if line is TIMED_OUT:
                self._kill()
                return Outcome("\n".join(collected), None, f"no answer within the {wall_seconds:g} s notebook limit")
            if line is None:
                self._kill()
                why = self.result.killed_reason if self.result and self.result.killed_reason else None
                return Outcome("\n".join(collected), None, why or "the grading sandbox ended")
            if line.startswith('{"finished"'):
                finished = json.loads(line)
                if finished.get("finished") == self._next_id:
                    return Outcome("\n".join(collected), finished, None)
            collected.append(line)
            size += len(line)
            if size > cap:
                self._kill()
                return Outcome("\n".join(collected), None, "output over the limit was dropped", True)


class SessionPool:
    """One live session per grading thread, started on first use and after a breakage.

    ``prestart(n)`` starts the first n sessions at once in the background, so their
    imports overlap each other and the rest of the run's start-up.
    """

    def __init__(self, workspace: Path, hide: list[Path], limits: sandbox.Limits, env: dict,
                 preload: list[str], sandboxed: bool = True):
        self.workspace, self.hide, self.limits = workspace, hide, limits
        self.env, self.preload, self.sandboxed = env, preload, sandboxed
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[Session] = []
        self._starting: list[concurrent.futures.Future] = []

    def _new(self) -> Session:
        with self._lock:
            slot = len(self._sessions)
            current = Session(self.workspace / "scratch" / f"slot-{slot}", self.hide, self.limits, self.env,
                              self.preload, self.sandboxed)
            self._sessions.append(current)
        current.start()
        return current

    def prestart(self, n: int) -> None:
        starter = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, n), thread_name_prefix="sandbox-start")
        self._starting = [starter.submit(self._new) for _ in range(n)]
        starter.shutdown(wait=False)  # the threads end once their session has started

    def get(self) -> Session:
        current = getattr(self._local, "session", None)
        if current is not None and current.alive:
            return current
        with self._lock:
            starting = self._starting.pop() if self._starting else None
        try:
            current = starting.result() if starting is not None else self._new()
        except RuntimeError:
            if starting is None:
                raise
            current = self._new()  # the prestarted one failed: one more try, as on first use
        self._local.session = current
        return current

    def close(self) -> None:
        for future in self._starting:  # prestarted and never taken: let them finish starting, then close
            future.exception()
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for current in sessions:
            current.close()
