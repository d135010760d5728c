"""Method I (latent-aligned IPPO) vs IPPO vs MADDPG on simple_spread_v3: returns and speed.

    .venv/bin/python bench/method_i.py                  # everything (hours on 2 shared cores; resumable)
    .venv/bin/python bench/method_i.py --only ppo,throughput --seeds 1      # a quicker look

Writes ``bench/results/method_i.json`` (read by notebooks/07_method_i) and the markdown
tables ``bench/README_method_i.md``.  Every finished training run is saved at once, and a
second call resumes where the first stopped (``--fresh`` starts over).

What is measured (simple_spread_v3, 3 agents, 25-step episodes):

* **baselines**: random, no-op and the scripted heuristic on mpe2's own ``simple_spread_v3``,
  discrete and continuous actions, ``--eval-episodes`` episodes (reset seeds 10000, 10001, ...);
* **step-matched**: IPPO and Method I (``course_lib.algos.la_ippo.train``, the reference parts and the
  default Config; IPPO is the same learner with ``distill_weight=0``) trained for ``--short-steps``
  (200k) and ``--steps`` (1M) environment steps, ``--seeds`` seeds, discrete and continuous; MADDPG
  (``course_lib.algos.maddpg.train``, its defaults) trained for ``--maddpg-steps``.
  The number reported is the **team return** (summed over agents and steps) of the
  deterministic policy on ``--eval-episodes`` of mpe2's episodes: PPO runs are evaluated on
  mpe2 itself at their end; MADDPG at 200k is read from its 1M run (no learning-rate schedule,
  so the 200k checkpoint is a 200k-step MADDPG), on the batched twin's exact copies of the same
  mpe2 episodes (the twin matches mpe2 to 1e-5), and on mpe2 itself at its end;
* **wall-clock-matched**: every run logs ``eval_return`` (twin copies of mpe2's episodes)
  against its training **CPU seconds** (evaluations excluded; one torch thread, so CPU time is
  what a quiet core's wall clock shows) and wall seconds; the return each method reached
  within the same CPU budget is read off those curves;
* **topology ablation**: Method I with the ring and the star (all-to-all is the main run),
  discrete, ``--steps``;
* **throughput**: one process, one torch thread, Method I then MADDPG on the batched twin,
  environment steps per CPU second and per wall second of training (learning included), with
  the load average.

``--jobs`` training runs go in parallel processes (one torch thread each).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_lib import papers  # noqa: E402
from course_lib.utils import machine_info  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "method_i.json"
README = ROOT / "bench" / "README_method_i.md"
NUM_ENVS = 256  # batched environments of the PPO learners (the notebook's setting)
EVAL_SEED = 10_000
# Published by the original project's authors (course_lib.papers): simple_spread_v3, 200k steps,
# last-5 evaluation mean; their steps/s.
PAPER = {"method_i_return_200k": papers.SEED_PROJECT_SPREAD_200K["Method I"],
         "maddpg_return_200k": papers.SEED_PROJECT_SPREAD_200K["MADDPG"],
         "method_i_steps_per_s": papers.SEED_PROJECT_SPREAD_STEPS_PER_S["Method I"],
         "maddpg_steps_per_s": papers.SEED_PROJECT_SPREAD_STEPS_PER_S["MADDPG"],
         "source": "the project this course grew from (SPECS.md, 'Method I'): simple_spread_v3 after 200k "
                   "steps, last-5 evaluation mean; both at the no-op level on mpe2"}
PARTS = ("baselines", "ppo", "continuous", "topology", "maddpg", "fixes", "throughput")
# The original project's three bugs (notebook 07's exercises), each a Config change of Method I
FIXES = {"two optimizers": ("discrete", {"separate_optimizer": True}),
         "two optimizers, lambda 1.0": ("discrete", {"separate_optimizer": True, "distill_weight": 1.0}),
         "lambda 1.0": ("discrete", {"distill_weight": 1.0}),
         "unclamped log-std": ("continuous", {"log_std_bounds": None}),
         # a 5x entropy bonus makes the drift reach the clamp within the run
         "entropy bonus 0.05": ("continuous", {"ent_coef": 0.05}),
         "unclamped log-std, entropy bonus 0.05": ("continuous", {"ent_coef": 0.05, "log_std_bounds": None})}


def _setup() -> None:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")


def _label(steps: int) -> str:
    return f"{steps // 1_000_000}M" if steps % 1_000_000 == 0 else f"{steps // 1000}k"


def _spread(continuous: bool):
    from course_lib.tasks import task

    return task("simple_spread_v3", continuous_actions=continuous)


def _mpe2_return(policy, continuous: bool, episodes: int) -> float:
    """Mean team return of ``policy`` on mpe2's own episodes EVAL_SEED, EVAL_SEED + 1, ..."""
    from course_lib.evaluation import evaluate

    return evaluate(policy, _spread(continuous), episodes, seed=EVAL_SEED, on="mpe2").mean


def baselines(episodes: int) -> dict[str, float]:
    _setup()
    from course_lib.envs.policies import make_policy

    out = {}
    for actions in ("discrete", "continuous"):
        env = _spread(actions == "continuous").single()
        for kind in ("random", "noop", "heuristic"):
            out[f"{actions}/{kind}"] = _mpe2_return(make_policy(kind, env, seed=0), actions == "continuous", episodes)
    return out


# ------------------------------------------------------------------------- runs
def run_ppo(method: str, actions: str, seed: int, steps: int, topology: str, eval_every: int,
            curve_episodes: int, eval_episodes: int, variant: str | None = None,
            overrides: dict | None = None) -> dict[str, Any]:
    """One IPPO / Method I run: its curve (eval return vs steps, CPU and wall seconds) and mpe2's verdict.

    ``variant`` names a Config change (``overrides``), e.g. one of the original project's bugs.
    """
    _setup()
    from course_lib.algos import la_ippo

    continuous = actions == "continuous"
    cfg = la_ippo.Config(seed=seed, total_steps=steps, num_envs=NUM_ENVS, log_every=eval_every, eval_every=eval_every,
                         eval_episodes=curve_episodes, eval_seed=EVAL_SEED, topology=topology,
                         distill_weight=0.0 if method == "IPPO" else la_ippo.Config.distill_weight)
    cfg = replace(cfg, **(overrides or {}))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = la_ippo.train(_spread(continuous), cfg, progress=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    final = _mpe2_return(run.policy, continuous, eval_episodes)
    df = run.curve.rename(columns={"train_return": "episode_return"})  # the results file's name
    keep = [c for c in ("step", "cpu_time", "time", "eval_return", "episode_return", "latent/distance",
                        "latent/spread", "latent/effective_dim", "log_std", "log_std_max") if c in df.columns]
    net = run.learner.agents["agent"].net
    final_log_std = net.current_log_std().detach().mean(0).tolist() if continuous else None
    return {"method": method, "actions": actions, "seed": seed, "steps": steps,
            "topology": topology if method != "IPPO" else None, "variant": variant,
            "overrides": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (overrides or {}).items()},
            "final_log_std_per_entry": final_log_std,
            "cpu_s": cpu, "wall_s": wall, "sps_cpu": float(df["sps_cpu"].iloc[-1]),
            "sps_wall": float(df["step"].iloc[-1] / df["time"].iloc[-1]),
            "returns": {_label(steps): final}, "returns_on": {_label(steps): "mpe2"},
            "curve": df[keep].round(4).to_dict(orient="list")}


def run_maddpg(actions: str, seed: int, steps: int, eval_every: int, eval_episodes: int,
               checkpoints: tuple[int, ...]) -> dict[str, Any]:
    """One MADDPG run (course_lib.algos.maddpg, its defaults) with its curve against training CPU and wall seconds."""
    _setup()
    from course_lib.algos import maddpg

    continuous = actions == "continuous"
    # each curve row follows one evaluation: time them, so the curve's seconds are training only (as PPO's)
    spent, at_eval = [0.0, 0.0], []
    original = maddpg.evaluate

    def timed(*args, **kwargs):
        cpu, wall = time.process_time(), time.perf_counter()
        at_eval.append((cpu - cpu0 - spent[0], wall - wall0 - spent[1]))
        result = original(*args, **kwargs)
        spent[0] += time.process_time() - cpu
        spent[1] += time.perf_counter() - wall
        return result

    maddpg.evaluate = timed
    cfg = maddpg.Config(seed=seed, total_steps=steps, eval_every=eval_every, eval_episodes=eval_episodes,
                        eval_seed=EVAL_SEED)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        run = maddpg.train(_spread(continuous), cfg, progress=False)
    finally:
        maddpg.evaluate = original
    cpu, wall = time.process_time() - cpu0 - spent[0], time.perf_counter() - wall0 - spent[1]
    df = run.curve
    rows = [{"step": int(r.step), "cpu_time": t[0], "time": t[1], "eval_return": float(r.eval_return),
             "episode_return": float(r.train_return)} for r, t in zip(df.itertuples(), at_eval)]
    returns, on = {}, {}
    for c in checkpoints:
        hit = [r for r in rows if r["step"] >= c]
        if c < steps and hit:
            returns[_label(c)], on[_label(c)] = hit[0]["eval_return"], "twin copies of mpe2's episodes"
    returns[_label(steps)], on[_label(steps)] = _mpe2_return(run.policy, continuous, eval_episodes), "mpe2"
    curve = {k: [r[k] for r in rows] for k in ("step", "cpu_time", "time", "eval_return", "episode_return")}
    return {"method": "MADDPG", "actions": actions, "seed": seed, "steps": steps, "topology": None,
            "cpu_s": cpu, "wall_s": wall, "sps_cpu": steps / cpu, "sps_wall": steps / wall,
            "returns": returns, "returns_on": on, "curve": curve}


def throughput(ppo_steps: int, maddpg_steps: int) -> dict[str, Any]:
    """Training steps per CPU second and per wall second: Method I, then MADDPG, in one process."""
    _setup()
    from course_lib.algos import la_ippo, maddpg

    load_before = list(os.getloadavg())
    spread = _spread(False)
    warm_up = la_ippo.Config(total_steps=NUM_ENVS * 25, num_envs=NUM_ENVS, eval_episodes=0)
    la_ippo.train(spread, warm_up, progress=False)  # imports, allocator
    cpu0, wall0 = time.process_time(), time.perf_counter()
    la_ippo.train(spread, la_ippo.Config(total_steps=ppo_steps, num_envs=NUM_ENVS, log_every=ppo_steps,
                                         eval_episodes=0), progress=False)
    ppo_cpu, ppo_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    cfg = maddpg.Config(total_steps=maddpg_steps, eval_every=0, eval_episodes=0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    maddpg.train(spread, cfg, progress=False)
    md_cpu, md_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"how": "one process, one torch thread, Method I (discrete, default Config, 256 environments) then "
                   f"MADDPG (discrete, default maddpg.Config, learning included, its first "
                   f"{cfg.learning_starts:,} of {maddpg_steps:,} transitions uniform random without learning); "
                   "environment steps divided by the process's CPU seconds (what one quiet core gives) and by "
                   "wall seconds",
            "method_i_steps": ppo_steps, "maddpg_steps": maddpg_steps,
            "method_i_cpu_s": ppo_cpu, "method_i_wall_s": ppo_wall, "maddpg_cpu_s": md_cpu, "maddpg_wall_s": md_wall,
            "method_i_steps_per_s_cpu": ppo_steps / ppo_cpu, "method_i_steps_per_s_wall": ppo_steps / ppo_wall,
            "maddpg_steps_per_s_cpu": maddpg_steps / md_cpu, "maddpg_steps_per_s_wall": maddpg_steps / md_wall,
            "ratio_cpu": (ppo_steps / ppo_cpu) / (maddpg_steps / md_cpu),
            "ratio_wall": (ppo_steps / ppo_wall) / (maddpg_steps / md_wall),
            "loadavg_before": load_before, "loadavg_after": list(os.getloadavg()), "cpus": os.cpu_count()}


# ---------------------------------------------------------------------- summary
def _key(method: str, actions: str, topology: str | None, seed: int, steps: int, variant: str | None = None) -> str:
    return f"{method}/{actions}/{topology or '-'}/{seed}/{steps}" + (f"/{variant}" if variant else "")


def _mean_sem(xs: list) -> dict[str, Any] | None:
    xs = [float(x) for x in xs if x is not None and np.isfinite(x)]
    if not xs:
        return None
    sem = float(np.std(xs, ddof=1) / np.sqrt(len(xs))) if len(xs) > 1 else float("nan")
    return {"mean": float(np.mean(xs)), "sem": sem, "seeds": len(xs), "values": [round(x, 2) for x in xs]}


def _select(runs, method, actions, topology="all-to-all", variant=None):
    return [r for r in runs if r["method"] == method and r["actions"] == actions and r.get("variant") == variant
            and (method != "Method I" or r.get("topology") == topology)]


def _at_budget(curve: dict, budget: float) -> tuple[float, int] | None:
    ok = [i for i, t in enumerate(curve["cpu_time"])
          if t <= budget and curve["eval_return"][i] is not None and np.isfinite(curve["eval_return"][i])]
    return (curve["eval_return"][ok[-1]], curve["step"][ok[-1]]) if ok else None


def summarise(data: dict[str, Any], args) -> None:
    runs = list(data["runs"].values())
    labels = [_label(args.short_steps), _label(args.steps)]
    step_matched, counts = {}, {}
    for actions in ("discrete", "continuous"):
        for method in ("IPPO", "Method I", "MADDPG"):
            sel = _select(runs, method, actions)
            if not sel:
                continue
            counts[f"{actions}/{method}"] = len(sel)
            entry = {}
            for lab in labels + [_label(args.maddpg_steps)]:
                vals = [r["returns"].get(lab) for r in sel if lab in r["returns"]]
                if vals:
                    entry[lab] = _mean_sem(vals)
            step_matched[f"{actions}/{method}"] = entry
    data["step_matched"] = step_matched
    data["run_counts"] = counts
    # the topology ablation: Method I at the long budget
    topo = {}
    for t in ("all-to-all", "ring", "star"):
        sel = [r for r in _select(runs, "Method I", "discrete", t) if r["steps"] == args.steps]
        if sel:
            topo[t] = _mean_sem([r["returns"][_label(args.steps)] for r in sel])
    data["topology"] = topo
    # the three bugs against the fixed Method I, at the long budget
    fixes = {}
    for variant, (actions, _) in [("fixed (defaults)", ("discrete", {})), ("fixed (defaults), continuous",
                                                                          ("continuous", {}))] + list(FIXES.items()):
        name = None if variant.startswith("fixed") else variant
        sel = [r for r in _select(runs, "Method I", actions, variant=name) if r["steps"] == args.steps]
        if not sel:
            continue
        entry = {"actions": actions, "return": _mean_sem([r["returns"][_label(args.steps)] for r in sel])}
        for col in ("latent/distance", "latent/spread", "latent/effective_dim", "log_std_max"):
            vals = [r["curve"][col][-1] for r in sel if col in r["curve"]]
            if vals:
                entry[col] = float(np.mean(vals))
        per_entry = [r["final_log_std_per_entry"] for r in sel if r.get("final_log_std_per_entry")]
        if per_entry:
            entry["final_log_std_per_entry"] = np.mean(per_entry, axis=0).round(3).tolist()
        fixes[variant] = entry
    data["fixes"] = fixes
    data["fix_curves"] = [
        {"variant": r.get("variant") or "fixed (defaults)", "actions": r["actions"], "seed": r["seed"],
         "step": r["curve"]["step"][i], **{c: r["curve"][c][i] for c in ("eval_return", "latent/distance",
                                                                        "latent/spread", "latent/effective_dim",
                                                                        "log_std_max") if c in r["curve"]}}
        for r in runs if r["method"] == "Method I" and r.get("topology") == "all-to-all" and r["steps"] == args.steps
        for i in range(len(r["curve"]["step"]))]
    # curves (long runs) for the wall-clock view
    curves = []
    for r in runs:
        if r["steps"] != (args.maddpg_steps if r["method"] == "MADDPG" else args.steps):
            continue
        if r["method"] == "Method I" and r.get("topology") != "all-to-all":
            continue
        c = r["curve"]
        for i in range(len(c["step"])):
            if c["eval_return"][i] is not None and np.isfinite(c["eval_return"][i]):
                curves.append({"method": r["method"], "actions": r["actions"], "seed": r["seed"],
                               "step": c["step"][i], "cpu_time": round(c["cpu_time"][i], 2),
                               "wall_time": round(c["time"][i], 2), "eval_return": c["eval_return"][i]})
    data["curves"] = curves
    # wall-clock matched: the return every method reached within the same CPU seconds
    wall = {}
    for actions in ("discrete", "continuous"):
        long = {m: [r for r in _select(runs, m, actions) if r["steps"] == (args.maddpg_steps if m == "MADDPG"
                                                                             else args.steps)]
                for m in ("IPPO", "Method I", "MADDPG")}
        long = {m: v for m, v in long.items() if v}
        if len(long) < 2:
            continue
        common = min(min(r["curve"]["cpu_time"][-1] for r in v) for v in long.values())
        for budget in sorted({round(common / 4, 1), round(common, 1)}):
            row = {"cpu_seconds": budget}
            for m, v in long.items():
                got = [_at_budget(r["curve"], budget) for r in v]
                got = [g for g in got if g is not None]
                row[m] = _mean_sem([g[0] for g in got])
                row[f"{m} steps"] = float(np.mean([g[1] for g in got])) if got else None
            wall[f"{actions} @ {budget:.3g} CPU s"] = row
    data["wall_clock_matched"] = wall
    # the fields the issue asks for
    b = data.get("baselines", {})

    def get(key, lab):
        e = step_matched.get(key, {}).get(lab)
        return e["mean"] if e else None

    long_label = _label(args.steps)
    data["method_i_return_1m"] = get("discrete/Method I", long_label)
    data["ippo_return_1m"] = get("discrete/IPPO", long_label)
    data["maddpg_return_1m"] = get("discrete/MADDPG", _label(args.maddpg_steps))
    data["method_i_return_1m_continuous"] = get("continuous/Method I", long_label)
    data["ippo_return_1m_continuous"] = get("continuous/IPPO", long_label)
    data["noop_return"] = b.get("discrete/noop")
    data["random_return"] = b.get("discrete/random")
    data["heuristic_return"] = b.get("discrete/heuristic")
    tp = data.get("throughput") or {}
    data["steps_per_s"] = tp.get("method_i_steps_per_s_cpu")
    data["steps_per_s_wall"] = tp.get("method_i_steps_per_s_wall")
    data["maddpg_steps_per_s"] = tp.get("maddpg_steps_per_s_cpu")
    data["steps_per_s_ratio_to_maddpg"] = tp.get("ratio_cpu")
    data["targets"] = {
        "return": {"target": "Method I at 1M steps >= no-op + 25", "long_steps": args.steps,
                   "value": data["method_i_return_1m"], "noop": data["noop_return"],
                   "met": (data["method_i_return_1m"] >= data["noop_return"] + 25)
                   if data["method_i_return_1m"] is not None and data["noop_return"] is not None else None},
        "throughput": {"target": ">= 20,000 env steps/s (CPU-time based, one thread)",
                       "value": data["steps_per_s"],
                       "met": data["steps_per_s"] >= 20_000 if data["steps_per_s"] is not None else None}}


def write_readme(data: dict[str, Any], args) -> None:
    def f(e):
        if e is None:
            return "—"
        if isinstance(e, dict):
            sem = f" ± {e['sem']:.1f}" if np.isfinite(e["sem"]) else ""
            return f"{e['mean']:.1f}{sem} ({e['seeds']})"
        return f"{e:.1f}"

    prov, b = data["provenance"], data.get("baselines", {})
    short, long = _label(args.short_steps), _label(args.steps)
    calls = "; ".join(f"`{h['command'].strip()}` at commit {h['commit']}" for h in prov.get("invocations", [prov]))
    lines = ["### Method I (latent-aligned IPPO) vs IPPO vs MADDPG (notebook 07)", "",
             f"`bench/method_i.py` ({calls}; last {prov['date']}; "
             f"{data['machine']['cpus']} shared CPUs, {data['elapsed_s'] / 3600:.1f} h with {args.jobs} jobs; "
             f"results in `bench/results/method_i.json`). simple_spread_v3, team return summed over the 3 agents "
             f"and 25 steps of the deterministic policy on {args.eval_episodes} of mpe2's episodes "
             f"(reset seeds {EVAL_SEED}...), mean ± s.e.m. over seeds (number of seeds in brackets).", ""]
    for actions in ("discrete", "continuous"):
        lines += [f"**{actions} actions**", "",
                  f"| policy | {short} steps | {long} steps | training env steps per CPU second |",
                  "|---|---:|---:|---:|"]
        for kind in ("random", "noop", "heuristic"):
            v = b.get(f"{actions}/{kind}")
            lines.append(f"| {kind} (no learning) | {f(v)} | {f(v)} | — |")
        for method in ("IPPO", "Method I", "MADDPG"):
            e = data["step_matched"].get(f"{actions}/{method}")
            if not e:
                continue
            sel = _select(list(data["runs"].values()), method, actions)
            sps = np.mean([r["sps_cpu"] for r in sel if r["steps"] == max(r2["steps"] for r2 in sel)])
            lines.append(f"| {method} | {f(e.get(short))} | {f(e.get(long))} | {sps:,.0f} |")
        lines.append("")
    lines += ["MADDPG's 200k numbers are its 1M runs' 200k checkpoints, on the twin's exact copies of the "
              "same mpe2 episodes; every other learned number is measured on mpe2 itself.", ""]
    if data.get("wall_clock_matched"):
        lines += ["**Wall-clock matched** (return reached within the same training CPU seconds, read off the "
                  "runs' curves; twin copies of mpe2's episodes; steps reached in brackets)", "",
                  "| budget | IPPO | Method I | MADDPG |", "|---|---:|---:|---:|"]
        for name, row in data["wall_clock_matched"].items():
            cells = []
            for m in ("IPPO", "Method I", "MADDPG"):
                e, st = row.get(m), row.get(f"{m} steps")
                cells.append("—" if e is None else f"{f(e)} [{st / 1000:.0f}k steps]")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if data.get("fixes"):
        lines += [f"**The original project's three bugs** (Method I, {long} steps; return on mpe2, and at the end "
                  "of training the distance between agents' latents of the same observation, between "
                  "observations under one encoder, and the largest log-std)", "",
                  "| variant | actions | team return | between agents | between observations | largest log-std |",
                  "|---|---|---:|---:|---:|---:|"]
        for name, e in data["fixes"].items():
            lines.append(f"| {name} | {e['actions']} | {f(e['return'])} | {e.get('latent/distance', float('nan')):.2f} | "
                         f"{e.get('latent/spread', float('nan')):.2f} | "
                         + (f"{e['log_std_max']:.2f}" if e.get("log_std_max") is not None else "—") + " |")
        lines.append("")
    if data.get("topology"):
        lines += [f"**Topology ablation** (Method I, discrete, {long} steps): " + "; ".join(
            f"{t} {f(e)}" for t, e in data["topology"].items()) + ".", ""]
    tp = data.get("throughput")
    if tp:
        lines += [f"**Throughput** ({tp['how']}; load average {tp['loadavg_before'][0]:.1f} on {tp['cpus']} CPUs "
                  f"before): Method I {tp['method_i_steps_per_s_cpu']:,.0f} env steps per CPU second "
                  f"({tp['method_i_steps_per_s_wall']:,.0f} per wall second on the shared machine), MADDPG "
                  f"{tp['maddpg_steps_per_s_cpu']:,.0f} ({tp['maddpg_steps_per_s_wall']:,.0f}): "
                  f"**{tp['ratio_cpu']:.1f}×** (wall: {tp['ratio_wall']:.1f}×).", ""]
    t = data.get("targets", {})
    parts = []
    if t.get("return", {}).get("value") is not None:
        r = t["return"]
        parts.append(f"Method I at {long}: {r['value']:.1f} vs no-op {r['noop']:.1f}, "
                     f"{r['value'] - r['noop']:+.1f} (target +25: {'met' if r['met'] else 'missed'})")
    if t.get("throughput", {}).get("value") is not None:
        parts.append(f"throughput {t['throughput']['value']:,.0f} env steps per CPU second (target 20,000: "
                     f"{'met' if t['throughput']['met'] else 'missed'})")
    if parts:
        lines += ["Targets: " + "; ".join(parts) + ".", ""]
    lines += [f"Published by the original project (200k steps): Method I {PAPER['method_i_return_200k']}, "
              f"MADDPG {PAPER['maddpg_return_200k']} ({PAPER['method_i_steps_per_s']:,} vs "
              f"{PAPER['maddpg_steps_per_s']} steps/s), the level of the no-op line above.", ""]
    README.write_text("\n".join(lines))


# ------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1_000_000, help="the long step-matched budget")
    ap.add_argument("--short-steps", type=int, default=200_000, help="the short step-matched budget")
    ap.add_argument("--maddpg-steps", type=int, default=1_000_000)
    ap.add_argument("--eval-every", type=int, default=25_000, help="env steps between curve points (PPO)")
    ap.add_argument("--maddpg-eval-every", type=int, default=20_000)
    ap.add_argument("--curve-episodes", type=int, default=100, help="episodes per curve point (PPO)")
    ap.add_argument("--eval-episodes", type=int, default=200, help="episodes of the step-matched numbers")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma list of parts: {','.join(PARTS)}")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--redo", default="", help="comma list of saved parts to measure again: baselines,throughput")
    ap.add_argument("--out", default=None, help="write the json and markdown here instead of bench/ (trial runs)")
    args = ap.parse_args(argv)
    global RESULTS, README
    if args.out:
        RESULTS, README = Path(args.out) / "method_i.json", Path(args.out) / "README_method_i.md"
    parts = set(filter(None, args.only.split(",")))
    unknown = parts - set(PARTS)
    if unknown:
        ap.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() and not args.fresh else {}
    data.setdefault("runs", {})
    for part in filter(None, args.redo.split(",")):
        if part not in ("baselines", "throughput"):
            ap.error(f"--redo takes baselines and/or throughput, got {part!r}")
        data.pop(part, None)
    start, previous = time.perf_counter(), float(data.get("elapsed_s", 0.0))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    command = "python bench/method_i.py " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())

    def save():
        data["benchmark"] = "method_i"
        data["settings"] = dict(vars(args), num_envs=NUM_ENVS, eval_seed=EVAL_SEED)
        data["paper"] = PAPER
        data["machine"] = machine_info()
        this = {"command": command, "commit": commit, "started": started,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "loadavg_end": list(os.getloadavg())}
        history = [h for h in data.get("provenance", {}).get("invocations", []) if h.get("started") != started]
        if parts:  # every call that added to this file (`--only ""` just rewrites the summary and tables)
            data["provenance"] = {**this, "invocations": history + [this]}
        data["elapsed_s"] = previous + time.perf_counter() - start
        summarise(data, args)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(data, indent=1))
        write_readme(data, args)

    if "baselines" in parts and "baselines" not in data:
        print("baselines on mpe2 ...", flush=True)
        data["baselines"] = baselines(args.eval_episodes)
        save()
    if "throughput" in parts and "throughput" not in data:
        print("throughput ...", flush=True)
        data["throughput"] = throughput(200_000, 100_000)
        save()

    tasks = []  # in order of importance: what the targets and the comparison need comes first
    ppo_kw = dict(eval_every=args.eval_every, curve_episodes=args.curve_episodes, eval_episodes=args.eval_episodes)
    for actions in ["discrete"] + (["continuous"] if "continuous" in parts else []):
        if "ppo" in parts:
            for steps in (args.steps, args.short_steps):
                for seed in range(args.seeds):
                    for method in ("Method I", "IPPO"):
                        tasks.append(("ppo", dict(method=method, actions=actions, seed=seed, steps=steps,
                                                  topology="all-to-all", **ppo_kw)))
        if "maddpg" in parts:
            for seed in range(args.seeds):
                tasks.append(("maddpg", dict(actions=actions, seed=seed, steps=args.maddpg_steps,
                                             eval_every=args.maddpg_eval_every, eval_episodes=args.eval_episodes,
                                             checkpoints=(args.short_steps, args.steps))))
    if "topology" in parts:
        for topology in ("ring", "star"):
            for seed in range(args.seeds):
                tasks.append(("ppo", dict(method="Method I", actions="discrete", seed=seed, steps=args.steps,
                                          topology=topology, **ppo_kw)))
    if "fixes" in parts:
        for variant, (actions, overrides) in FIXES.items():
            if actions == "continuous" and "continuous" not in parts:
                continue
            for seed in range(args.seeds):
                tasks.append(("ppo", dict(method="Method I", actions=actions, seed=seed, steps=args.steps,
                                          topology="all-to-all", variant=variant, overrides=overrides, **ppo_kw)))

    def key_of(kind, kw):
        method = "MADDPG" if kind == "maddpg" else kw["method"]
        return _key(method, kw["actions"], kw.get("topology") if method == "Method I" else None, kw["seed"],
                    kw["steps"], kw.get("variant"))

    todo = [(k, kw) for k, kw in tasks if key_of(k, kw) not in data["runs"]]
    print(f"{len(todo)} training runs to do ({len(tasks) - len(todo)} already saved)", flush=True)
    if todo:
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_ppo if kind == "ppo" else run_maddpg, **kw): key_of(kind, kw)
                       for kind, kw in todo}
            for fut in as_completed(futures):
                run = fut.result()
                data["runs"][futures[fut]] = run
                print(f"{futures[fut]}: team return {run['returns']}, {run['sps_cpu']:,.0f} steps per CPU s, "
                      f"{run['cpu_s']:.0f} CPU s, {run['wall_s']:.0f} wall s", flush=True)
                save()
    save()
    print(json.dumps({k: data.get(k) for k in ("method_i_return_1m", "ippo_return_1m", "maddpg_return_1m",
                                                "noop_return", "steps_per_s", "maddpg_steps_per_s",
                                                "steps_per_s_ratio_to_maddpg")}, indent=1))
    print(f"wrote {RESULTS} and {README}")


if __name__ == "__main__":
    main()
