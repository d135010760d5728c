"""A fork server: import once, then run each submission in a fresh forked process.

Starting a worker, a Jupyter kernel and the notebook's imports costs about 2.5 s of
CPU per submission, more than running the cells. One fork server runs per grading
worker, inside its own sandbox (``python -P forkserver.py SCRATCH --preload ...``).
It imports nbclient, ipykernel and the course's libraries once; for each request
read from stdin, a JSON line ``{"id", "notebook", "cell_timeout", "skip_tag",
"cap_kb", "wall_seconds", "env", "judged"}``, it forks a worker, which forks the kernel
(with the judge's guard, autograder/kernel_guard.py, and test cells that run in a
scope of their own), and the worker reports cells on stdout exactly as
autograder/worker.py does. The line after a request, ``{"seed": N}``, is the student's
judging seed: only the worker reads it, after its kernel was forked, so the seed is
never in a kernel's memory (this process reads its stdin a byte at a time, never
ahead of a request). Then:

- everything the submission started is killed (in the sandbox's pid namespace,
  every process but this one and its ancestors), and its scratch folder, /tmp and
  /dev/shm are emptied, so nothing of one student reaches the next;
- this process writes ``{"finished": id, "status": ..., "timed_out": ...}``.

The server never reads a submission: the grader writes the files into the scratch
folder, and only the forked worker and kernel read them, so no student's notebook
sits in the memory the next student's kernel is forked from. The server is made
non-dumpable (as is everything forked from it), so a kernel cannot reach the results
pipe through /proc. The kernel gets /dev/null for its standard streams.
"""
from __future__ import annotations

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # run as a script: as autograder/__init__.py does, 2 s saved

import argparse  # noqa: E402
import ast  # noqa: E402
import functools  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from jupyter_client.asynchronous import AsyncKernelClient  # noqa: E402
from jupyter_client.connect import write_connection_file  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

from autograder import kernel_guard, worker  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36
# The kernel's own start-up imports its debugger (debugpy, pdb, psutil, sqlite3 for
# the history): 0.19 s of a 0.28 s kernel start when imported per submission.
ALWAYS_PRELOAD = ["ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger", "IPython", "pdb", "psutil",
                  "sqlite3", "tornado.queues", "nbclient", "nbformat", "jupyter_client", "numpy", "matplotlib",
                  "matplotlib.pyplot"]
# IPython formats a cell's traceback with stack_data and pygments, imported and
# compiled on the first error: 0.1 s of every submission with a failing cell.
TRACEBACK_PRELOAD = ["IPython.core.ultratb", "stack_data", "executing", "asttokens", "pure_eval",
                     "pygments.lexers.python", "pygments.formatters.terminal256"]
# Per-submission kernel settings: no input history database (IPython would create
# and write one in the emptied scratch folder for every submission; In/Out stay).
KERNEL_ARGS = ["--IPKernelApp.log_level=ERROR", "--HistoryManager.enabled=False"]


# --------------------------------------------------------------------------- the kernel
def fork_kernel(connection_file: str, test_cells: frozenset[str] = frozenset(), secret_fd: int | None = None) -> int:
    """Start an IPython kernel in a forked child; return its pid (the parent's side).

    ``test_cells`` are the sources of the test cells. With ``secret_fd`` the kernel gets
    the judge's guard, which writes its key there (the child keeps that fd open for it).
    """
    pid = os.fork()
    if pid:
        return pid
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # never the results pipe
            os.dup2(devnull, fd)
        keep = secret_fd if secret_fd is not None else 4096
        os.closerange(3, keep)
        os.closerange(keep + 1, 4096)
        sys.argv = ["ipykernel"]
        from ipykernel.compiler import get_tmp_directory
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(["-f", connection_file, *KERNEL_ARGS])
        _test_cells_for(app.shell, test_cells)
        if secret_fd is not None:
            kernel_guard.install(app.shell, secret_fd, os.path.join(get_tmp_directory(), ""))
        app.start()
    finally:
        os._exit(0)


TEST_SCOPE = "__course_test_cell__"


class PrivateScope(ast.NodeTransformer):
    """Runs a test cell's code inside a function, so the names it assigns stay its own
    and never replace the student's (a helper named like a test's variable keeps working).
    Line numbers are kept, so tracebacks point at the cell's own lines."""

    active = False

    def visit_Module(self, node: ast.Module) -> ast.Module:
        if not self.active or not node.body:
            return node
        last = node.body[-1].end_lineno or node.body[-1].lineno
        scope = ast.FunctionDef(name=TEST_SCOPE, args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                                                                    kw_defaults=[], defaults=[]),
                                body=node.body, decorator_list=[], returns=None)
        run = ast.Try(body=[ast.Expr(ast.Call(ast.Name(TEST_SCOPE, ast.Load()), [], []))], handlers=[], orelse=[],
                      finalbody=[ast.Delete([ast.Name(TEST_SCOPE, ast.Del())])])
        for new in (scope, run):
            ast.copy_location(new, node.body[0])
        for child in ast.walk(run):
            child.lineno, child.end_lineno, child.col_offset, child.end_col_offset = last, last, 0, 0
        scope.lineno, scope.end_lineno = node.body[0].lineno, last
        node.body = [scope, run]
        return ast.fix_missing_locations(node)


def _test_cells_for(shell, sources: frozenset[str]) -> None:
    """Test cells run in a scope of their own and get IPython's plain tracebacks: the
    grader cuts a test's traceback to one line anyway, and the default, with source
    context, costs 25 ms per failing test."""
    default = shell.InteractiveTB.mode
    scope = PrivateScope()

    def before(info) -> None:
        scope.active = info.raw_cell in sources
        shell.InteractiveTB.set_mode("Plain" if scope.active else default)

    shell.events.register("pre_run_cell", before)
    shell.ast_transformers.append(scope)


class ReadyClient(AsyncKernelClient):
    """A kernel client that is ready once the kernel has answered on both channels.

    jupyter_client's own wait ends by draining IOPub until it has been quiet for
    0.2 s: a fixed 0.2 s of idle time per submission. nbclient reads only the
    messages whose parent is the cell it runs, so a stale status message is harmless.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except queue.Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply":
                try:  # IOPub connected? The kernel's status message says so
                    await self.iopub_channel.get_msg(timeout=0.2)
                    self._handle_kernel_info_reply(reply)
                    return
                except queue.Empty:
                    pass
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} s")


class ForkedKernelManager(AsyncKernelManager):
    """nbclient's view of a kernel this process forked (pid and connection file)."""

    def __init__(self, pid: int, connection_file: str, **kwargs):
        super().__init__(client_factory=ReadyClient, **kwargs)
        self.forked_pid = pid
        self.connection_file = connection_file
        self.load_connection_file(connection_file)
        self._exited = False

    @property
    def has_kernel(self) -> bool:
        return True

    async def _async_is_alive(self) -> bool:
        if not self._exited:
            try:
                self._exited = os.waitpid(self.forked_pid, os.WNOHANG)[0] != 0
            except ChildProcessError:
                self._exited = True
        return not self._exited

    is_alive = _async_is_alive

    async def interrupt_kernel(self) -> None:
        _signal(self.forked_pid, signal.SIGINT)

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        _signal(self.forked_pid, signal.SIGKILL)

    async def cleanup_resources(self, restart: bool = False) -> None:
        self.cleanup_connection_file()


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def warm_tracebacks() -> None:
    """Format one traceback as IPython does, so the lexer's rules are compiled before any fork."""
    from IPython.core import ultratb

    def fail():
        raise ValueError("warm-up")

    try:
        fail()
    except ValueError:
        ultratb.VerboseTB().text(*sys.exc_info())


# --------------------------------------------------------------------------- one submission
def run_submission(request: dict, scratch: Path, out, sandboxed: bool) -> int:
    """The forked worker: its own kernel, then the notebook, reported on ``out``."""
    os.setpgid(0, 0)  # one process group: the unsandboxed clean-up reaches it
    os.chdir(scratch)
    os.environ.update({str(k): str(v) for k, v in request.get("env", {}).items()})
    connection_file = f"/tmp/kernel-{os.getpid()}.json"
    write_connection_file(connection_file, ip="127.0.0.1")
    calls = {int(i): [(str(k), str(n)) for k, n in pairs] for i, pairs in request.get("judged", {}).items()}
    secret_r, secret_w = os.pipe()
    kernel = fork_kernel(connection_file, frozenset(worker.sources_of_test_cells(request["notebook"])), secret_w)
    os.close(secret_w)
    secret = _read_exactly(secret_r, kernel_guard.KEY_BYTES, START_TIMEOUT_S)
    os.close(secret_r)
    seed = json.loads(read_line(0) or "{}").get("seed")  # after the fork: never in the kernel's memory
    if len(secret) != kernel_guard.KEY_BYTES or not isinstance(seed, int):
        raise RuntimeError("the judge could not be set up in the kernel")
    keep = _ancestors() | {kernel}
    judge = worker.Judge(secret, seed, calls, functools.partial(kill_others, keep) if sandboxed else None)
    km = ForkedKernelManager(kernel, connection_file, kernel_name="python3")
    return worker.run_notebook(request["notebook"], int(request["cell_timeout"]), request["skip_tag"],
                               int(request["cap_kb"]), out, km=km, judge=judge)


START_TIMEOUT_S = 60


def _read_exactly(fd: int, n: int, timeout: float) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while len(data) < n and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_line(fd: int) -> str:
    """One line from ``fd``, read a byte at a time so nothing after it is consumed."""
    data = bytearray()
    while not data.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    return data.decode(errors="replace")


# --------------------------------------------------------------------------- clean-up
def _ancestors() -> set[int]:
    keep, pid = set(), os.getpid()
    while pid > 1:
        keep.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return keep | {1}


def _is_zombie(pid: int) -> bool:
    """Dead and waiting for its parent (which may be the kernel, not us) to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True  # gone already


def _reap() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def kill_leftovers(child: int, whole_namespace: bool) -> None:
    """Kill what the submission started: in the sandbox, every process but our own line."""
    _signal(-child, signal.SIGKILL)
    if not whole_namespace:  # unsandboxed: /proc shows the whole machine, so only the group
        _reap()
        return
    kill_others(_ancestors())


def kill_others(keep: set[int]) -> int:
    """Kill every process of the sandbox's pid namespace not in ``keep``; return how many there were."""
    _reap()
    killed: set[int] = set()
    for _ in range(100):  # a fork loop may add processes while we kill: repeat until none
        others = [pid for pid in (int(p) for p in os.listdir("/proc") if p.isdigit())
                  if pid not in keep and not _is_zombie(pid)]
        if not others:
            break
        for pid in others:
            _signal(pid, signal.SIGKILL)
        killed.update(others)
        time.sleep(0.002)  # killed processes turn into zombies we can reap, not at once
        _reap()
    _reap()
    return len(killed)


def _empty(folder: Path) -> None:
    """Remove everything in ``folder`` (not the folder: it may be a mount point)."""
    def writable(func, path, _exc):
        try:
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            os.chmod(path, stat.S_IRWXU)
            func(path)
        except OSError:
            pass

    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, onerror=writable)
            else:
                entry.unlink()
        except OSError:
            pass


# --------------------------------------------------------------------------- the server
class ExitWatch:
    """Wait for a child's exit without polling: its pidfd turns readable when it ends.

    (A 20 ms polling sleep left every submission waiting 10 ms on average after
    its worker had finished.) Without pidfds (before Linux 5.3) it sleeps 20 ms.
    """

    def __init__(self, pid: int):
        self.pid, self.fd = pid, None

    def __enter__(self) -> "ExitWatch":
        try:
            self.fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self.fd = None
        return self

    def wait(self, timeout: float) -> None:
        if self.fd is None:
            time.sleep(0.02)
        else:
            select.select([self.fd], [], [], max(0.0, timeout))

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)


def serve_one(request: dict, scratch: Path, out, sandboxed: bool) -> dict:
    started = time.monotonic()
    child = os.fork()
    if child == 0:
        code = 1
        try:
            code = run_submission(request, scratch, out, sandboxed)
        except BaseException as exc:  # noqa: BLE001 - report, never fall back into the server loop
            out.write(json.dumps({"fatal": f"{exc.__class__.__name__}: {str(exc)[:300]}"}) + "\n")
            out.flush()
        finally:
            os._exit(code)
    deadline = started + float(request.get("wall_seconds", 600))
    status, timed_out = None, False
    with ExitWatch(child) as exited:
        while status is None:
            pid, raw = os.waitpid(child, os.WNOHANG)
            if pid:
                status = f"signal {os.WTERMSIG(raw)}" if os.WIFSIGNALED(raw) else f"exit {os.WEXITSTATUS(raw)}"
            elif time.monotonic() > deadline:
                timed_out = True
                _signal(child, signal.SIGKILL)
                exited.wait(1.0)  # until it has died, not in a busy loop
            else:
                exited.wait(deadline - time.monotonic())
    kill_leftovers(child, whole_namespace=sandboxed)
    for folder in [scratch] + ([Path("/tmp"), Path("/dev/shm")] if sandboxed else []):
        _empty(folder)
    return {"finished": request.get("id"), "status": status, "timed_out": timed_out,
            "seconds": round(time.monotonic() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scratch")
    parser.add_argument("--preload", default="", help="comma-separated modules to import once")
    parser.add_argument("--unsandboxed", action="store_true", help="no pid namespace: clean up by group only")
    args = parser.parse_args(argv)
    worker.make_non_dumpable()
    try:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans come back to us
    except (OSError, AttributeError):
        pass
    out = sys.stdout
    sys.stdout = sys.stderr
    for name in ALWAYS_PRELOAD + TRACEBACK_PRELOAD + [m for m in args.preload.split(",") if m]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module is imported by the notebook, or fails there
            pass
    try:
        warm_tracebacks()
    except Exception:  # noqa: BLE001 - only a head start: the kernel formats its tracebacks anyway
        pass
    kernel_guard.guarded()  # the references' code and source, read once for every kernel
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    while line := read_line(0):
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if not isinstance(request, dict) or "notebook" not in request:
            continue  # a seed line its worker never read
        out.write(json.dumps(serve_one(request, Path(args.scratch), out, not args.unsandboxed)) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
