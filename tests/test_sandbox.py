"""The grading sandbox against the submissions we must survive (autograder/sandbox.py).

Each test runs a small hostile Python program with run_sandboxed and checks the
outcome and that the host is unharmed.  The sandboxed tests skip, with the reason
and the fix, where bubblewrap cannot run (check_sandbox); on the course's machines
`make setup` installs it.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from autograder.sandbox import (
    REPO_ROOT, Limits, SandboxResult, check_sandbox, run_sandboxed, sandbox_command,
)

OK, WHY = check_sandbox()
needs_bwrap = pytest.mark.skipif(not OK, reason=f"sandbox unavailable: {WHY}")
PY = sys.executable
QUICK = Limits(memory_mb=1024, max_processes=64, file_size_mb=16, output_mb=1, wall_seconds=20)


def run(code: str, scratch: Path, *, hide=(), **limits) -> SandboxResult:
    lim = Limits(**{**QUICK.__dict__, **limits})
    return run_sandboxed([PY, "-c", code], scratch=scratch, hide=list(hide), limits=lim)


def procs_with(marker: str) -> list[int]:
    """Host pids whose command line contains marker (i.e. leftovers of a test program)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in Path(entry.path, "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture
def scratch(tmp_path) -> Path:
    d = tmp_path / "scratch"
    d.mkdir()
    return d


@pytest.fixture
def course():
    """A course tree OUTSIDE /tmp (the sandbox's /tmp is private anyway, which would make
    the hiding tests pass for the wrong reason): solutions, a gradebook, two students."""
    root = Path(tempfile.mkdtemp(prefix="sandbox-course-", dir="/var/tmp"))
    root.chmod(0o755)  # like a course checkout (mkdtemp makes it 0700)
    (root / "solutions").mkdir()
    (root / "solutions" / "answers.py").write_text("SECRET_SOLUTION = 42\n")
    ws = root / "workspace"
    (ws / "submitted" / "bob" / "ps1").mkdir(parents=True)
    (ws / "submitted" / "bob" / "ps1" / "ps1.ipynb").write_text("bob's work")
    (ws / "submitted" / "alice" / "ps1").mkdir(parents=True)
    (ws / "gradebook.db").write_text("SECRET_GRADES")
    (root / "public.txt").write_text("public")
    yield root
    shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- basics
def test_check_sandbox_reports_a_reason():
    ok, why = check_sandbox()
    assert isinstance(ok, bool) and why
    if not ok:
        assert "--no-sandbox" in why


@needs_bwrap
def test_command_line_has_the_isolation(scratch, course):
    cmd = sandbox_command([PY, "-c", "pass"], scratch=scratch, hide=[course / "solutions"], limits=Limits())
    joined = " ".join(cmd)
    venv = Path(os.path.realpath(sys.prefix))
    for flag in ("--die-with-parent", "--new-session", "--clearenv", "--unshare-pid", f"--ro-bind {venv} {venv}",
                 f"--ro-bind {REPO_ROOT / 'course_lib'} {REPO_ROOT / 'course_lib'}", "--remount-ro /",
                 "--dev /dev", "--proc /proc", "--tmpfs /tmp", f"--tmpfs {course / 'solutions'}",
                 f"--bind {scratch} {scratch}", f"--chdir {scratch}"):
        assert flag in joined
    assert "--unshare-net" in cmd or "--unshare-all" in cmd
    assert "--ro-bind / /" not in joined  # an allow-list: the host's root is not mounted


@needs_bwrap
@pytest.mark.parametrize("code, expected", [
    ("print('hi')", 0), ("import sys; sys.exit(5)", 5), ("import os; os._exit(3)", 3),
    ("raise SystemExit('bye')", 1), ("raise ValueError", 1),
])
def test_exit_codes_are_reported(scratch, code, expected):
    r = run(code, scratch)
    assert r.returncode == expected, r
    assert not r.timed_out and r.killed_reason is None


@needs_bwrap
def test_segfault_is_a_negative_returncode(scratch):
    r = run("import ctypes; ctypes.string_at(0)", scratch)
    assert r.returncode == -11, r
    assert "SIGSEGV" in r.killed_reason


@needs_bwrap
def test_identity_env_and_home(scratch, monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", "hunter2")
    code = ("import os, json; print(json.dumps({'uid': os.getuid(), 'cwd': os.getcwd(), "
            "'env': dict(os.environ)}))")
    r = run_sandboxed([PY, "-c", code], scratch=scratch, hide=[], limits=QUICK, env={"PYTHONPATH": "/x"})
    info = json.loads(r.stdout)
    assert info["cwd"] == str(scratch.resolve())
    assert info["env"]["HOME"] == str(scratch.resolve())
    assert info["env"]["PYTHONPATH"] == "/x" and info["env"]["COURSE_QUICK"] == "1"
    assert "SANDBOX_TEST_SECRET" not in info["env"]
    if os.geteuid() == 0:  # root drops to a fresh uid (RLIMIT_NPROC is not enforced for root)
        assert info["uid"] != 0


# ----------------------------------------------------------------------------- time
@needs_bwrap
def test_infinite_loop_times_out(scratch):
    r = run("while True: pass", scratch, wall_seconds=2)
    assert r.timed_out and r.returncode == -9
    assert "wall-clock" in r.killed_reason
    assert 2 <= r.seconds < 2 + 5


@needs_bwrap
def test_loop_ignoring_signals_is_killed_with_its_children(scratch):
    marker = f"sigign-{uuid.uuid4().hex}"
    code = (f"# {marker}\nimport os, signal\n"
            "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)\n"
            "os.fork(); os.setsid() if os.getpid() % 2 else None\n"
            "while True:\n    try: pass\n    except KeyboardInterrupt: pass\n")
    r = run(code, scratch, wall_seconds=2)
    assert r.timed_out and r.returncode == -9
    assert r.seconds < 2 + 5
    assert procs_with(marker) == []


@needs_bwrap
def test_background_processes_do_not_outlive_the_run(scratch):
    marker = f"{uuid.uuid4().int % 10**6 + 300}.5"  # a unique `sleep` argument
    code = ("import subprocess, os\n"
            f"subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
            "if os.fork() == 0:\n    os.setsid(); os.execvp('sleep', ['sleep', '" + marker + "'])\n"
            "print('parent done')")
    r = run(code, scratch)
    assert r.returncode == 0 and "parent done" in r.stdout
    assert procs_with(marker) == []


# ----------------------------------------------------------------------------- resources
@needs_bwrap
def test_fork_bomb_is_contained(scratch):
    marker = f"forkbomb-{uuid.uuid4().hex}"
    code = (f"# {marker}\nimport os, time\nroot = os.getpid(); t0 = time.time(); said = False\n"
            "while True:\n"
            "    try: os.fork()\n"
            "    except OSError: pass\n"
            "    if not said and os.getpid() == root and time.time() - t0 > 1.5:\n"
            "        print('procs', len([p for p in os.listdir('/proc') if p.isdigit()]), flush=True)\n"
            "        said = True\n")
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("r", run(code, scratch, max_processes=64,
                                                                  wall_seconds=5)))
    start = time.monotonic()
    t.start()
    time.sleep(2.5)
    # The host can still fork while the bomb is at its limit.
    assert subprocess.run(["true"], timeout=10).returncode == 0
    t.join(30)
    elapsed = time.monotonic() - start
    r = box["r"]
    assert r.timed_out and elapsed < 5 + 10
    counts = [int(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("procs")]
    assert counts, r  # the bomb's first process saw its (private) process table
    assert counts[0] <= 64 + 3  # + bwrap's init and the launcher in the namespace
    if r.peak_processes is not None:
        assert r.peak_processes <= 64 + 1
    print(f"fork bomb: {counts[0]} processes in the sandbox, pids-cgroup peak "
          f"{r.peak_processes}, run {r.seconds:.1f}s")
    assert procs_with(marker) == []  # the whole tree is gone


@needs_bwrap
def test_output_flood_is_capped(scratch):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = "import sys\nb = b'x' * (1 << 20)\nfor _ in range(100): sys.stdout.buffer.write(b)\nprint('end', file=sys.stderr)"
    r = run(code, scratch, output_mb=1)
    assert r.returncode == 0, r
    assert r.stdout_truncated and len(r.stdout) == 1 << 20
    assert not r.stderr_truncated and "end" in r.stderr
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50  # 100 MB went through, at most 1 MB was kept


@needs_bwrap
def test_memory_hog_gets_memory_error(scratch):
    r = run("b = bytearray(8 << 30)", scratch, memory_mb=512)
    assert r.returncode != 0 and "MemoryError" in r.stderr, r
    code = "chunks = []\nwhile True: chunks.append(b'x' * (32 << 20))"  # touched pages, not calloc
    r = run(code, scratch, memory_mb=512)
    assert r.returncode != 0 and ("MemoryError" in r.stderr or r.returncode < 0), r


@needs_bwrap
def test_memory_of_the_whole_tree_is_capped_when_a_cgroup_is_available(scratch):
    code = ("import os\nkids = []\n"
            "for _ in range(4):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        b = b'x' * (200 << 20)\n"
            "        import time; time.sleep(1); os._exit(0)\n"
            "    kids.append(pid)\n"
            "print([os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids])\n")
    r = run(code, scratch, memory_mb=400)
    if not any("memory" in e and "cgroup" in e for e in r.enforcement):
        pytest.skip("no memory cgroup here: memory is capped per process only (RLIMIT_AS)")
    assert r.oom_killed, r  # 4 x 200 MB > 400 MB for the tree: the OOM killer stepped in
    assert "-9" in r.stdout
    assert r.peak_memory_mb is not None and r.peak_memory_mb <= 400 + 1


@needs_bwrap
def test_file_size_is_limited(scratch):
    code = ("import os\ntry:\n    open('big', 'wb').write(b'x' * (8 << 20))\n"
            "except OSError as e: print('errno', e.errno)\n")
    r = run(code, scratch, file_size_mb=4)
    assert "errno 27" in r.stdout, r  # EFBIG
    assert (scratch / "big").stat().st_size <= 4 << 20


# ----------------------------------------------------------------------------- isolation
@needs_bwrap
def test_no_network_but_private_loopback(scratch):
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen(1)
    port = host.getsockname()[1]
    code = ("import socket, json\nres = {}\n"
            "def try_(name, addr):\n"
            "    try: socket.create_connection(addr, timeout=3).close(); res[name] = 'connected'\n"
            "    except OSError as e: res[name] = type(e).__name__\n"
            "try_('internet', ('1.1.1.1', 80))\n"
            f"try_('host_loopback', ('127.0.0.1', {port}))\n"
            "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
            "try_('own_loopback', s.getsockname())\n"
            "print(json.dumps(res))\n")
    try:
        r = run(code, scratch)
    finally:
        host.close()
    res = json.loads(r.stdout)
    assert res["internet"] != "connected"
    assert res["host_loopback"] != "connected"
    assert res["own_loopback"] == "connected"  # what nbclient <-> kernel ZMQ needs


@needs_bwrap
def test_hidden_paths_are_invisible(course):
    ws = course / "workspace"
    scratch = ws / "submitted" / "alice" / "ps1"  # inside the hidden workspace
    code = ("import os, json\nout = {}\n"
            f"for p in {[str(course / 'solutions' / 'answers.py'), str(ws / 'gradebook.db'), str(ws / 'submitted' / 'bob' / 'ps1' / 'ps1.ipynb'), str(course / 'public.txt')]!r}:\n"
            "    try: out[p] = open(p).read()\n"
            "    except OSError as e: out[p] = type(e).__name__\n"
            f"out['solutions_dir'] = os.listdir({str(course / 'solutions')!r})\n"
            f"out['submitted_dir'] = os.listdir({str(ws / 'submitted')!r})\n"
            "open('mine.txt', 'w').write('ok')\n"
            "print(json.dumps(out))\n")
    r = run_sandboxed([PY, "-c", code], scratch=scratch, hide=[course / "solutions", ws, ws / "gradebook.db"],
                      readonly_extra=[course / "public.txt"], limits=QUICK)
    assert r.returncode == 0, r
    out = json.loads(r.stdout)
    assert out[str(course / "solutions" / "answers.py")] == "FileNotFoundError"
    assert out[str(ws / "gradebook.db")] in ("FileNotFoundError", "PermissionError")
    assert out[str(ws / "submitted" / "bob" / "ps1" / "ps1.ipynb")] == "FileNotFoundError"
    assert out["solutions_dir"] == [] and out["submitted_dir"] == ["alice"]
    assert out[str(course / "public.txt")] == "public"  # allowed explicitly: readable, not writable
    assert (scratch / "mine.txt").read_text() == "ok"
    assert "SECRET" not in r.stdout


@needs_bwrap
def test_nothing_outside_the_allow_list_is_visible(scratch, course):
    """A submission searching the machine finds the runtime, course_lib and its own
    scratch folder: no class folder (peers' notebooks), no other checkout, no home
    folder, no solutions anywhere, and no other process of the host."""
    peers = course / "class" / "bob"
    peers.mkdir(parents=True)
    (peers / "01_game_theory.ipynb").write_text('{"cells": []}  BOB_SECRET')
    checkout = course / "other-checkout" / "solutions" / "01_game_theory"
    checkout.mkdir(parents=True)
    (checkout / "01_game_theory.ipynb").write_text("BEGIN SOLUTION CHECKOUT_SECRET")
    runtime = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)})  # its packages' own files
    code = ("import os, json\nfound, readable = [], {}\n"
            "for top, dirs, files in os.walk('/'):\n"
            f"    if top.startswith(('/proc', '/dev', '/usr') + {runtime!r}):\n"
            "        dirs[:] = []\n"
            "        continue\n"
            "    found += [os.path.join(top, f) for f in files if f.endswith('.ipynb') or 'solution' in f]\n"
            "    found += [os.path.join(top, d) for d in dirs if d in ('solutions', 'notebooks', '.git', 'class')]\n"
            f"for p in {[str(peers / '01_game_theory.ipynb'), str(checkout / '01_game_theory.ipynb'), str(REPO_ROOT / 'solutions'), str(REPO_ROOT / 'notebooks'), '/home', '/root', '/etc/passwd', '/etc/shadow']!r}:\n"
            "    try: readable[p] = sorted(os.listdir(p)) if os.path.isdir(p) else open(p).read()[:40]\n"
            "    except OSError as e: readable[p] = type(e).__name__\n"
            "procs = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
            "print(json.dumps({'found': found, 'readable': readable, 'procs': procs}))\n")
    r = run(code, scratch)
    assert r.returncode == 0, r
    out = json.loads(r.stdout)
    assert out["found"] == [], out["found"]
    readable = out["readable"]
    for path in (peers / "01_game_theory.ipynb", checkout / "01_game_theory.ipynb", REPO_ROOT / "solutions",
                 REPO_ROOT / "notebooks", "/home", "/etc/passwd", "/etc/shadow"):
        assert readable[str(path)] == "FileNotFoundError", (path, readable[str(path)])
    runtime = [p for p in (sys.prefix, sys.base_prefix) if os.path.realpath(p).startswith("/root/")]
    assert readable["/root"] in ("FileNotFoundError", [".pyenv"] if runtime else []), readable["/root"]
    assert "SECRET" not in r.stdout
    assert len(out["procs"]) <= 3, out["procs"]  # bwrap's init, the launcher, this program


@needs_bwrap
def test_scratch_below_a_private_folder(course):
    """As root the code runs as another uid: a 0700 folder above scratch (a home, a
    mkdtemp) must not lock it out, and must not show what else that folder holds."""
    course.chmod(0o700)
    scratch = course / "workspace" / "submitted" / "alice" / "ps1"
    r = run(f"import os; open('w.txt', 'w').write('ok'); print(os.listdir({str(course)!r}))", scratch)
    assert r.returncode == 0, r
    assert (scratch / "w.txt").read_text() == "ok"
    if os.geteuid() == 0:
        assert eval(r.stdout) == ["workspace"]  # solutions/, public.txt are not there


@needs_bwrap
def test_hidden_file_cannot_be_read(scratch, course):
    gb = course / "workspace" / "gradebook.db"
    code = (f"try: print(repr(open({str(gb)!r}).read()))\n"
            "except OSError as e: print(type(e).__name__)\n")
    r = run(code, scratch, hide=[gb])
    assert r.stdout.strip() == "PermissionError", r
    assert "SECRET" not in r.stdout


@needs_bwrap
def test_only_scratch_is_writable(scratch, course):
    targets = [REPO_ROOT / f"sandbox-escape-{uuid.uuid4().hex}", Path("/etc/sandbox-escape"),
               course / "escape.txt", Path("/var/tmp") / f"escape-{uuid.uuid4().hex}"]
    code = ("import json\nout = {}\n"
            f"for p in {[str(t) for t in targets]!r} + ['in_scratch.txt']:\n"
            "    try: open(p, 'w').write('x'); out[p] = 'written'\n"
            "    except OSError as e: out[p] = type(e).__name__\n"
            "print(json.dumps(out))\n")
    r = run(code, scratch)
    out = json.loads(r.stdout)
    for t in targets:
        assert out[str(t)] != "written", out
        assert not t.exists()
    assert out["in_scratch.txt"] == "written" and (scratch / "in_scratch.txt").exists()


@needs_bwrap
def test_tmp_is_private(scratch):
    host_file = Path("/tmp") / f"host-{uuid.uuid4().hex}"
    host_file.write_text("host")
    name = f"sandbox-{uuid.uuid4().hex}"
    code = (f"import os\nprint({host_file.name!r} in os.listdir('/tmp'))\n"
            f"open('/tmp/{name}', 'w').write('x'); print('wrote')\n")
    try:
        r = run(code, scratch)
    finally:
        host_file.unlink()
    assert r.stdout.split() == ["False", "wrote"], r
    assert not (Path("/tmp") / name).exists()


# ----------------------------------------------------------------------------- kernel
@needs_bwrap
def test_jupyter_kernel_round_trip_inside_the_sandbox(scratch):
    """The real thing: nbclient starts the python3 kernel in the sandbox and talks ZMQ to it."""
    probe = REPO_ROOT / "autograder" / "sandbox_probe.py"
    solutions = REPO_ROOT / "solutions"
    argv = [PY, str(probe), "notebook", "--cell-timeout", "30", "--check", str(solutions),
            "--check", str(REPO_ROOT / "course_lib")]
    r = run_sandboxed(argv, scratch=scratch, hide=[solutions],
                      limits=Limits(wall_seconds=90, max_processes=128))
    assert r.returncode == 0, r
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["ok"] and res["outputs"][0] == "42\n"
    kernel = res["kernel"]
    assert kernel["cwd"] == str(scratch.resolve())
    assert kernel["net"] != "reachable"
    if solutions.exists():
        assert kernel["seen"][str(solutions)] == []
    assert "__init__.py" in kernel["seen"][str(REPO_ROOT / "course_lib")]
    assert kernel["uid"] == res["worker_uid"]
    if os.geteuid() == 0:
        assert kernel["uid"] != 0


# ----------------------------------------------------------------------------- opt-out
def test_unsandboxed_mode_keeps_limits_and_warns(scratch):
    with pytest.warns(RuntimeWarning, match="UNSANDBOXED"):
        r = run_sandboxed([PY, "-c", "b = bytearray(8 << 30)"], scratch=scratch, hide=[],
                          limits=Limits(memory_mb=512), unsandboxed=True)
    assert not r.sandboxed and "MemoryError" in r.stderr
    marker = f"{uuid.uuid4().int % 10**6 + 300}.25"
    code = f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\nwhile True: pass"
    with pytest.warns(RuntimeWarning):
        r = run_sandboxed([PY, "-c", code], scratch=scratch, hide=[], unsandboxed=True,
                          limits=Limits(wall_seconds=1.5))
    assert r.timed_out and r.seconds < 1.5 + 5
    assert procs_with(marker) == []
