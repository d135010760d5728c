"""Run untrusted submission code (the grading worker and its Jupyter kernel) in a sandbox.

The grader runs each submission in a worker process (nbclient + the kernel it
starts); ``run_sandboxed`` runs that whole worker inside bubblewrap (``bwrap``)
with resource limits, a wall-clock limit and guaranteed clean-up.

What the sandbox guarantees (bubblewrap mode, i.e. ``check_sandbox()`` is OK):

* File system: an allow-list.  The sandbox starts from an empty, read-only root and
  sees only: the system software (/usr and the /bin, /lib... links to it, and a few
  /etc files programs read at start-up: the loader cache, time zone, hosts, fonts;
  ``SYSTEM_PATHS``), the Python runtime (sys.prefix, sys.base_prefix, the
  interpreter's folder), the kit's ``course_lib`` and ``autograder`` packages (not the
  rest of its checkout: no solutions/, notebooks/, .git or workspace), the paths in
  ``readonly_extra``, all read-only, and the submission's ``scratch`` folder, writable,
  which is also its HOME and working directory.  ``/tmp`` and ``/dev/shm`` are private,
  size-capped tmpfs; ``/proc`` shows only the sandbox's own processes; there is no
  ``/sys``.  No home folder, class folder, other checkout or other user's file is there
  unless it lies inside one of those paths.  Each path in ``hide`` is an empty
  read-only mount wherever it lies (a file: a stand-in that cannot be opened), also
  inside an allowed folder.  ``--new-session`` keeps the code away from the grader's
  terminal.
* No network: a new network namespace with only its own loopback (nbclient talks to
  the kernel over 127.0.0.1 inside it); the host's 127.0.0.1 services are not
  reachable.  New pid/ipc/uts (and cgroup, where possible) namespaces: the code sees
  only its own processes.
* Identity: as root, the code runs as a fresh unprivileged uid/gid (a random one per
  run, no supplementary groups, empty capability bounding set, no_new_privs), because
  Linux does not apply RLIMIT_NPROC to uid 0 and because uid 0 could read root-owned
  files such as /etc/shadow.  The scratch folder is chowned to that uid.  As a normal
  user, bwrap maps the user's own uid in a new user namespace, with further user
  namespaces disabled (bubblewrap >= 0.8).
* Limits: memory (RLIMIT_AS per process, plus a memory cgroup for the whole tree when
  one can be created), processes/threads (RLIMIT_NPROC counted per sandbox, plus a
  pids cgroup when available), file size (RLIMIT_FSIZE), no core dumps, output read
  back capped at ``output_mb`` (the rest is drained and dropped), and the wall-clock
  limit ``wall_seconds`` for the whole run.  Per-cell time limits are nbclient's
  ``timeout`` in the worker; this module is the backstop for a whole notebook.
* Clean-up: on exit, time-out or error, the sandbox's pid namespace is killed (its
  init is SIGKILLed through a pidfd; every process in the namespace dies with it) and
  the cgroup, if any, is emptied and removed.  When ``run_sandboxed`` returns, no
  process it started is left.  ``--die-with-parent`` kills the sandbox if the grader dies.

What it does NOT protect against (be honest with instructors):

* Kernel exploits.  This is namespaces + rlimits, not a VM; a kernel bug reachable
  from an unprivileged process can escape.  Grade in a VM/container for hostile classes.
  As root, the code may still create its own (unprivileged) user namespaces, which
  widens that kernel surface (--disable-userns needs bwrap's own user namespace).
* The integrity of what the worker reports.  The kernel runs the student's code as the
  same uid as the worker in the sandbox, so that code can tamper with the worker (and
  with the notebook's outputs, as in any nbgrader set-up).  Treat the worker's stdout
  and files as untrusted data: parse them defensively, never execute them.
* Reading what the allow-list holds: the system software under /usr, the Python
  runtime and its packages, and course_lib (whose reference answers the judge guards,
  see autograder/kernel_guard.py); /proc's system-wide files (cpuinfo, meminfo...).
* Disk space: RLIMIT_FSIZE caps each file, not the number of files written to scratch.
* CPU share: a submission may use every core until its wall-clock limit (no CPU quota).
* Without a memory cgroup (e.g. as a normal user on most desktops) memory is capped per
  process only, so ``max_processes`` processes may together use up to
  ``max_processes * memory_mb``.
* RLIMIT_AS counts address space, not RAM: libraries that reserve large virtual ranges
  (CUDA builds of torch, JAX) need a larger ``memory_mb``.
* The returncode is reported by a tiny launcher in the sandbox; code that kills the
  launcher can make an exit look like ``128+N`` from bwrap.
* The private /tmp and /dev/shm are RAM: without a memory cgroup they add up to
  2 x ``tmp_mb`` per sandbox on top of ``memory_mb``.
* cgroups are used only where this process may create one (cgroup v1 as root, or a
  cgroup v2 subtree delegated to it); a systemd session scope usually is not, and
  then only the rlimits apply.
* Unsandboxed mode (``unsandboxed=True``, the grader's ``--no-sandbox``) applies the
  same rlimits, cgroup and time limits but no file system, network or identity
  isolation; as root RLIMIT_NPROC is not enforced (only a pids cgroup limits forks),
  and without a cgroup a process that calls setsid() can outlive the run.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_HINT = (
    "install Debian's bubblewrap: apt-get install bubblewrap (`make setup` does it as root), "
    "or pass --no-sandbox to grade unsandboxed"
)
# Environment variables copied from the grader's environment into the sandbox.
PASSTHROUGH_ENV = ("COURSE_QUICK", "NBGRADER_EXECUTION", "TZ")
# The host's system software and the few /etc files programs read at start-up; with
# the Python runtime, the kit's own packages and the scratch folder, this is all a
# sandbox sees of the host (missing paths are skipped).
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache",
                "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/hosts", "/etc/nsswitch.conf",
                "/etc/alternatives", "/etc/fonts")
KIT_PATHS = (REPO_ROOT / "course_lib", REPO_ROOT / "autograder")
# bwrap itself (outer process + pid 1 of the namespace) and the launcher count in the
# pids cgroup; they are not the submission's.  pids.max gets one more as slack.
_OVERHEAD_PIDS = 3
# Fresh uids for root-run sandboxes come from this range (well above normal accounts
# and above the 65536 ids usually reserved for subuid ranges).
_UID_RANGE = (1_500_000_000, 2_000_000_000)


class SandboxUnavailable(RuntimeError):
    """bubblewrap cannot run here; the message says how to fix it or opt out."""


@dataclass
class Limits:
    """The limits a submission runs under: the one place their defaults live (the
    `course` command's options, the grader's settings and the nbgrader route's
    SandboxedExecute all start from these)."""

    memory_mb: int = 3072  # RLIMIT_AS per process; also the whole tree's cgroup limit
    max_processes: int = 128  # processes AND threads (both count for the kernel)
    file_size_mb: int = 64  # largest file the code may write (RLIMIT_FSIZE)
    output_mb: float = 32  # stdout/stderr read back, each; the rest is dropped
    wall_seconds: float = 600  # whole run (one notebook), then the tree is killed
    tmp_mb: int = 256  # size of the private /tmp and /dev/shm tmpfs (RAM-backed)
    cell_seconds: int = 120  # one cell, enforced by the worker (nbclient's timeout)


@dataclass
class SandboxResult:
    returncode: int  # exit status; -N when killed by signal N (also on time-out)
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: str | None  # why it ended abnormally, in words; None if it exited
    seconds: float
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    sandboxed: bool = True
    enforcement: list[str] = field(default_factory=list)  # what enforced which limit
    oom_killed: bool = False  # the memory cgroup's OOM killer ended a process
    peak_processes: int | None = None  # from the pids cgroup, when there is one
    peak_memory_mb: float | None = None  # from the memory cgroup, when there is one

    @property
    def truncated(self) -> bool:
        return self.stdout_truncated or self.stderr_truncated


# --------------------------------------------------------------------------- launcher
# Runs first inside the sandbox (as root when the grader is root, before dropping),
# with `python -I -S` so nothing from the environment or site-packages is involved.
# It applies the rlimits, drops to the sandbox uid, then forks the real command and
# stays as its parent so it can report "signal N" vs "exit N" exactly on a status fd
# (bwrap itself folds both into 128+N).
_LAUNCHER = r"""
import json, os, resource, signal, sys
cfg = json.loads(sys.argv[1]); argv = sys.argv[2:]
fd = cfg.get("status_fd")
def say(msg):
    if fd is not None:
        try: os.write(fd, (msg + "\n").encode())
        except OSError: pass
try:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    drop = cfg.get("drop")
    if drop:
        uid, gid = drop
        for top in cfg.get("chown", []):
            os.lchown(top, uid, gid)
            for root, dirs, files in os.walk(top):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), uid, gid)
    for name, value in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if drop:
        cap = 0
        while libc.prctl(24, cap, 0, 0, 0) == 0:  # PR_CAPBSET_DROP, until EINVAL
            cap += 1
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: setuid binaries stay powerless
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError("could not drop to uid %d" % uid)
        hdr = (ctypes.c_uint32 * 2)(0x20080522, 0)  # capset v3: clear the inheritable set too
        if libc.capset(hdr, (ctypes.c_uint32 * 6)()) != 0:
            raise OSError(ctypes.get_errno(), "capset")
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: the code can't ptrace this launcher
    env = cfg.get("env")
    if env is not None:
        os.environ.clear(); os.environ.update(env)
    say("ready")
    pid = os.fork()
except Exception as exc:
    say("error " + repr(exc)); os._exit(125)
if pid == 0:
    try:
        if fd is not None:
            os.close(fd)
        for s in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
            signal.signal(s, signal.SIG_DFL)  # Python ignores these; exec would keep SIG_IGN
        os.execvp(argv[0], argv)
    except BaseException as exc:
        os.write(2, ("sandbox: cannot run %r: %s\n" % (argv[0], exc)).encode())
    os._exit(127)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, signal.SIG_IGN)  # only SIGKILL from the grader ends the launcher
while True:
    try:
        _, status = os.waitpid(pid, 0)
        break
    except ChildProcessError:
        os._exit(125)
if os.WIFSIGNALED(status):
    say("signal %d" % os.WTERMSIG(status)); os._exit(128 + os.WTERMSIG(status))
code = os.waitstatus_to_exitcode(status)
say("exit %d" % code); os._exit(code)
"""


def _rlimits(limits: Limits, nproc: int) -> dict[str, int]:
    mb = 1 << 20
    return {
        "RLIMIT_AS": int(limits.memory_mb * mb),
        "RLIMIT_NPROC": int(nproc),
        "RLIMIT_FSIZE": int(limits.file_size_mb * mb),
        "RLIMIT_CORE": 0,  # a segfault must not write a core file of the kernel's size
    }


def _launcher_argv(argv: Sequence[str], cfg: dict) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg), *map(str, argv)]


# --------------------------------------------------------------------------- bwrap
@functools.lru_cache(maxsize=1)
def _bwrap_version() -> tuple[int, ...] | None:
    exe = shutil.which("bwrap")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    return tuple(int(x or 0) for x in m.groups()) if m else (0, 0, 0)


def _is_root() -> bool:
    return os.geteuid() == 0


def _sandbox_env(scratch: Path, env: dict | None) -> dict[str, str]:
    """A minimal environment: nothing of the grader's (tokens, paths) leaks in."""
    threads = str(min(4, os.cpu_count() or 1))
    base = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(scratch),
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        # Threads count against max_processes and each glibc arena reserves 64 MB of
        # address space (RLIMIT_AS): keep both small and the same on every machine.
        "MALLOC_ARENA_MAX": "2",
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    if sys.prefix != sys.base_prefix:
        base["VIRTUAL_ENV"] = sys.prefix
    for key in PASSTHROUGH_ENV:
        if key in os.environ:
            base[key] = os.environ[key]
    for key, value in (env or {}).items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = str(value)
    return base


def _real(p: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(p)))


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _system_mounts() -> list[tuple[str, list[str]]]:
    """(path, bwrap options) for the host's system software: its folders read-only, its
    top-level symlinks (/bin -> usr/bin on merged-/usr systems) as symlinks."""
    mounts = []
    for path in SYSTEM_PATHS:
        if os.path.islink(path):
            mounts.append((path, ["--symlink", os.readlink(path), path]))
        elif os.path.exists(path):
            mounts.append((path, ["--ro-bind", path, path]))
    return mounts


def _mount_args(argv: Sequence[str], scratch: Path, hide: Iterable, readonly_extra: Iterable,
                limits: Limits, version: tuple[int, ...]) -> list[str]:
    """The bwrap mount options: an empty root with only the allowed paths mounted in.

    bwrap applies its options in order, so they are sorted by depth: a hidden folder's
    subfolder can be mounted again (the scratch folder inside the hidden workspace, the
    Python runtime inside a hidden home), and a hidden folder inside an allowed one
    covers it.  Explicitly hidden paths become empty read-only mounts wherever they are.
    """
    has_size = version >= (0, 7)
    scratch = _real(scratch)
    hidden = {_real(p) for p in hide if os.path.lexists(p)}
    allowed = {_real(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}}
    allowed.add(_real(sys.executable).parent)
    allowed |= {_real(p) for p in KIT_PATHS if p.exists()}
    allowed |= {_real(p) for p in readonly_extra if os.path.exists(p)}
    if argv and os.path.isabs(str(argv[0])) and os.path.exists(argv[0]):
        allowed.add(_real(argv[0]).parent)
    system = _system_mounts()
    on_system = {Path(path) for path, _ in system}
    # A folder inside another allowed folder is there already (unless hidden between them).
    allowed = {p for p in allowed if not _under(p, on_system) and not any(
        q in p.parents and not any(h in p.parents and q in h.parents for h in hidden) for q in allowed)}

    size = lambda mb: ["--size", str(int(mb) << 20)] if has_size else []  # noqa: E731
    ops: list[tuple[int, int, str, list[str]]] = [(len(Path(path).parts), 0, path, opts) for path, opts in system]
    ops.append((2, 0, "/tmp", ["--perms", "1777", *size(limits.tmp_mb), "--tmpfs", "/tmp"]))
    ops.append((3, 0, "/dev/shm", ["--perms", "1777", *size(limits.tmp_mb), "--tmpfs", "/dev/shm"]))
    remount: list[str] = []
    for p in hidden:
        if p.is_dir():
            ops.append((len(p.parts), 0, str(p), ["--tmpfs", str(p)]))
            remount.append(str(p))
        else:  # a file (e.g. gradebook.db): /dev/null on a nodev mount, so open() fails
            ops.append((len(p.parts), 0, str(p), ["--ro-bind", "/dev/null", str(p)]))
    for p in allowed:
        ops.append((len(p.parts), 1, str(p), ["--ro-bind", str(p), str(p)]))
    ops.append((len(scratch.parts), 2, str(scratch), ["--bind", str(scratch), str(scratch)]))
    ops.sort(key=lambda op: (op[0], op[1], op[2]))
    args = ["--dev", "/dev", "--proc", "/proc"]
    for *_, a in ops:
        args += a
    # bwrap creates the missing parents of a mount point (in the empty root or a hidden
    # tmpfs) with mode 0700, which the dropped uid cannot cross: open up exactly those.
    binds = allowed | {scratch}
    tmpfs_roots = {Path("/"), Path("/tmp"), Path("/dev/shm")} | {Path(p) for p in remount}
    chmods: set[Path] = set()
    for target in binds | on_system | {Path(p) for p in remount}:
        for parent in target.parents:
            if parent in binds or parent in tmpfs_roots:
                break  # a host folder or a fresh tmpfs: it exists with its own mode
            chmods.add(parent)
    for d in sorted(chmods, key=lambda q: len(q.parts)):
        args += ["--chmod", "0755", str(d)]
    # Writable tmpfs would be RAM sinks (as a normal user they belong to the sandbox uid):
    # the root and the hidden folders become read-only once every mount point exists.
    for p in sorted(remount):
        args += ["--remount-ro", p]
    return args + ["--remount-ro", "/"]


def _build(argv: Sequence[str], *, scratch: Path, hide: Iterable, readonly_extra: Iterable,
           limits: Limits, env: dict | None, status_fd: int | None = None,
           info_fd: int | None = None, uid: int | None = None) -> list[str]:
    version = _bwrap_version()
    if version is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: " + INSTALL_HINT)
    scratch = _real(scratch)
    cmd = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session"]
    cfg: dict = {"rlimits": _rlimits(limits, limits.max_processes), "status_fd": status_fd,
                 "env": _sandbox_env(scratch, env)}
    if _is_root():
        # No user namespace: bwrap (as root) can mount anything, then the launcher drops
        # to a fresh uid, the only identity for which RLIMIT_NPROC is enforced.
        if uid is None:
            uid = random.SystemRandom().randrange(*_UID_RANGE)  # immune to random.seed()
        cfg["drop"] = [uid, uid]
        cfg["chown"] = [str(scratch)]
        cmd += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_CHOWN", "CAP_DAC_READ_SEARCH"):
            cmd += ["--cap-add", cap]  # used by the launcher only, before it drops them all
    else:
        # As a normal user bwrap needs a user namespace; in it RLIMIT_NPROC counts only
        # this sandbox's processes (measured), not the user's desktop session.
        cmd += ["--unshare-all", "--unshare-user"]
        if version >= (0, 8):
            cmd += ["--disable-userns"]
    cmd += ["--hostname", "sandbox"]
    cmd += _mount_args(argv, scratch, hide, readonly_extra, limits, version)
    cmd += ["--chdir", str(scratch)]
    if version >= (0, 5):
        cmd += ["--clearenv"]  # the launcher sets the minimal environment itself
    if info_fd is not None:
        cmd += ["--info-fd", str(info_fd)]
    cmd += ["--"]
    return cmd + _launcher_argv(argv, cfg)


def sandbox_command(argv: Sequence[str], *, scratch: Path, hide: list[Path],
                    readonly_extra: Sequence[Path] = (), limits: Limits | None = None,
                    env: dict | None = None) -> list[str]:
    """The full command line that runs ``argv`` inside bubblewrap with the rlimits.

    Namespaces, mounts, environment, uid drop and rlimits are all in the command; the
    cgroup, the wall-clock limit, the output cap and the clean-up are added by
    ``run_sandboxed`` (use that to grade).  ``scratch`` is created if missing.
    """
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    return _build(argv, scratch=scratch, hide=hide, readonly_extra=readonly_extra,
                  limits=limits or Limits(), env=env)


# --------------------------------------------------------------------------- cgroups
class _Cgroup:
    """A per-run child cgroup with memory and pids limits, where this machine allows it.

    cgroup v1 (separate memory/pids hierarchies) and v2 (a cgroup whose
    subtree_control already delegates memory/pids to us) are supported; if neither is
    writable the rlimits alone apply.
    """

    def __init__(self) -> None:
        self.dirs: dict[str, Path] = {}  # controller -> child cgroup dir
        self.v2 = False

    @staticmethod
    def _our_cgroups() -> tuple[dict[str, str], str | None]:
        v1, v2 = {}, None
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            hid, ctrls, path = line.split(":", 2)
            if hid == "0" and ctrls == "":
                v2 = path
            for c in ctrls.split(","):
                if c:
                    v1[c] = path
        return v1, v2

    @staticmethod
    def _mounts() -> list[tuple[str, str, str, set[str]]]:
        out = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
                out.append((rfields[0], fields[3], fields[4], set(rfields[2].split(","))))
        return out

    @classmethod
    def create(cls, limits: Limits) -> "_Cgroup | None":
        try:
            return cls._create(limits)
        except OSError as exc:
            log.debug("no cgroup for the sandbox: %s", exc)
            return None

    @classmethod
    def _create(cls, limits: Limits) -> "_Cgroup | None":
        self = cls()
        name = f"autograder-sandbox-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        v1paths, v2path = cls._our_cgroups()
        mounts = cls._mounts()
        mem = int(limits.memory_mb) << 20
        pids = int(limits.max_processes) + _OVERHEAD_PIDS + 1
        for ctrl in ("memory", "pids"):
            for fstype, root, mnt, opts in mounts:
                if fstype == "cgroup" and ctrl in opts and ctrl in v1paths:
                    rel = v1paths[ctrl]
                    if root != "/" and rel.startswith(root):
                        rel = rel[len(root):]
                    parent = Path(mnt + rel.rstrip("/"))
                    try:
                        (parent / name).mkdir()
                    except OSError:
                        break
                    d = self.dirs[ctrl] = parent / name
                    if ctrl == "memory":
                        (d / "memory.limit_in_bytes").write_text(str(mem))
                        try:  # swap too, where swap accounting is on
                            (d / "memory.memsw.limit_in_bytes").write_text(str(mem))
                        except OSError:
                            pass
                    else:
                        (d / "pids.max").write_text(str(pids))
                    break
        if not self.dirs and v2path is not None:
            for fstype, root, mnt, _ in mounts:
                if fstype != "cgroup2":
                    continue
                rel = v2path[len(root):] if root != "/" and v2path.startswith(root) else v2path
                parent = Path(mnt + rel.rstrip("/"))
                try:
                    ctrls = set((parent / "cgroup.subtree_control").read_text().split())
                except OSError:
                    continue
                if not ({"memory", "pids"} & ctrls) or not os.access(parent, os.W_OK):
                    continue
                d = parent / name
                try:
                    d.mkdir()
                except OSError:
                    continue
                self.v2 = True
                if "memory" in ctrls:
                    (d / "memory.max").write_text(str(mem))
                    try:
                        (d / "memory.swap.max").write_text("0")
                    except OSError:
                        pass
                    self.dirs["memory"] = d
                if "pids" in ctrls:
                    (d / "pids.max").write_text(str(pids))
                    self.dirs["pids"] = d
                break
        return self if self.dirs else None

    def describe(self) -> list[str]:
        kind = "cgroup v2" if self.v2 else "cgroup v1"
        return [f"{kind} {ctrl}: {d}" for ctrl, d in self.dirs.items()]

    def join_prefix(self) -> list[str]:
        """A shell that moves itself into the cgroup(s), then execs the command.

        (Not preexec_fn: that is unsafe in a multi-threaded grader.)"""
        files = sorted({str(d / "cgroup.procs") for d in self.dirs.values()})
        script = " && ".join(f"echo $$ > '{f}'" for f in files) + ' && exec "$@"'
        return ["/bin/sh", "-c", script, "sandbox-cgroup-join"]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for d in set(self.dirs.values()):
            try:
                found |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def kill_all(self, timeout: float = 10.0) -> bool:
        for d in set(self.dirs.values()):
            if (d / "cgroup.kill").exists():
                try:
                    (d / "cgroup.kill").write_text("1")
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self.pids()
            if not left:
                return True
            for pid in left:  # pids.max stops a fork bomb from outrunning this loop
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        return not self.pids()

    def _read(self, ctrl: str, *names: str) -> str | None:
        d = self.dirs.get(ctrl)
        for n in names:
            try:
                return (d / n).read_text() if d else None
            except OSError:
                continue
        return None

    def oom_kills(self) -> int:
        text = self._read("memory", "memory.events", "memory.oom_control") or ""
        m = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(m.group(1)) if m else 0

    def peak_processes(self) -> int | None:
        text = self._read("pids", "pids.peak")
        return max(0, int(text) - _OVERHEAD_PIDS) if text and text.strip().isdigit() else None

    def peak_memory_mb(self) -> float | None:
        text = self._read("memory", "memory.peak", "memory.max_usage_in_bytes")
        return int(text) / (1 << 20) if text and text.strip().isdigit() else None

    def remove(self) -> None:
        for d in set(self.dirs.values()):
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                log.warning("could not remove cgroup %s", d)


# --------------------------------------------------------------------------- running
def _exited_nowait(pid: int) -> bool:
    """Whether our child has exited, without reaping it (its pid and process group
    stay reserved, so killpg cannot hit a recycled pid)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _count_tasks_of_uid(uid: int) -> int:
    n = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                status = Path(entry.path, "status").read_text()
            except OSError:
                continue
            m_uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
            m_thr = re.search(r"^Threads:\s+(\d+)", status, re.M)
            if m_uid and int(m_uid.group(1)) == uid:
                n += int(m_thr.group(1)) if m_thr else 1
    return n


class _Capped:
    def __init__(self, cap: int) -> None:
        self.buf = bytearray()
        self.cap = cap
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += chunk[:room]
        if len(chunk) > max(room, 0):
            self.truncated = True  # keep draining (so the writer never blocks), drop the rest

    def text(self) -> str:
        return self.buf.decode("utf-8", errors="replace")


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def run_sandboxed(argv: Sequence[str], *, scratch: Path, hide: Sequence[Path] = (),
                  limits: Limits | None = None, env: dict | None = None,
                  stdin_data: bytes | str | None = None, readonly_extra: Sequence[Path] = (),
                  unsandboxed: bool = False, stdin_fd: int | None = None,
                  on_stdout: Callable[[bytes], None] | None = None,
                  abort: threading.Event | None = None) -> SandboxResult:
    """Run ``argv`` in the sandbox with ``limits``; return when it and all it started are gone.

    ``scratch`` (created if missing) is the only writable folder, and the HOME and
    working directory.  ``hide`` lists folders/files the code must not see.
    ``unsandboxed=True`` is the explicit opt-out (--no-sandbox): same rlimits, cgroup and
    time limit, none of the isolation.  Raises SandboxUnavailable if bwrap cannot run
    and ``unsandboxed`` is False.

    For a long-lived process (the fork server): ``stdin_fd`` is its stdin, each chunk
    of its stdout goes to ``on_stdout`` as it arrives (instead of being collected), and
    setting ``abort`` kills the tree.
    """
    limits = limits or Limits()
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    enforcement: list[str] = []
    if not unsandboxed and _bwrap_version() is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: " + INSTALL_HINT)

    cgroup = _Cgroup.create(limits)
    fds: dict[str, int] = {}
    fds["status_r"], fds["status_w"] = os.pipe()
    try:
        if unsandboxed:
            warnings.warn("running submission code UNSANDBOXED (--no-sandbox): resource and time "
                          "limits only; it can read and write your files and use the network",
                          RuntimeWarning, stacklevel=2)
            nproc = limits.max_processes
            if not _is_root():  # RLIMIT_NPROC counts all the user's tasks here: add them
                nproc += _count_tasks_of_uid(os.getuid())
            cfg = {"rlimits": _rlimits(limits, nproc), "status_fd": fds["status_w"],
                   "env": _sandbox_env(_real(scratch), env)}
            cmd = _launcher_argv(argv, cfg)
            enforcement.append("UNSANDBOXED: no file system, network or identity isolation")
            enforcement.append("processes: RLIMIT_NPROC" + (" (NOT enforced for root)" if _is_root() else ""))
        else:
            fds["info_r"], fds["info_w"] = os.pipe()
            cmd = _build(argv, scratch=scratch, hide=hide, readonly_extra=readonly_extra, limits=limits,
                         env=env, status_fd=fds["status_w"], info_fd=fds["info_w"])
            enforcement.append("bubblewrap: allow-listed read-only file view, private /tmp, hidden paths, "
                               "new net/pid/ipc/uts namespaces")
            enforcement.append("identity: fresh unprivileged uid" if _is_root()
                               else "identity: own uid in a user namespace")
            enforcement.append("processes: RLIMIT_NPROC per sandbox")
        enforcement.append("memory: RLIMIT_AS per process")
        enforcement.append("file size: RLIMIT_FSIZE")
        enforcement.append(f"wall clock: {limits.wall_seconds:g}s, then SIGKILL of the tree")
        if cgroup:
            enforcement += cgroup.describe()
            cmd = cgroup.join_prefix() + cmd
        return _run(cmd, scratch=scratch, limits=limits, stdin_data=stdin_data, cgroup=cgroup,
                    fds=fds, sandboxed=not unsandboxed, enforcement=enforcement,
                    stdin_fd=stdin_fd, on_stdout=on_stdout, abort=abort)
    finally:
        for name in list(fds):  # each fd is closed exactly once (fd numbers get reused)
            os.close(fds.pop(name))
        if cgroup:
            cgroup.kill_all()
            cgroup.remove()


def _run(cmd: list[str], *, scratch: Path, limits: Limits, stdin_data, cgroup: _Cgroup | None,
         fds: dict[str, int], sandboxed: bool, enforcement: list[str], stdin_fd: int | None = None,
         on_stdout: Callable[[bytes], None] | None = None,
         abort: threading.Event | None = None) -> SandboxResult:
    cap = int(limits.output_mb * (1 << 20))
    out, err = _Capped(cap), _Capped(cap)
    status_buf, info_buf = bytearray(), bytearray()
    start = time.monotonic()
    deadline = start + limits.wall_seconds
    proc = subprocess.Popen(
        cmd, cwd=scratch,
        stdin=stdin_fd if stdin_fd is not None else subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
        pass_fds=[fd for name, fd in fds.items() if name.endswith("_w")],
        start_new_session=True,  # its own process group: killpg reaches what stays in it
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
    )
    for name in ("status_w", "info_w"):  # the children hold the write ends now: EOF = gone
        if name in fds:
            os.close(fds.pop(name))
    if stdin_data is not None:
        data = stdin_data.encode() if isinstance(stdin_data, str) else stdin_data

        def feed() -> None:
            try:
                proc.stdin.write(data)
                proc.stdin.close()
            except OSError:
                pass

        threading.Thread(target=feed, daemon=True).start()

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    status_file = os.fdopen(fds["status_r"], "rb", buffering=0, closefd=False)
    sel.register(status_file, selectors.EVENT_READ, status_buf)
    info_file = None
    if "info_r" in fds:
        info_file = os.fdopen(fds["info_r"], "rb", buffering=0, closefd=False)
        sel.register(info_file, selectors.EVENT_READ, info_buf)

    pidfd = None  # of the namespace's pid 1: killing it kills the whole namespace

    def read_ready(timeout: float) -> None:
        nonlocal pidfd
        for key, _ in sel.select(timeout):
            try:
                chunk = os.read(key.fileobj.fileno(), 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                sel.unregister(key.fileobj)
                if key.data is info_buf and pidfd is None:
                    pidfd = _open_ns_init(info_buf, proc.pid)
                continue
            if key.data is out and on_stdout is not None:
                on_stdout(chunk)
            elif isinstance(key.data, _Capped):
                key.data.add(chunk)
            else:
                buf = key.data
                buf += chunk  # in place: the bytearray in the selector key
                if buf is info_buf and pidfd is None and b"}" in info_buf:
                    pidfd = _open_ns_init(info_buf, proc.pid)

    timed_out = aborted = False
    exited_at = None
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if abort is not None and abort.is_set():
                aborted = True
                break
            read_ready(min(0.2, deadline - now))
            if exited_at is None and _exited_nowait(proc.pid):
                exited_at = time.monotonic()
            if exited_at is not None:
                # Pipes still open after the exit means leftovers hold them: stop waiting.
                pipes_open = any(k.data in (out, err) for k in sel.get_map().values())
                if not pipes_open or time.monotonic() - exited_at > 1:
                    break
    finally:  # also on KeyboardInterrupt or an error in the grader: nothing may survive
        _terminate(proc, pidfd, cgroup, killpg=not sandboxed or ((timed_out or aborted) and pidfd is None))
        if pidfd is not None:
            os.close(pidfd)
        pidfd = -1  # not None: read_ready must not open another one while draining
    # Whatever is still buffered in the pipes (their writers are dead now).
    drain_until = time.monotonic() + 2
    while any(True for _ in sel.get_map()) and time.monotonic() < drain_until:
        read_ready(0.05)
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    sel.close()
    for f in (proc.stdout, proc.stderr, status_file, info_file):
        if f is not None:
            f.close()
    if proc.stdin:
        try:
            proc.stdin.close()
        except OSError:
            pass
    seconds = time.monotonic() - start

    status = status_buf.decode(errors="replace").split("\n")
    ready = "ready" in status
    final = next((s for s in reversed(status) if s.startswith(("exit ", "signal ", "error "))), None)
    oom = bool(cgroup and cgroup.oom_kills())
    killed_reason = None
    if timed_out:
        returncode = -signal.SIGKILL
        killed_reason = f"wall-clock limit of {limits.wall_seconds:g}s exceeded: process tree killed"
    elif final and final.startswith("signal "):
        returncode = -int(final.split()[1])
    elif final and final.startswith("exit "):
        returncode = int(final.split()[1])
    else:
        returncode = proc.returncode
        if returncode is not None and 128 < returncode <= 128 + 64:
            returncode = -(returncode - 128)  # bwrap's 128+N for a signal
    if aborted:
        killed_reason = "stopped by the grader"
    elif final and final.startswith("error "):
        killed_reason = "sandbox launcher failed: " + final[6:]
    elif not ready and not timed_out:
        first = next((line for line in err.text().splitlines() if line.strip()), "no message")
        killed_reason = f"sandbox did not start: {first}"
    elif returncode < 0 and not timed_out:
        killed_reason = f"killed by {_signame(-returncode)}"
    if oom:
        extra = f"out of memory: the cgroup OOM killer ended a process (limit {limits.memory_mb} MB)"
        killed_reason = f"{killed_reason}; {extra}" if killed_reason else extra
    return SandboxResult(
        returncode=returncode, stdout=out.text(), stderr=err.text(), timed_out=timed_out,
        killed_reason=killed_reason, seconds=seconds, stdout_truncated=out.truncated,
        stderr_truncated=err.truncated, sandboxed=sandboxed, enforcement=enforcement,
        oom_killed=oom, peak_processes=cgroup.peak_processes() if cgroup else None,
        peak_memory_mb=cgroup.peak_memory_mb() if cgroup else None,
    )


def _terminate(proc: subprocess.Popen, pidfd: int | None, cgroup: _Cgroup | None, killpg: bool) -> None:
    """Kill everything, exited or not: the namespace (via its pid 1), the cgroup, the group."""
    if pidfd is not None:
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass
    if cgroup:
        cgroup.kill_all()
    if killpg:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # safe: proc is not reaped yet
        except OSError:
            pass
    try:
        proc.wait(timeout=10)  # bwrap exits right after it has reaped the namespace's pid 1
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
    if pidfd is not None:  # readable once pid 1 exited, i.e. once its namespace is empty
        with selectors.DefaultSelector() as sel:
            sel.register(pidfd, selectors.EVENT_READ)
            if not sel.select(10):
                log.warning("sandbox pid namespace still alive 10 s after SIGKILL")


def _open_ns_init(info: bytearray, bwrap_pid: int) -> int | None:
    """A pidfd for the namespace's pid 1 (bwrap reports its host pid on --info-fd).

    A pidfd cannot be fooled by pid reuse; the parent check makes sure the pid still
    is bwrap's child when we open it."""
    try:
        pid = int(json.loads(info.decode())["child-pid"])
        fd = os.pidfd_open(pid)
    except (ValueError, KeyError, OSError, AttributeError):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        ppid = -1
    if ppid != bwrap_pid:
        os.close(fd)
        return None
    return fd


# --------------------------------------------------------------------------- checks
_TRIAL = (
    "import socket\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
    "c = socket.create_connection(s.getsockname(), timeout=5)\n"
    "print('sandbox-ok')\n"
)


@functools.lru_cache(maxsize=1)
def check_sandbox() -> tuple[bool, str]:
    """Whether bubblewrap works here (binary present and a trial sandbox runs Python
    with loopback networking), with a one-line reason and fix if not."""
    version = _bwrap_version()
    if version is None:
        return False, "bubblewrap (bwrap) is not installed: " + INSTALL_HINT
    if version < (0, 5):
        return False, f"bubblewrap {'.'.join(map(str, version))} is too old (need 0.5+): " + INSTALL_HINT
    scratch = Path(tempfile.mkdtemp(prefix="sandbox-check-"))
    try:
        res = run_sandboxed([sys.executable, "-c", _TRIAL], scratch=scratch, hide=[],
                            limits=Limits(wall_seconds=60))
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot sandbox here"
        return False, f"bubblewrap cannot run here ({exc}); pass --no-sandbox to grade unsandboxed"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if res.returncode == 0 and "sandbox-ok" in res.stdout:
        return True, f"bubblewrap {'.'.join(map(str, version))} works"
    why = (res.killed_reason or res.stderr.strip().splitlines()[-1:] or ["no output"])
    why = why if isinstance(why, str) else why[0]
    hint = ("enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "or the AppArmor userns policy), run as root, " if not _is_root() else "")
    return False, (f"bubblewrap is installed but its trial sandbox failed ({why[:200]}); "
                   f"{hint}or pass --no-sandbox to grade unsandboxed")
