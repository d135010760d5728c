"""Advanced features of notebooks/06_advanced, measured: GNN vs all-to-all attention at
3, 10 and 30 agents, DRQN vs a feed-forward Q-network on a memory task, and DQN without
and with ICM / RND bonuses on a sparse-reward grid.

    .venv/bin/python bench/advanced.py             # the notebook's full budget (run by `make bench`)
    .venv/bin/python bench/advanced.py --quick     # a smoke run (its numbers mean nothing)

Writes bench/results/advanced.json and the markdown table bench/README_advanced.md
(pasted into bench/README.md). The runs are :mod:`course_lib.advanced.experiments`, the
same functions and Configs the notebook uses (here with the reference parts), so the table
here is the notebook's table.
Times are given twice: process CPU seconds (one torch thread; what a quiet machine shows
as wall time) and wall seconds, with the load average, because the machine may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dataclasses  # noqa: E402

import torch  # noqa: E402

from course_lib.advanced import curiosity, drqn, experiments, scaling  # noqa: E402
from course_lib.utils import machine_info  # noqa: E402

# The notebook's budgets (solutions/06_advanced, setup cell: full=..., quick=...), with the reference parts.
FULL = {"scaling": scaling.Config(total_steps=19_200), "scaling_sizes": [3, 10, 30], "scaling_seeds": 2,
        "timing_sizes": [3, 10, 30, 100, 300],
        "memory": drqn.Config(total_steps=24_000), "drqn_seeds": 3,
        "exploration": curiosity.Config(total_steps=16_000), "explore_seeds": 5}
QUICK = {"scaling": scaling.Config(total_steps=1_280), "scaling_sizes": [3, 10, 30], "scaling_seeds": 1,
         "timing_sizes": [3, 10],
         "memory": drqn.Config(total_steps=1_600), "drqn_seeds": 1,
         "exploration": curiosity.Config(total_steps=640), "explore_seeds": 1}


def _loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else round(float(value), 6)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def run(budget: dict[str, Any]) -> dict[str, Any]:
    clock = {"cpu": time.process_time(), "wall": time.perf_counter(), "load_before": _loadavg()}
    parts: dict[str, Any] = {}
    t = (time.process_time(), time.perf_counter())
    _, scaling_rows, _ = experiments.run_scaling(budget["scaling"], budget["scaling_sizes"],
                                                 seeds=range(budget["scaling_seeds"]), progress=False)
    timing = scaling.timing_sweep(budget["timing_sizes"])
    parts["scaling"] = {"cpu_s": time.process_time() - t[0], "wall_s": time.perf_counter() - t[1]}
    t = (time.process_time(), time.perf_counter())
    _, memory_rows = experiments.run_memory(budget["memory"], range(budget["drqn_seeds"]), progress=False)
    parts["memory"] = {"cpu_s": time.process_time() - t[0], "wall_s": time.perf_counter() - t[1]}
    t = (time.process_time(), time.perf_counter())
    _, explore_rows = experiments.run_exploration(budget["exploration"], range(budget["explore_seeds"]),
                                                  progress=False)
    parts["exploration"] = {"cpu_s": time.process_time() - t[0], "wall_s": time.perf_counter() - t[1]}
    references = experiments.reference_rows()
    rows = scaling_rows + memory_rows + explore_rows + references
    table = experiments.comparison_table(rows)
    return {
        "table": table.to_dict(orient="records"),
        "runs": rows,
        "timing_sweep": timing.to_dict(orient="records"),
        "parts": parts,
        "cpu_s": time.process_time() - clock["cpu"],
        "wall_s": time.perf_counter() - clock["wall"],
        "loadavg_before": clock["load_before"],
        "loadavg_after": _loadavg(),
    }


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    return f"{x:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    b = result["settings"]
    lines = [
        "Advanced features, measured (`bench/advanced.py`, results in `bench/results/advanced.json`; the runs of "
        "notebook 06 with its full budget). Success: T-maze, every agent takes the cued arm; goal grid, the greedy "
        "task policy brings both agents to the goal; neighbourhood majority, every agent of an instance is right. "
        "Return: T-maze episode return; goal grid, share of agents at the goal; majority, share of agents right. "
        "Time: training seconds per 1,000 env steps, process CPU (one thread) and wall clock.",
        "",
        f"Seeds: scaling {b['scaling_seeds']} ({b['scaling']['total_steps']:,} instances), memory {b['drqn_seeds']} "
        f"({b['memory']['total_steps']:,} env steps), exploration {b['explore_seeds']} "
        f"({b['exploration']['total_steps']:,} env steps).",
        "",
        "| task | method | seeds | success | return (± sd) | parameters | CPU s / 1k steps | wall s / 1k steps "
        "| first goal (env steps) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["table"]:
        ret = _fmt(r["return"]) + (f" ± {r['return sd']:.3f}" if r.get("return sd") is not None else "")
        seeds = "–" if r.get("seeds") is None else str(int(r["seeds"]))
        lines.append(f"| {r['task']} | {r['method']} | {seeds} | {_fmt(r['success'])} | {ret} | "
                     f"{_fmt(r['parameters'])} | {_fmt(r.get('cpu s / 1k steps'))} | {_fmt(r.get('wall s / 1k steps'))} | "
                     f"{_fmt(r.get('first goal (env steps)'), 0)} |")
    lines += ["", "Time of one acting step (64 instances of neighbourhood majority, untrained policies; the GNN "
              "rebuilds its k-nearest graph every step), process CPU ms:", "",
              "| agents | GNN | of which the graph | all-to-all attention | no communication | scores per round: GNN / attention |",
              "|---:|---:|---:|---:|---:|---:|"]
    sweep: dict[int, dict[str, dict]] = {}
    for r in result["timing_sweep"]:
        sweep.setdefault(r["num_agents"], {})[r["comm"]] = r
    for n, by in sorted(sweep.items()):
        lines.append(f"| {n} | {by['gnn']['act_cpu_ms']:.2f} | {by['gnn']['graph_cpu_ms']:.2f} | "
                     f"{by['attention']['act_cpu_ms']:.2f} | {by['none']['act_cpu_ms']:.2f} | "
                     f"{by['gnn']['messages']:,} / {by['attention']['messages']:,} |")
    load = result["loadavg_before"]
    lines += ["", f"Whole bench: {result['cpu_s']:.0f} s CPU, {result['wall_s']:.0f} s wall on "
              f"{result['machine']['processor']} ({result['machine']['cpus']} cores, one torch thread; "
              f"load average {load[0] if load else float('nan'):.1f} at the start)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the notebook's quick budget (a smoke run)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "advanced.json"))
    ap.add_argument("--table", default=str(ROOT / "bench" / "README_advanced.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    budget = QUICK if args.quick else FULL
    settings = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in budget.items()}
    result: dict[str, Any] = {"benchmark": "advanced", "settings": {**settings, "quick": args.quick}}
    result.update(run(budget))
    result["machine"] = machine_info()
    result = _plain(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.table).write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {args.out} and {args.table}: {result['cpu_s']:.0f} s CPU, {result['wall_s']:.0f} s wall")
    return result


if __name__ == "__main__":
    main()
