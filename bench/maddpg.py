"""MADDPG against IDDPG on mpe2's simple_spread_v3 at 200k environment steps, and MADDPG
predators against a scripted prey on simple_tag_v3.

    .venv/bin/python bench/maddpg.py            # (run by `make bench`): 200k transitions, seeds 0-2
    .venv/bin/python bench/maddpg.py --quick    # a smoke run of every step (seconds)

Writes bench/results/maddpg.json and the markdown tables bench/README_maddpg.md
(pasted into README).

* Training: :func:`course_lib.algos.maddpg.train` with the reference parts and the default
  :class:`~course_lib.algos.maddpg.Config` (``critic="centralised"`` for MADDPG,
  ``"independent"`` for IDDPG) on the batched twin of simple_spread_v3, ``--steps``
  environment transitions per run, seeds ``0 .. --seeds - 1``.  The learning curves are
  the greedy actors' team return on 100 fixed episodes (mpe2's ``reset(seed=10000 + k)``,
  played on the twin, which replays mpe2 exactly) every ``--eval-every`` transitions.
* Final evaluation on mpe2 itself (:func:`course_lib.evaluation.evaluate`, ``on="mpe2"``):
  the greedy actors of every run, and the random, no-op and heuristic reference policies,
  on mpe2's ``simple_spread_v3`` episodes
  ``reset(seed=0 .. --mpe2-episodes - 1)``; team return = rewards summed over the three
  agents and the 25 steps (the convention of README's environment table).
* simple_tag_v3: MADDPG trains the three predators against the scripted fleeing prey of
  ``course_lib.envs.mpe_policies``; predators' team return on mpe2, beside random,
  no-op and scripted predators chasing the same prey.
* Throughput: ``steps_per_s`` is environment transitions per second of **process CPU
  time** of the whole ``maddpg.train`` call (acting, learning and the periodic
  evaluations); ``steps_per_s_wall`` the same on the wall clock, which depends on the
  machine's load (``loadavg`` is recorded).

One process, one torch thread.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from course_lib import papers  # noqa: E402
from course_lib.algos import maddpg  # noqa: E402
from course_lib.evaluation import evaluate  # noqa: E402

METHODS = {"MADDPG": "centralised", "IDDPG": "independent"}
KINDS = ("random", "noop", "heuristic")  # the reference policies
TARGET_MARGIN = 15.0  # the target: MADDPG at least this far above no-op at 200k steps
SEED_PROJECT_MADDPG_200K = papers.SEED_PROJECT_SPREAD_200K["MADDPG"]


def _mean_sem(xs) -> tuple[float, float]:
    xs = np.asarray(xs, dtype=float)
    sem = float(xs.std(ddof=1) / np.sqrt(len(xs))) if len(xs) > 1 else float("nan")
    return float(xs.mean()), sem


def spread(args, config: maddpg.Config) -> dict[str, Any]:
    runs, curves = [], []
    for method, critic in METHODS.items():
        for seed in range(args.seeds):
            cfg = dataclasses.replace(config, seed=seed, critic=critic, total_steps=args.steps,
                                      eval_every=args.eval_every)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            run = maddpg.train("simple_spread_v3", cfg, progress=False)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            ev = evaluate(run.policy, "simple_spread_v3", episodes=args.mpe2_episodes, seed=0, on="mpe2")
            steps = int(run.curve.step.iloc[-1])
            runs.append({"method": method, "seed": seed, "steps": steps, "mpe2_return": ev.mean,
                         "mpe2_sem": ev.sem, "twin_eval_return": float(run.curve.eval_return.iloc[-1]),
                         "cpu_s": cpu, "wall_s": wall, "steps_per_s": steps / cpu, "steps_per_s_wall": steps / wall})
            curves.append(run.curve[["step", "eval_return"]].assign(method=method, seed=seed))
            print(f"  {method} seed {seed}: mpe2 {ev.mean:.2f} ± {ev.sem:.2f} ({cpu:.0f} s CPU, {wall:.0f} s wall)",
                  flush=True)
    refs_mpe2 = {k: evaluate(k, "simple_spread_v3", episodes=args.mpe2_episodes, seed=0, on="mpe2") for k in KINDS}
    refs_eval = {k: evaluate(k, "simple_spread_v3", episodes=config.eval_episodes, seed=config.eval_seed)
                 for k in KINDS}
    import pandas as pd

    curve = pd.concat(curves, ignore_index=True)
    return {"runs": runs, "curves": curve.round(4).to_dict(orient="list"),
            "mpe2_references": {k: {"mean": ev.mean, "sem": ev.sem} for k, ev in refs_mpe2.items()},
            "eval_references": {k: ev.mean for k, ev in refs_eval.items()}}


def tag(args, config: maddpg.Config) -> dict[str, Any]:
    runs = []
    for seed in range(args.tag_seeds):
        cfg = dataclasses.replace(config, seed=seed, total_steps=args.tag_steps, eval_every=args.eval_every,
                                  opponent="heuristic")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run = maddpg.train("simple_tag_v3", cfg, progress=False)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        ev = evaluate(run.policy, "simple_tag_v3", episodes=args.mpe2_episodes, seed=0, on="mpe2")
        runs.append({"seed": seed, "steps": int(run.curve.step.iloc[-1]), "mpe2_return": ev.mean,
                     "mpe2_sem": ev.sem, "cpu_s": cpu, "wall_s": wall})
        print(f"  simple_tag MADDPG predators seed {seed}: mpe2 {ev.mean:.2f} ± {ev.sem:.2f} ({cpu:.0f} s CPU)",
              flush=True)
    # predators' lines: random / no-op / scripted predators chasing the same scripted prey
    refs = {k: evaluate(maddpg.reference_policy(k, "simple_tag_v3", opponent="heuristic"), "simple_tag_v3",
                        episodes=args.mpe2_episodes, seed=0, on="mpe2") for k in KINDS}
    mean, sem = _mean_sem([r["mpe2_return"] for r in runs])
    return {"prey": "heuristic", "runs": runs, "maddpg_mean": mean, "maddpg_sem_over_seeds": sem,
            "mpe2_references": {k: {"mean": ev.mean, "sem": ev.sem} for k, ev in refs.items()}}


def summarise(result: dict[str, Any]) -> None:
    sp = result["simple_spread"]
    by = {m: [r for r in sp["runs"] if r["method"] == m] for m in METHODS}
    noop = sp["mpe2_references"]["noop"]["mean"]
    for method, runs in by.items():
        mean, sem = _mean_sem([r["mpe2_return"] for r in runs])
        key = method.lower()
        result[f"{key}_return_200k"] = mean
        result[f"{key}_return_200k_sem_over_seeds"] = sem
        result[f"{key}_return_200k_per_seed"] = [r["mpe2_return"] for r in runs]
    result["noop_return"] = noop
    result["random_return"] = sp["mpe2_references"]["random"]["mean"]
    result["heuristic_return"] = sp["mpe2_references"]["heuristic"]["mean"]
    mad = by["MADDPG"]
    result["steps_per_s"] = float(np.mean([r["steps_per_s"] for r in mad]))
    result["steps_per_s_wall"] = float(np.mean([r["steps_per_s_wall"] for r in mad]))
    result["iddpg_steps_per_s"] = float(np.mean([r["steps_per_s"] for r in by["IDDPG"]]))
    result["target"] = {
        "rule": f"MADDPG's mpe2 team return at {result['total_steps']:,} transitions >= no-op + {TARGET_MARGIN:g}",
        "threshold": noop + TARGET_MARGIN,
        "met_by_mean": bool(result["maddpg_return_200k"] >= noop + TARGET_MARGIN),
        "seeds_meeting": int(sum(r["mpe2_return"] >= noop + TARGET_MARGIN for r in mad)),
        "seeds": len(mad),
    }
    # for the notebook's plot and table
    result["mpe2_table"] = [{"method": r["method"], "seed": r["seed"], "mpe2 team return": r["mpe2_return"],
                             "s.e.m.": r["mpe2_sem"], "CPU s": r["cpu_s"]} for r in sp["runs"]]
    result["curves"] = sp["curves"]
    result["eval_references"] = sp["eval_references"]


def markdown(result: dict[str, Any]) -> str:
    sp, tg = result["simple_spread"], result["simple_tag"]
    n_ep = result["mpe2_episodes"]
    lines = [
        f"MADDPG and IDDPG on `simple_spread_v3` ({result['total_steps']:,} environment transitions per run, "
        f"seeds 0-{result['seeds'] - 1}; trained on course_lib's batched twin, evaluated on mpe2 itself: greedy "
        f"actors, {n_ep} episodes, reset seeds 0-{n_ep - 1}, team return summed over agents and 25 steps; "
        "`bench/maddpg.py`, results in `bench/results/maddpg.json`).",
        "",
        "| policy | mpe2 team return (mean over seeds ± s.e.m.) | per seed | above no-op |",
        "|---|---:|---|---:|",
    ]
    noop = result["noop_return"]
    for method in METHODS:
        key = method.lower()
        per = ", ".join(f"{x:.1f}" for x in result[f"{key}_return_200k_per_seed"])
        lines.append(f"| {method} | {result[f'{key}_return_200k']:.1f} ± {result[f'{key}_return_200k_sem_over_seeds']:.1f}"
                     f" | {per} | {result[f'{key}_return_200k'] - noop:+.1f} |")
    for kind in ("random", "noop", "heuristic"):
        ref = sp["mpe2_references"][kind]
        lines.append(f"| {kind} | {ref['mean']:.1f} ± {ref['sem']:.1f} (episodes) | – | {ref['mean'] - noop:+.1f} |")
    lines.append(f"| seed project's MADDPG (SPECS.md; its own evaluation) | {SEED_PROJECT_MADDPG_200K:.2f} | – | "
                 f"{SEED_PROJECT_MADDPG_200K - noop:+.1f} |")
    t = result["target"]
    lines += [
        "",
        f"Target (MADDPG ≥ no-op + {TARGET_MARGIN:g} = {t['threshold']:.1f}): "
        f"{'met' if t['met_by_mean'] else 'NOT met'} by the mean; {t['seeds_meeting']}/{t['seeds']} seeds meet it.",
        f"Training throughput: MADDPG {result['steps_per_s']:,.0f} environment transitions per CPU second "
        f"(IDDPG {result['iddpg_steps_per_s']:,.0f}), learning included; {result['steps_per_s_wall']:,.0f} per wall "
        f"second at load average {result['loadavg_start'][0]:.1f} on {os.cpu_count()} cores. "
        f"Whole bench: {result['cpu_s']:.0f} s CPU, {result['wall_s']:.0f} s wall, one torch thread.",
        "",
        f"**simple_tag_v3**: MADDPG predators ({result['tag_steps']:,} transitions, {len(tg['runs'])} seed(s)) "
        f"against the scripted fleeing prey; predators' team return on mpe2 ({n_ep} episodes).",
        "",
        "| predators | mpe2 team return |",
        "|---|---:|",
        f"| MADDPG | {tg['maddpg_mean']:.1f}" + (f" ± {tg['maddpg_sem_over_seeds']:.1f} (seeds)" if len(tg['runs']) > 1 else
                                               f" ± {tg['runs'][0]['mpe2_sem']:.1f} (episodes)") + " |",
    ]
    for kind in ("random", "noop", "heuristic"):
        ref = tg["mpe2_references"][kind]
        lines.append(f"| {kind} | {ref['mean']:.1f} ± {ref['sem']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200_000, help="environment transitions per simple_spread run")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per method")
    ap.add_argument("--eval-every", type=int, default=20_000, help="transitions between curve points")
    ap.add_argument("--mpe2-episodes", type=int, default=200, help="final evaluation episodes on mpe2")
    ap.add_argument("--tag-steps", type=int, default=200_000, help="transitions of each simple_tag run")
    ap.add_argument("--tag-seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a smoke run of every step (not a measurement)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "maddpg.json"))
    ap.add_argument("--table", default=str(ROOT / "bench" / "README_maddpg.md"))
    args = ap.parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.quick:
        args.steps, args.seeds, args.eval_every, args.mpe2_episodes = 2_000, 2, 1_000, 4
        args.tag_steps, args.tag_seeds = 2_000, 1
        overrides = dict(learning_starts=400, batch_size=64, eval_episodes=8)
        if args.out == ap.get_default("out"):
            args.out = "/tmp/maddpg_quick.json"
        if args.table == ap.get_default("table"):
            args.table = "/tmp/README_maddpg_quick.md"

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    config = maddpg.Config(**overrides)
    load = list(os.getloadavg())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    print("simple_spread_v3", flush=True)
    spread_result = spread(args, config)
    print("simple_tag_v3", flush=True)
    tag_result = tag(args, config)
    result: dict[str, Any] = {
        "date": date.today().isoformat(), "platform": f"{platform.machine()}, {platform.processor() or '?'}",
        "total_steps": args.steps, "seeds": args.seeds, "mpe2_episodes": args.mpe2_episodes,
        "tag_steps": args.tag_steps, "quick": args.quick,
        "config": dataclasses.asdict(config),
        "seed_project_maddpg_200k": SEED_PROJECT_MADDPG_200K,
        "simple_spread": spread_result, "simple_tag": tag_result,
    }
    result["cpu_s"], result["wall_s"] = time.process_time() - cpu0, time.perf_counter() - wall0
    result["loadavg_start"], result["loadavg_end"] = load, list(os.getloadavg())
    summarise(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    Path(args.table).write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
