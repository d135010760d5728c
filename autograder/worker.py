"""Execute one sanitized submission; stream each executed cell to stdout as JSON lines.

Run inside the sandbox as a script (``python -P worker.py NOTEBOOK ...``: ``-P`` keeps
the student's scratch folder off ``sys.path``, so a file named ``nbformat.py`` there
cannot stand in for the real one). The student's code runs in the Jupyter kernel this
worker starts, as the same user, so the worker protects what it reports:

- results go to this process's stdout pipe, never to a file the kernel could rewrite;
- the kernel gets /dev/null as stdout/stderr, and this process is made non-dumpable,
  so the kernel cannot reach the pipe through /proc/<pid>/fd or ptrace;
- each cell's output is capped, so a flood of prints cannot exhaust memory or disk.

A line is written after every cell, so when the sandbox stops a notebook that runs
past its time limit, the cells that did run still count.

After a test cell, the worker judges the answers the cell's hidden part names (the
grader never sends hidden test code to the kernel): one judged call each, through the
kernel's guard (autograder/kernel_guard.py), whose signed record goes into the cell's
line. A cell that outruns its time limit is interrupted; a kernel that has not answered
``INTERRUPT_GRACE_S`` later is killed, and the notebook ends there.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Callable

sys.modules.setdefault("rfc3987_syntax", None)  # run as a script: as autograder/__init__.py does, 2 s saved

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import DeadKernelError  # noqa: E402

from autograder import kernel_guard  # noqa: E402
from autograder.cells import is_test_cell, source_text  # noqa: E402
from course_lib.judge import case_seed  # noqa: E402

PR_SET_DUMPABLE = 4
INTERRUPT_GRACE_S = 5  # a kernel still busy this long after an interrupt is killed
IGNORED_INTERRUPT = "ignored the interrupt; the kernel was stopped"


@dataclass
class Judge:
    """What the worker needs to judge answers: the kernel guard's key, the student's seed,
    and the judged calls (case key, answer name) of each test cell, by cell index."""

    secret: bytes
    seed: int
    calls: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    before: Callable[[], int] | None = None  # stops stray processes; returns how many


def make_non_dumpable() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to harden
        pass


class CappedClient(NotebookClient):
    """nbclient with a per-cell output cap and a JSON line per executed cell."""

    def __init__(self, nb, cap_bytes: int, out, judge: Judge | None = None, **kwargs):
        super().__init__(nb, **kwargs)
        self.cap_bytes = cap_bytes
        self.out = out
        self.judge = judge
        self._sizes: dict[int, int] = {}
        self._dropped: dict[int, int] = {}
        self._executed: dict | None = None
        self.on_cell_executed = self._keep_reply

    async def _keep_reply(self, cell, cell_index, execute_reply):
        self._executed = execute_reply or {}

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self._executed = None
        cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if self._executed is not None:  # it ran (not skipped): judge its answers, then report it
            ok = self._executed.get("content", {}).get("status") == "ok"
            calls = self.judge.calls.get(cell_index, []) if self.judge else []
            judged = [await self._judged_call(key, name) for key, name in calls] if ok else []
            self._report(cell, cell_index, self._executed, judged)
        return cell

    async def _judged_call(self, key: str, name: str) -> dict:
        """One judged call through the kernel guard; the record if its signature is good."""
        stopped = self.judge.before() if self.judge.before else 0
        nonce = os.urandom(16)
        token = kernel_guard.make_token(self.judge.secret, key, name, case_seed(key, self.judge.seed), nonce)
        shown = await self._run_quietly(f"__import__('sys').audit({kernel_guard.EVENT!r}, {token!r})",
                                        kernel_guard.MIME)
        records = [r for r in (kernel_guard.read_record(self.judge.secret, nonce, d) for d in shown) if r]
        return {"key": key, "name": name, "stopped": stopped, "shown": len(shown),
                "record": records[0] if len(records) == 1 and len(shown) == 1 else None}

    async def _run_quietly(self, code: str, mime: str) -> list:
        """Run ``code`` outside the notebook (silent: no history, no execution count, no cell
        hooks); return what it displayed as ``mime``."""
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False, stop_on_error=False)
        deadline, interrupted, shown = time.monotonic() + self.timeout, False, []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if interrupted:
                    await self._stop_kernel()
                await self.km.interrupt_kernel()
                deadline, interrupted = time.monotonic() + INTERRUPT_GRACE_S, True
                continue
            try:
                msg = await self.kc.iopub_channel.get_msg(timeout=min(left, 1.0))
            except Empty:
                await self._async_check_alive()
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg.get("content", {})
            if msg["msg_type"] == "display_data" and mime in content.get("data", {}):
                shown.append(content["data"][mime])
            elif msg["msg_type"] == "status" and content.get("execution_state") == "idle":
                break
        try:  # its reply, so that the next cell's poll does not meet it
            while (await self.kc.shell_channel.get_msg(timeout=INTERRUPT_GRACE_S))["parent_header"].get("msg_id") != msg_id:
                pass
        except Empty:
            pass
        return shown

    async def _stop_kernel(self) -> None:
        await self.km.shutdown_kernel(now=True)
        raise DeadKernelError(IGNORED_INTERRUPT)

    async def _async_handle_timeout(self, timeout, cell=None):
        """Interrupt the cell; a kernel that does not answer within the grace period is killed."""
        await self.km.interrupt_kernel()
        deadline = time.monotonic() + INTERRUPT_GRACE_S
        try:
            while (await self.kc.shell_channel.get_msg(timeout=max(0.0, deadline - time.monotonic())))[
                    "msg_type"] != "execute_reply":
                pass
        except Empty:  # report the cell (the notebook ends here), then kill the kernel
            index = next(i for i, c in enumerate(self.nb.cells) if c is cell)
            evalue = f"this cell ran past the {timeout} s limit and {IGNORED_INTERRUPT}"
            self._report(cell, index, {"content": {"status": "error", "ename": "CellTimeoutError", "evalue": evalue}}, [])
            await self._stop_kernel()
        return {"content": {**self.error_on_timeout, "status": "error"}}

    async def async_start_new_kernel(self, **kwargs):
        # The kernel must not inherit this process's stdout: that pipe carries the results.
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return await super().async_start_new_kernel(**kwargs)

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {})))
        used = self._sizes.get(cell_index, 0)
        if msg["msg_type"] != "error" and used + size > self.cap_bytes:
            self._dropped[cell_index] = self._dropped.get(cell_index, 0) + size
            return None
        self._sizes[cell_index] = used + size
        return super().output(outs, msg, display_id, cell_index)

    def _report(self, cell, cell_index, execute_reply, judged: list):
        # A cell counts as run only on the kernel's own "ok" reply. After a time-out
        # nbclient moves on with a made-up error reply and adds no output, which
        # nbgrader would read as a passed test: record that error in the cell.
        content = (execute_reply or {}).get("content", {})
        status = content.get("status", "unknown")
        timed_out = content.get("ename") == "CellTimeoutError"
        if timed_out or (status != "ok" and not any(o.get("output_type") == "error" for o in cell.outputs)):
            ename, evalue = content.get("ename", "NoReply"), content.get("evalue", f"the kernel answered {status!r}")
            cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                                       traceback=[f"{ename}: {evalue}"]))
        dropped = self._dropped.pop(cell_index, 0)
        if dropped:
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stdout",
                text=f"\n[grader: {dropped / 1e6:.1f} MB of further output from this cell was dropped]\n"))
        line = {"index": cell_index, "execution_count": cell.get("execution_count"), "status": status,
                "outputs": cell.outputs}
        if judged:
            line["judged"] = judged
        self.out.write(json.dumps(line) + "\n")
        self.out.flush()


def sources_of_test_cells(path: str) -> list[str]:
    """The sources of a notebook's test cells (graded code cells that are not answers).

    Plain JSON, not nbformat: the kernel is started before the notebook is read and
    validated, and this must not hold it up. A file that does not parse has none."""
    try:
        cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
        sources = [source_text(cell) for cell in cells if is_test_cell(cell)]
        return sources
    except (OSError, ValueError, AttributeError, TypeError):
        return []


def run_notebook(path: str, cell_timeout: int, skip_tag: str, cap_kb: int, out, km=None,
                 judge: Judge | None = None) -> int:
    """Execute the notebook at ``path``, one JSON line per cell to ``out``; 0 when it ran to the end.

    ``km``: a kernel manager for an already started kernel (the fork server's); by
    default nbclient starts a fresh kernel. ``judge``: how to judge the answers after
    test cells (the fork server's kernels have the guard); without it none are judged.
    """
    nb = nbformat.read(path, as_version=4)
    client = CappedClient(
        nb, cap_kb * 1024, out, judge, km=km, kernel_name="python3", timeout=cell_timeout,
        allow_errors=True, interrupt_on_timeout=True, skip_cells_with_tag=skip_tag,
        startup_timeout=60, extra_arguments=["--IPKernelApp.log_level=ERROR"],
        error_on_timeout={"ename": "CellTimeoutError",
                          "evalue": f"this cell ran past the {cell_timeout} s limit and was interrupted",
                          "traceback": [f"CellTimeoutError: this cell ran past the {cell_timeout} s limit"]},
        resources={"metadata": {"path": "."}},
    )
    try:
        client.execute()
    except Exception as exc:  # noqa: BLE001 - a dead kernel ends the run; report why
        out.write(json.dumps({"fatal": f"{exc.__class__.__name__}: {str(exc)[:300]}"}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"done": True}) + "\n")
    out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("--cell-timeout", type=int, default=60)
    parser.add_argument("--skip-tag", default="grading-skip")
    parser.add_argument("--cap-kb", type=int, default=1024, help="output kept per cell")
    args = parser.parse_args(argv)
    make_non_dumpable()
    out = sys.stdout
    sys.stdout = sys.stderr  # anything else this process prints stays off the results pipe
    return run_notebook(args.notebook, args.cell_timeout, args.skip_tag, args.cap_kb, out)


if __name__ == "__main__":
    sys.exit(main())
