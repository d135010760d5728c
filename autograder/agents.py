"""`course train / eval / watch`: the course's algorithms from the shell, for self-learners.

    course train --list                         the algorithms and the tasks
    course train idqn --list                    idqn's settings (what --set takes)
    course train idqn gridworld --steps 48000 --out runs/idqn
    course train idqn gridworld --set lr=5e-4 --set hidden=128,128 --seed 1
    course train idqn gridworld --parts my_answers.py     your own functions in the loop
    course train idqn gridworld --resume runs/idqn --steps 96000   continue a run exactly
    course eval runs/idqn [--episodes 100 --seed 0 --sampled --on twin|single|mpe2 --json]
    course watch runs/idqn [--out runs/idqn/episode.gif --episodes 1 --seed 0 --beside random]

A run folder holds ``checkpoint.pt`` (everything needed to resume exactly),
``config.json``, ``metrics.csv`` (the learning curve), ``curve.png`` (the curve with
the task's random / no-op / heuristic lines) and ``run.json`` (the command and the
parts file it was trained with).  A mistake -- an unknown ``--set`` key or a value of
the wrong type, a missing run folder, a checkpoint of another algorithm, a damaged
checkpoint -- stops the command with a message and exit status 2 before it writes
anything.  The library behind it: :mod:`course_lib.learning`, :mod:`course_lib.evaluation`,
:mod:`course_lib.render`.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import inspect
import json
import re
import sys
import time
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["add_commands", "parse_setting", "UsageError"]

REFERENCE_EPISODES = 100  # episodes behind each reference line of curve.png
RUN_FILES = ("checkpoint.pt", "config.json", "metrics.csv", "curve.png", "run.json")


class UsageError(Exception):
    """A mistake in the command line or its files: reported with exit status 2."""


def _usage_errors(command):
    """Run ``command(args)``; a :class:`UsageError` or an unusable checkpoint exits 2 with its message."""
    def run(args) -> int:
        from course_lib.learning import CheckpointError

        try:
            return command(args)
        except (UsageError, CheckpointError) as exc:
            print(f"course {args.command}: error: {exc}", file=sys.stderr)
            return 2
    return run


# ------------------------------------------------------------------- --set values
def _field_comments(config_cls: type) -> dict[str, str]:
    """``{field: its comment}`` from the Config's source (``name: type = default  # comment``)."""
    try:
        source = inspect.getsource(config_cls)
    except (OSError, TypeError):
        return {}
    found = (re.match(r"\s+(\w+)\s*:[^#]*#\s*(.*)$", line) for line in source.splitlines())
    return {m.group(1): m.group(2).strip() for m in found if m}


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _convert(text: str, hint: Any, default: Any) -> Any:
    """``text`` as a value of type ``hint``; ``ValueError`` when it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(text, option, default)
            except ValueError:
                continue
        raise ValueError(text)
    if origin is typing.Literal:
        for option in args:
            if str(option) == text.strip():
                return option
        raise ValueError(text)
    if hint is bool:
        word = text.strip().lower()
        if word in ("true", "1", "yes", "on"):
            return True
        if word in ("false", "0", "no", "off"):
            return False
        raise ValueError(text)
    if hint is int:
        number = float(text.replace("_", ""))
        if not number.is_integer():
            raise ValueError(text)
        return int(number)
    if hint is float:
        return float(text)
    if hint is str:
        return text
    if hint in (tuple, list) or origin in (tuple, list):
        inner = text.strip().strip("()[]")
        items = [s.strip() for s in inner.split(",") if s.strip()]
        if args and args[-1] is not Ellipsis:
            kinds = list(args)
        else:
            kinds = [args[0] if args else (type(default[0]) if default else None)] * len(items)
        if len(kinds) != len(items):
            raise ValueError(text)
        values = [_convert(s, k, None) if k in (int, float, bool, str) else ast.literal_eval(s)
                  for s, k in zip(items, kinds)]
        return list(values) if (hint is list or origin is list) else tuple(values)
    try:  # anything else: a Python literal
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(text) from None


def parse_setting(config_cls: type, setting: str, algo: str = "this algorithm") -> tuple[str, Any]:
    """``"key=value"`` as ``(key, value)``, the value type-checked against ``config_cls``'s field.

    Raises :class:`UsageError` naming the valid keys (unknown key) or the expected type.
    """
    key, sep, text = setting.partition("=")
    key = key.strip()
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    if not sep or not key:
        raise UsageError(f"--set takes key=value, got {setting!r}")
    if key not in fields:
        raise UsageError(f"{algo} has no setting {key!r}; its settings are: {', '.join(fields)} "
                         f"(course train {algo} --list describes them)")
    hint = typing.get_type_hints(config_cls)[key]
    default = _default(fields[key])
    try:
        return key, _convert(text, hint, default)
    except ValueError:
        raise UsageError(f"--set {key}={text}: {key} is {_type_name(hint)} (default {default!r}), "
                         f"and {text!r} is not one") from None


def _configure(learner_cls: type, base: Any, args) -> Any:
    """``base`` with ``--set`` values, then ``--seed`` and ``--steps``."""
    changes = dict(parse_setting(learner_cls.Config, s, learner_cls.name) for s in args.set or [])
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.steps is not None:
        changes["total_steps"] = args.steps
    return dataclasses.replace(base, **changes)


# --------------------------------------------------------------------------- parts
def _parts_module(path: "str | Path", parts_cls: type, algo: str):
    """The student's file, run as a module; it must define at least one of the parts."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--parts {path}: no such file")
    name = "course_parts_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the student's file: say what failed
        del sys.modules[name]
        raise UsageError(f"--parts {path}: running it failed ({type(exc).__name__}: {exc})") from None
    names = [f.name for f in dataclasses.fields(parts_cls)]
    if not any(callable(getattr(module, n, None)) for n in names):
        raise UsageError(f"--parts {path} defines none of {algo}'s parts ({', '.join(names)})")
    return module


def _describe_parts(module: Any, parts_cls: type) -> str:
    names = [f.name for f in dataclasses.fields(parts_cls)]
    yours = [n for n in names if callable(getattr(module, n, None))]
    rest = [n for n in names if n not in yours]
    return f"your {', '.join(yours)}" + (f"; the course_lib references for {', '.join(rest)}" if rest else "")


def _run_record(folder: Path) -> dict:
    path = folder / "run.json"
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}


def _checkpoint(folder: str, algo: str | None = None):
    """The run saved in ``folder`` (of ``algo``, if given), with the reference parts."""
    from course_lib import learning

    if not Path(folder).is_dir():
        raise UsageError(f"no run folder {folder!r} (train one with `course train ALGO TASK --out {folder}`)")
    return learning.load(folder, algo=algo)  # a missing, damaged or foreign checkpoint says so here


def _load_run(folder: str, parts: str | None = None):
    """The run saved in ``folder``, with the parts of the file ``parts`` or else those it
    was trained with (its run.json)."""
    from course_lib import learning

    run = _checkpoint(folder)
    chosen = parts or _run_record(Path(folder)).get("parts")
    if chosen and not parts and not Path(chosen).is_file():
        print(f"note: {chosen} (the parts this run was trained with) is gone; using the references", file=sys.stderr)
    elif chosen:
        learner = run.learner
        learner.parts = learning.make_parts(learner.Parts, _parts_module(chosen, learner.Parts, learner.name))
        learner.bind_parts()
    return run


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else None


# ----------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from course_lib import algos, learning
    from course_lib.tasks import task as make_task

    if args.list:
        print(_listing(args.algo))
        return 0
    if not args.algo or not args.task:
        raise UsageError("say what to train: course train ALGO TASK (course train --list shows both)")
    try:
        learner_cls = algos.learner(args.algo)
        task = make_task(args.task)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    previous = _checkpoint(args.resume, algo=learner_cls.name) if args.resume else None  # exits 2 when unusable
    config = _configure(learner_cls, previous.config if previous else learner_cls.Config(), args)
    if previous is not None:  # what learning.train would refuse, refused before anything is written
        if previous.task != task:
            raise UsageError(f"{args.resume} was trained on {previous.task}, not {task}")
        diff = learning._differences(previous.config, config, ignore=("total_steps",))
        if diff:
            raise UsageError(f"{args.resume} was trained with other settings: " + "; ".join(diff))
    parts_file = args.parts or (_run_record(Path(args.resume)).get("parts") if args.resume else None)
    module = _parts_module(parts_file, learner_cls.Parts, learner_cls.name) if parts_file else None
    out = Path(args.out or args.resume or f"runs/{learner_cls.name}_{task.name}_seed{config.seed}")
    if (out / learning.CHECKPOINT).exists() and not (args.resume and Path(args.resume).resolve() == out.resolve()):
        raise UsageError(f"{out} already holds a run; continue it with --resume {out}, or pick another --out")
    if module is not None:
        print(f"parts: {_describe_parts(module, learner_cls.Parts)}", file=sys.stderr)
    options = {k: v for k, v in vars(args).items() if k not in ("func", "command", "list", "workspace")}
    record = {"algo": learner_cls.name, "task": task.spec(), "options": options,
              "parts": str(Path(parts_file).resolve()) if parts_file else None}
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "run.json", record)  # now, so that a resumed run finds its parts after a Ctrl-C
    start = time.perf_counter()
    try:
        run = learning.train(learner_cls, task, config, module, resume=args.resume, out=out,
                             save_every=args.save_every, progress=not args.no_progress)
    except BaseException as exc:
        if not (out / learning.CHECKPOINT).exists():  # nothing saved: leave nothing behind
            (out / "run.json").unlink(missing_ok=True)
            if created:
                out.rmdir()
        if isinstance(exc, KeyboardInterrupt) and (out / learning.CHECKPOINT).exists():
            print(f"stopped; continue with: course train {learner_cls.name} {args.task} --resume {out}",
                  file=sys.stderr)
            return 130
        raise
    seconds = time.perf_counter() - start
    references = _reference_lines(run)
    _plot_curve(run, references, out / "curve.png")
    _write_json(out / "run.json", {**record, "seconds": round(seconds, 1), "references": references})
    last = run.curve.iloc[-1] if len(run.curve) else {}
    shown = ", ".join(f"{k} {last[k]:.3g}" for k in ("train_return", "eval_return") if k in last and last[k] == last[k])
    print(f"{run.algo} on {task}: {run.learner.step:,} steps in {seconds:.0f} s" + (f"; last row: {shown}" if shown else ""))
    print(f"run folder {out}: {', '.join(RUN_FILES)}")
    print(f"next: course eval {out}   |   course watch {out}")
    return 0


def _listing(algo: str | None) -> str:
    """The algorithms and tasks, or one algorithm's settings."""
    from course_lib import algos
    from course_lib.tasks import describe, task_names

    if algo:
        try:
            cls = algos.learner(algo)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        comments = _field_comments(cls.Config)
        rows = [f"  {f.name:16s} {_default(f)!r:>12}   {comments.get(f.name, '')}" for f in dataclasses.fields(cls.Config)]
        return f"{cls.name}: {cls.description}\nsettings (--set key=value; default, meaning):\n" + "\n".join(rows)
    lines, width = ["algorithms (course train ALGO TASK):"], max(map(len, algos.LEARNERS))
    for name in sorted(algos.LEARNERS):
        try:
            lines.append(f"  {name:{width}s}  {algos.learner(name).description}")
        except Exception as exc:  # noqa: BLE001 - one broken module must not hide the others
            lines.append(f"  {name:{width}s}  (cannot be imported: {type(exc).__name__}: {exc})")
    names = task_names()
    width = max(map(len, names))
    lines += ["tasks (course train ALGO TASK):", *(f"  {name:{width}s}  {describe(name)}" for name in names)]
    return "\n".join(lines)


def _reference_lines(run) -> dict[str, float]:
    """Mean team return (the run's team) of each reference policy the task has."""
    from course_lib.evaluation import REFERENCE_KINDS, evaluate

    team, lines = run.policy.team, {}
    for kind in REFERENCE_KINDS:
        try:
            ev = evaluate(_reference(run, kind), run.task, episodes=REFERENCE_EPISODES, seed=run.config.seed)
        except ValueError:  # e.g. no no-op action, no heuristic
            continue
        lines[kind] = float(ev.returns[:, team].sum(axis=1).mean())
    return lines


def _reference(run, kind: str):
    """The reference ``kind`` for the run's team, against the run's own opponent, if any."""
    from course_lib.evaluation import reference_for

    return reference_for(kind, run.policy, run.task, seed=run.config.seed)


def _plot_curve(run, references: dict[str, float], path: Path) -> None:
    from matplotlib.figure import Figure

    from course_lib.learning import _atomic_write

    curve = run.curve
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    if len(curve):
        ax.plot(curve["step"], curve["train_return"], label="training episodes", color="C0")
        evals = curve.dropna(subset=["eval_return"])
        if len(evals):
            ax.plot(evals["step"], evals["eval_return"], "o-", label="evaluation", color="C1")
    for k, (kind, value) in enumerate(references.items()):
        ax.axhline(value, ls="--", lw=1, color=f"C{k + 2}", label=f"{kind} ({value:.2f})")
    ax.set(xlabel="environment steps", ylabel="team return", title=f"{run.algo} on {run.task}, seed {run.config.seed}")
    ax.legend(loc="best", fontsize=8)
    _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _write_json(path: Path, data: dict) -> None:
    from course_lib.learning import _atomic_write

    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


# ------------------------------------------------------------------------ eval
def cmd_eval(args) -> int:
    from course_lib.evaluation import REFERENCE_KINDS, evaluate

    run = _load_run(args.run, args.parts)
    if args.on == "mpe2" and not run.task.is_mpe:
        raise UsageError(f"--on mpe2 is for the MPE tasks; {run.task} runs --on twin or --on single")
    team = run.policy.team
    options = dict(episodes=args.episodes, seed=args.seed, on=args.on)
    rows = {f"{run.algo} (this run)": evaluate(run.policy, run.task, greedy=not args.sampled, **options)}
    for kind in REFERENCE_KINDS:
        try:
            rows[kind] = evaluate(_reference(run, kind), run.task, **options)
        except ValueError:
            continue
    table = {}
    for name, ev in rows.items():
        r = ev.returns[:, team].sum(axis=1)
        table[name] = {"mean": float(r.mean()), "sem": float(r.std(ddof=1) / len(r) ** 0.5) if len(r) > 1 else None,
                       "success": ev.success, "episodes": ev.episodes,
                       **{k: float(v.mean()) for k, v in ev.metrics.items() if k != "success"}}
    head = {"run": str(args.run), "algo": run.algo, "task": str(run.task), "step": run.learner.step,
            "episodes": args.episodes, "seed": args.seed, "on": args.on, "greedy": not args.sampled}
    if args.json:
        print(json.dumps({**head, "results": table}, indent=2))
        return 0
    print(f"{run.algo} on {run.task} after {run.learner.step:,} steps: {args.episodes} episodes on {args.on}, "
          f"seeds from {args.seed}, {'greedy' if not args.sampled else 'sampled'} actions; team return, mean ± s.e.m.")
    width = max(len(n) for n in table)
    for name, row in table.items():
        sem = f" ± {row['sem']:.2f}" if row["sem"] is not None else ""
        success = f"   success {row['success']:.0%}" if row["success"] is not None else ""
        print(f"  {name:{width}s}  {row['mean']:9.2f}{sem}{success}")
    return 0


# ----------------------------------------------------------------------- watch
def cmd_watch(args) -> int:
    from course_lib import render

    out = Path(args.out) if args.out else Path(args.run) / "episode.gif"
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise UsageError(f"--out {out}: write a .gif or an .mp4")
    if out.suffix.lower() == ".mp4":
        try:
            render._ffmpeg()
        except RuntimeError as exc:
            raise UsageError(str(exc)) from None
    run = _load_run(args.run, args.parts)
    if args.on == "mpe2" and not run.task.is_mpe:
        raise UsageError(f"--on mpe2 is for the MPE tasks; {run.task} plays --on single or --on twin")
    start = time.perf_counter()
    path = render.watch(run.policy, run.task, out=out, seed=args.seed, episodes=args.episodes, fps=args.fps,
                        beside=args.beside, labels=(f"{run.algo} (this run)", f"{args.beside}"),
                        greedy=not args.sampled, on=args.on)
    print(f"{path} ({args.episodes} episode(s) of {run.algo} on {run.task}"
          + (f" beside {args.beside}" if args.beside else "") + f", {time.perf_counter() - start:.1f} s)")
    return 0


# ---------------------------------------------------------------------- parsers
def add_commands(sub) -> None:
    """Add ``train``, ``eval`` and ``watch`` to the ``course`` command's subparsers."""
    p = sub.add_parser("train", help="train an algorithm on a task; writes a run folder",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("algo", nargs="?", help="algorithm (course train --list)")
    p.add_argument("task", nargs="?", help="task (course train --list)")
    p.add_argument("--list", action="store_true", help="list the algorithms and tasks (with ALGO: its settings)")
    p.add_argument("--steps", type=int, help="total environment steps (the Config's total_steps)")
    p.add_argument("--seed", type=int, help="the Config's seed")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any Config setting; repeat for more")
    p.add_argument("--out", help="run folder (default runs/ALGO_TASK_seedSEED; with --resume: that folder)")
    p.add_argument("--save-every", type=int, help="also save a checkpoint every this many steps")
    p.add_argument("--resume", metavar="RUN", help="continue this run folder exactly (same settings; --steps "
                   "may grow, though schedules tied to total_steps then stretch)")
    p.add_argument("--parts", metavar="FILE.py", help="train with the functions this file defines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_usage_errors(cmd_train))

    p = sub.add_parser("eval", help="evaluate a trained run beside the reference policies")
    p.add_argument("run", help="run folder")
    p.add_argument("--episodes", type=int, default=100, help="episodes (default 100)")
    p.add_argument("--seed", type=int, default=0, help="first episode's reset seed (default 0)")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--greedy", dest="sampled", action="store_false", help="greedy actions (default)")
    act.add_argument("--sampled", dest="sampled", action="store_true", help="sample the policy's actions")
    p.set_defaults(sampled=False)
    p.add_argument("--on", choices=("twin", "single", "mpe2"), default="twin",
                   help="batched twin (default), the PettingZoo env, or mpe2 itself (MPE tasks)")
    p.add_argument("--parts", metavar="FILE.py", help="the parts to load the run with (default: its own)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_usage_errors(cmd_eval))

    p = sub.add_parser("watch", help="animate episodes of a trained run (GIF or MP4)")
    p.add_argument("run", help="run folder")
    p.add_argument("--out", help="a .gif or .mp4 file (default RUN/episode.gif; .mp4 needs ffmpeg)")
    p.add_argument("--episodes", type=int, default=1, help="episodes (default 1)")
    p.add_argument("--seed", type=int, default=0, help="first episode's reset seed (default 0)")
    p.add_argument("--beside", choices=("random", "noop", "heuristic"), help="play a reference policy beside it")
    p.add_argument("--fps", type=float, help="frames per second (default 10 on MPE, 4 elsewhere)")
    p.add_argument("--sampled", action="store_true", help="sample the policy's actions (default greedy)")
    p.add_argument("--on", choices=("single", "twin", "mpe2"), default="single",
                   help="the PettingZoo env (default; mpe2 on MPE) or env 0 of the twin")
    p.add_argument("--parts", metavar="FILE.py", help="the parts to load the run with (default: its own)")
    p.set_defaults(func=_usage_errors(cmd_watch))
