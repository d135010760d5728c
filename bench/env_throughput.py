"""Environment throughput: joint steps per second of every single environment and
of its batched twin at batch 1, 64 and 1024 -- and, in the same run, course_lib's
batched simple_spread against mpe2's simple_spread_v3 (target: >= 30x at batch 64).

    .venv/bin/python bench/env_throughput.py            # (run by `make bench`)
    .venv/bin/python bench/env_throughput.py --min-time 0.2 --tasks simple_spread_v3

Writes bench/results/env_throughput.json and the markdown table
bench/README_env_table.md (pasted into README).  Uniformly random discrete
actions, drawn before timing; episodes reset as they end (the single env is
reset by the loop, the twins reset themselves).  One process, one core.
Batched numbers are environment steps per second: ``num_envs * batched steps / s``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_lib.envs.mpe import mpe_registry  # noqa: E402

BATCHES = (1, 64, 1024)
N_ACTION_SETS = 32  # pre-drawn random action sets, cycled
TARGET_SPREAD_SPEEDUP_B64 = 30.0


def all_tasks() -> dict[str, tuple[Callable, Callable, str]]:
    """``{task: (make_single, make_batched, single_kind)}``: course_lib's registry
    (when the package provides one) plus the MPE pair (single = mpe2's env)."""
    tasks: dict[str, tuple[Callable, Callable, str]] = {}
    try:
        from course_lib.envs import registry  # lands with the other environments
    except ImportError:
        registry = None
    if registry is not None:
        for name, (single, batched) in registry().items():
            tasks[name] = (single, batched, "course_lib ParallelEnv")
    for name, (single, batched) in mpe_registry().items():
        tasks[name] = (single, batched, "mpe2 parallel_env")
    return tasks


def _timed(step: Callable[[], Any], min_time: float, chunk: int = 8) -> float:
    """Calls of ``step`` per second, over at least ``min_time`` seconds (after a warm-up)."""
    for _ in range(2):
        step()
    n = 0
    t0 = time.perf_counter()
    while True:
        for _ in range(chunk):
            step()
        n += chunk
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            return n / elapsed
        if elapsed < min_time / 8:
            chunk *= 2


def single_steps_per_s(make_single: Callable, min_time: float, seed: int = 0) -> float:
    env = make_single()
    rng = np.random.default_rng(seed)
    agents = list(env.possible_agents)
    n = {a: int(env.action_space(a).n) for a in agents}
    table = [{a: int(rng.integers(n[a])) for a in agents} for _ in range(N_ACTION_SETS)]
    env.reset(seed=seed)
    t = [0]

    def step() -> None:
        if not env.agents:
            env.reset()
        acts = table[t[0] % N_ACTION_SETS]
        env.step({a: acts[a] for a in env.agents})
        t[0] += 1

    return _timed(step, min_time)


def batched_steps_per_s(make_batched: Callable, num_envs: int, min_time: float, seed: int = 0) -> float:
    """Environment steps per second (``num_envs`` per batched step)."""
    env = make_batched(num_envs)
    rng = np.random.default_rng(seed)
    agents = list(getattr(env, "possible_agents", None) or env.agent_names)
    n = np.array([int(env.action_spaces[a].n) for a in agents])
    table = [(rng.random((num_envs, len(agents))) * n).astype(np.int64) for _ in range(N_ACTION_SETS)]
    env.reset(seed=seed)
    t = [0]

    def step() -> None:
        env.step(table[t[0] % N_ACTION_SETS])
        t[0] += 1

    return num_envs * _timed(step, min_time)


def fmt(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}"


def markdown_table(results: dict[str, dict[str, Any]], headline: dict[str, Any]) -> str:
    lines = [
        "| task | single env (steps/s) | batched ×1 | batched ×64 | batched ×1024 | ×64 vs single |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        b = r["batched_steps_per_s"]
        lines.append(
            f"| `{name}` | {fmt(r['single_steps_per_s'])} ({r['single_kind']}) | {fmt(b.get('1'))} | "
            f"{fmt(b.get('64'))} | {fmt(b.get('1024'))} | {r['speedup_b64']:.1f}× |"
        )
    lines += [
        "",
        f"Environment steps per second (batched: num_envs × batched steps/s), random actions, "
        f"one process on {headline['cpu']} (1-min load average {headline['load']} at the start, "
        f"on {os.cpu_count()} cores). "
        f"Head to head in the same run: course_lib's `SimpleSpreadVec` at batch 64 runs "
        f"{fmt(headline['spread_vec_steps_per_s_b64'])} env steps/s against mpe2 `simple_spread_v3`'s "
        f"{fmt(headline['spread_mpe2_steps_per_s'])}: **{headline['spread_speedup_b64']:.0f}×** "
        f"(target ≥ {TARGET_SPREAD_SPEEDUP_B64:.0f}×). Reproduce: `make bench` "
        f"(`bench/env_throughput.py`, results in `bench/results/env_throughput.json`).",
    ]
    return "\n".join(lines) + "\n"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-time", type=float, default=0.4, help="seconds per measurement")
    ap.add_argument("--headline-time", type=float, default=1.0,
                    help="seconds per round of the mpe2-vs-twin simple_spread comparison")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of that comparison (median)")
    ap.add_argument("--tasks", nargs="*", default=None, help="only these tasks (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "env_throughput.json"))
    ap.add_argument("--table", default=str(ROOT / "bench" / "README_env_table.md"))
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews timings

    tasks = all_tasks()
    if args.tasks:
        tasks = {k: v for k, v in tasks.items() if k in args.tasks}
    results: dict[str, dict[str, Any]] = {}
    for name, (make_single, make_batched, kind) in tasks.items():
        t0 = time.perf_counter()
        single = single_steps_per_s(make_single, args.min_time)
        batched = {str(b): batched_steps_per_s(make_batched, b, args.min_time) for b in BATCHES}
        results[name] = {
            "single_kind": kind,
            "single_steps_per_s": single,
            "batched_steps_per_s": batched,
            "speedup_b64": batched["64"] / single,
        }
        print(f"{name:28s} single {single:>11,.0f}  " + "  ".join(
            f"x{b} {v:>12,.0f}" for b, v in batched.items()) + f"   ({time.perf_counter() - t0:.1f}s)", flush=True)

    # head to head, alternating rounds so both see the same machine state
    single_spread, vec_spread = mpe_registry()["simple_spread_v3"]
    mpe2_runs, vec_runs = [], []
    for _ in range(args.rounds):
        mpe2_runs.append(single_steps_per_s(single_spread, args.headline_time))
        vec_runs.append(batched_steps_per_s(vec_spread, 64, args.headline_time))
    if "simple_spread_v3" in results:
        spread_b = dict(results["simple_spread_v3"]["batched_steps_per_s"])
    else:
        spread_b = {str(b): batched_steps_per_s(vec_spread, b, args.min_time) for b in BATCHES}
    spread_b["64"] = float(np.median(vec_runs))
    headline = {
        "spread_mpe2_steps_per_s": float(np.median(mpe2_runs)),
        "spread_vec_steps_per_s_b1": spread_b["1"],
        "spread_vec_steps_per_s_b64": spread_b["64"],
        "spread_vec_steps_per_s_b1024": spread_b["1024"],
        "spread_mpe2_rounds": mpe2_runs,
        "spread_vec_b64_rounds": vec_runs,
        "cpu": cpu_name(),
    }
    headline["spread_speedup_b64"] = headline["spread_vec_steps_per_s_b64"] / headline["spread_mpe2_steps_per_s"]
    if "simple_spread_v3" in results:  # one set of spread numbers in the table: the head-to-head medians
        results["simple_spread_v3"].update(
            single_steps_per_s=headline["spread_mpe2_steps_per_s"],
            batched_steps_per_s=spread_b,
            speedup_b64=headline["spread_speedup_b64"],
        )
    headline["load"] = f"{load_at_start[0]:.1f}"
    print(f"simple_spread: mpe2 {headline['spread_mpe2_steps_per_s']:,.0f} steps/s, twin x64 "
          f"{headline['spread_vec_steps_per_s_b64']:,.0f} env steps/s -> {headline['spread_speedup_b64']:.1f}x "
          f"(target {TARGET_SPREAD_SPEEDUP_B64:.0f}x)")

    out = {
        "benchmark": "env_throughput",
        "unit": "environment steps per second (joint: one step of every agent); "
                "batched = num_envs * batched steps per second",
        "batches": list(BATCHES),
        **{k: v for k, v in headline.items() if k not in ("cpu", "load")},
        "target_spread_speedup_b64": TARGET_SPREAD_SPEEDUP_B64,
        "meets_target": headline["spread_speedup_b64"] >= TARGET_SPREAD_SPEEDUP_B64,
        "tasks": results,
        "machine": {
            "cpu": headline["cpu"],
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "loadavg_at_start": load_at_start,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {"min_time_s": args.min_time, "headline_time_s": args.headline_time,
                     "rounds": args.rounds, "actions": "uniform random discrete, pre-drawn"},
        "elapsed_s": None,
    }
    out["elapsed_s"] = round(time.perf_counter() - start, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    Path(args.table).write_text(markdown_table(results, headline))
    print(f"wrote {args.out} and {args.table} in {out['elapsed_s']}s")
    return out


if __name__ == "__main__":
    main()
