"""A tiny worker run INSIDE the sandbox by tests/test_sandbox.py.

``python sandbox_probe.py notebook [--cell-timeout S] [--check PATH ...]`` executes a
two-cell notebook with nbclient and the ``python3`` kernel, exactly as the grading
worker does, and prints one JSON object on stdout: the cells' outputs plus what the
*kernel* sees (its uid, whether each --check path exists, whether it can reach the
network).  It proves that nbclient <-> kernel ZMQ traffic over 127.0.0.1 works in
the sandbox's private network namespace, and that the kernel itself is confined.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def run_notebook(cell_timeout: int, checks: list[str]) -> dict:
    import nbformat
    from nbclient import NotebookClient

    probe = (
        "import json, os, socket\n"
        "def net():\n"
        "    try:\n"
        "        socket.create_connection(('1.1.1.1', 80), timeout=2).close()\n"
        "        return 'reachable'\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        f"paths = {checks!r}\n"
        "def seen(p):  # a hidden folder is an empty tmpfs: report what is IN it\n"
        "    return sorted(os.listdir(p)) if os.path.isdir(p) else os.path.exists(p)\n"
        "print(json.dumps({'uid': os.getuid(), 'cwd': os.getcwd(), 'net': net(),\n"
        "                  'seen': {p: seen(p) for p in paths}}))\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7\nprint(x)"), nbformat.v4.new_code_cell(probe)]
    client = NotebookClient(nb, kernel_name="python3", timeout=cell_timeout, startup_timeout=60,
                            resources={"metadata": {"path": os.getcwd()}})
    client.execute()
    texts = ["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in nb.cells]
    kernel = json.loads(texts[1])
    return {"ok": True, "outputs": texts, "kernel": kernel, "worker_uid": os.getuid()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    nb = sub.add_parser("notebook", help="execute a 2-cell notebook with nbclient, print JSON")
    nb.add_argument("--cell-timeout", type=int, default=60)
    nb.add_argument("--check", action="append", default=[], help="a path whose contents the kernel should report")
    args = parser.parse_args(argv)
    if args.cmd == "notebook":
        print(json.dumps(run_notebook(args.cell_timeout, args.check)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
