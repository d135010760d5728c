"""Self-play and competitive evaluation: fictitious play's exploitability and an Elo table on simple_tag.

    .venv/bin/python bench/selfplay.py              # (run by `make bench`): the notebook's full budget, seeds 0 and 1
    .venv/bin/python bench/selfplay.py --seeds 1    # only seed 0, the notebook's run (about 2-3 CPU minutes a seed)
    .venv/bin/python bench/selfplay.py --quick      # the notebook's quick budget (a smoke test)

Writes bench/results/selfplay.json and the markdown tables bench/README_selfplay.md
(pasted into README).  What notebooks/08_self_play measures, with the same settings:

* Matrix games: exploitability (NashConv / 2) of fictitious play's average strategy and of
  naive self-play's current strategy in rock-paper-scissors, matching pennies and a biased
  rock-paper-scissors (:mod:`course_lib.selfplay.fictitious`), and the iteration from
  which fictitious play stays below 0.01 on rock-paper-scissors.
* simple_tag_v3 (the batched twin of mpe2's; 3 predators, 1 prey, 2 obstacles, 25 steps;
  predators win an episode when they touch the prey at least once): per seed, IPPO
  predators and prey trained against rolling pools of 5 past selves and by naive
  self-play (:func:`course_lib.selfplay.league.train`); Method I predators
  (:func:`course_lib.algos.la_ippo.train`) and MADDPG predators
  (:func:`course_lib.algos.maddpg.train`) trained against the final prey pool of the
  pool-of-5 league, each twice: at **matched steps** (as many environment steps as the
  IPPO predators of that league trained) and at **matched CPU seconds** (as many CPU
  seconds as those IPPO predators' PPO training took: the step count that the learner's
  own throughput in its step-matched run, same seed and process, converts them into; the
  CPU seconds it then took are reported beside).  Every final agent and the random and
  scripted policies rated against the frozen archive of the pool-of-5 league (fixed-pool
  Elo, K = 32, random policies anchored at 1000, the predators' edge measured from random
  against random); the exploitability approximation (0.5 - lowest score against that
  pool); the cross-play matrix.  A control: Method I's learner with the alignment off
  (``distill_weight=0``: independent PPO, one network per predator), steps-matched.  Method I
  has no prey: simple_tag has one prey, and Method I aligns the encoders of a team's agents
  (with one agent it is IPPO).

One process, one torch thread.  Time is reported as process CPU seconds (what the run
costs on an idle core) and wall seconds, with the load average (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from course_lib.algos import la_ippo, maddpg  # noqa: E402
from course_lib.selfplay import elo, fictitious, league, pool  # noqa: E402
from course_lib.tasks import task  # noqa: E402
from course_lib.utils import machine_info  # noqa: E402

GAMES = {"rock-paper-scissors": task("matrix_rock_paper_scissors"),
         "matching pennies": task("matrix_matching_pennies"),
         "biased rock-paper-scissors": task("matrix_rock_paper_scissors", payoffs=fictitious.zero_sum_payoffs(
             fictitious.biased_rock_paper_scissors()))}
# The notebook's budgets: budget(full=..., quick=...) in its setup cell.
# The predators of Method I and MADDPG train as many steps as the IPPO predators (generations x steps_per_generation).
FULL = dict(fp_iterations=20_000, generations=10, steps_per_generation=12_000, eval_episodes=100,
            maddpg=dict(batch_size=256, learning_starts=5_000), cross_episodes=500, reference_episodes=4_000)
QUICK = dict(fp_iterations=20_000, generations=2, steps_per_generation=1_600, eval_episodes=16,
             maddpg=dict(batch_size=64, learning_starts=500), cross_episodes=32, reference_episodes=400)
POOL_SIZE = 5
# the MADDPG predators of the cross-play comparison: 32 environments, learning rates 1e-3, no evaluation (the
# fixed-pool Elo and the cross-play matrix are theirs; their CPU seconds are training only)
MADDPG = dict(num_envs=32, actor_lr=1e-3, critic_lr=1e-3, eval_every=0, eval_episodes=0)
# Method I's predators: the league's PPO settings (league.default_ppo_config: 32 environments, learning rate 3e-3
# constant, 4 epochs x 4 minibatches, entropy 0.01) with Method I's own networks (one encoder per predator, aligned
# all-to-all, lambda 0.1).  Notebook 07's settings (256 environments, 5e-3 annealed) are 18 PPO updates in 120k
# steps: fixed-pool Elo 1036 on seed 0, barely above random; with the IPPO predators' CPU seconds (300,800 steps,
# 7.1 CPU s) 1264, near these settings' 1301 (measured once, seed 0).
METHOD_I = dict(num_envs=32, lr=3e-3, anneal_lr=False, epochs=4, minibatches=4, ent_coef=0.01, eval_episodes=0)


def code_versions() -> dict[str, str]:
    """The commit and a hash of each file the numbers depend on (the learners change as the course grows)."""
    import hashlib
    import subprocess

    files = ["course_lib/selfplay/elo.py", "course_lib/selfplay/league.py", "course_lib/selfplay/fictitious.py",
             "course_lib/selfplay/pool.py", "course_lib/algos/ppo.py", "course_lib/algos/la_ippo.py",
             "course_lib/algos/maddpg.py",
             "course_lib/envs/mpe.py", "course_lib/envs/mpe_policies.py"]
    out = {f: hashlib.sha256((ROOT / f).read_bytes()).hexdigest()[:12] for f in files if (ROOT / f).exists()}
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *files], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        head, dirty = "unknown", ""
    return {"commit": head, "uncommitted": [line[3:] for line in dirty.splitlines() if line.strip()], "sha256": out}


def fictitious_play(iterations: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    checkpoints = [10, 100, 1_000, 10_000, iterations]
    for name, game in GAMES.items():
        fp = fictitious.train(game, fictitious.Config(total_steps=iterations), progress=False).curve
        naive = fictitious.train(game, fictitious.Config(total_steps=iterations, respond_to="latest"),
                                 progress=False).curve
        curves = {"fp_average": fp["exploitability/average"].to_numpy(),
                  "fp_current": fp["exploitability/current"].to_numpy(),
                  "naive_current": naive["exploitability/current"].to_numpy(),
                  "naive_average": naive["exploitability/average"].to_numpy()}
        above = np.flatnonzero(curves["fp_average"] >= 0.01)
        out[name] = {
            "checkpoints": checkpoints,
            **{k: [float(c[i - 1]) for i in checkpoints] for k, c in curves.items()},
            "fp_average_below_0.01_from": int(above[-1]) + 2 if len(above) else 1,
        }
        print(f"{name}: fictitious play's average {out[name]['fp_average'][-1]:.4f} after {iterations:,}", flush=True)
    return out


def history(curve, pool_size: int, seed: int) -> dict[str, list]:
    """A league's curve as the JSON's ``league_history`` (one list per column, one entry per generation)."""
    h = curve.drop(columns=["sps"]).assign(pool_size=pool_size, seed=seed)
    return h.replace({np.nan: None}).to_dict(orient="list")


def train_predators(algo: str, seed: int, steps: int, prey: pool.Match, b: dict[str, Any]) -> dict[str, Any]:
    """``algo``'s predators ("Method I", "Method I, lambda 0" or "MADDPG") trained ``steps`` steps against ``prey``:
    their side policy (Method I: a sampling snapshot, as the league's; MADDPG: greedy), steps, CPU and wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    if algo.startswith("Method I"):
        config = la_ippo.Config(seed=seed, total_steps=steps, opponent=prey, **METHOD_I)
        if algo == "Method I, lambda 0":  # the alignment off: independent PPO with one network per predator
            config = replace(config, distill_weight=0.0)
        run = la_ippo.train("simple_tag_v3", config, progress=False)
        side = run.learner.agents["adversary"].frozen()
    else:
        run = maddpg.train("simple_tag_v3", maddpg.Config(seed=seed, total_steps=steps, opponent=prey, **MADDPG,
                                                          **b["maddpg"]), progress=False)
        side = pool.TeamSide(run.policy)
    return {"side": side, "steps": int(run.learner.step), "cpu_s": time.process_time() - cpu,
            "wall_s": time.perf_counter() - wall}


def cpu_matched_steps(algo: str, trained: dict[str, Any], budget: float) -> int:
    """The steps ``algo`` takes for ``budget`` CPU seconds at the throughput of its run ``trained``, in whole
    units of the learner's loop (Method I: updates of num_envs x 25 steps; MADDPG: batched steps)."""
    unit = METHOD_I["num_envs"] * la_ippo.Config.rollout_len if algo.startswith("Method I") else MADDPG["num_envs"]
    return max(unit, int(round(budget * trained["steps"] / trained["cpu_s"] / unit)) * unit)


def tag(seed: int, b: dict[str, Any], advantage: float) -> dict[str, Any]:
    """One seed of the notebook's simple_tag experiment, with Method I and MADDPG at matched steps and CPU seconds."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    runs = {"pool5": POOL_SIZE, "naive": 1}
    config = league.Config(seed=seed, total_steps=2 * b["generations"] * b["steps_per_generation"],
                           steps_per_generation=b["steps_per_generation"], eval_episodes=b["eval_episodes"],
                           advantage=advantage)
    results = {name: league.train("simple_tag_v3", replace(config, pool_size=size), progress=False)
               for name, size in runs.items()}
    leagues = {name: r.learner for name, r in results.items()}
    last = f"@g{b['generations']}"
    # the yardstick: what the pool-of-5 league's predators trained (their steps and their PPO's CPU seconds)
    budgets = {f"IPPO ({label})": {"steps": b["generations"] * b["steps_per_generation"],
                                   "cpu_s": leagues[name].train_cpu_s["predator"], "opponent": against}
               for name, label, against in (("pool5", "pool of 5", "rolling pool of 5"),
                                            ("naive", "naive", "latest prey"))}
    steps, cpu_budget = budgets["IPPO (pool of 5)"]["steps"], budgets["IPPO (pool of 5)"]["cpu_s"]
    prey = pool.Match(prey=leagues["pool5"].prey_pool.opponent())  # the final prey pool plays the prey
    trained = {}
    for algo in ("Method I", "MADDPG"):
        trained[f"{algo} (steps-matched)"] = at_steps = train_predators(algo, seed, steps, prey, b)
        trained[f"{algo} (CPU-matched)"] = train_predators(algo, seed, cpu_matched_steps(algo, at_steps, cpu_budget),
                                                           prey, b)
        if algo == "Method I":  # a control: its learner without the alignment, trained the same way
            trained["Method I, lambda 0 (steps-matched)"] = train_predators("Method I, lambda 0", seed, steps, prey, b)
    for name, t in trained.items():
        budgets[name] = {"steps": t["steps"], "cpu_s": t["cpu_s"], "wall_s": t["wall_s"], "opponent": "final prey pool"}
    ref_preds, ref_preys = league.reference_players(seed=seed)
    preds = {"random": ref_preds["pred:random"], "scripted": ref_preds["pred:heuristic"],
             "IPPO (pool of 5)": leagues["pool5"].predators[f"pred{last}"],
             "IPPO (naive)": leagues["naive"].predators[f"pred{last}"],
             **{name: t["side"] for name, t in trained.items()}}
    preys = {"random": ref_preys["prey:random"], "scripted": ref_preys["prey:heuristic"],
             "IPPO (pool of 5)": leagues["pool5"].preys[f"prey{last}"],
             "IPPO (naive)": leagues["naive"].preys[f"prey{last}"]}
    frozen = league.frozen_pool(results["pool5"])
    rated = {"predator": league.fixed_pool_elo(preds, "predator", frozen, b["eval_episodes"]),
             "prey": league.fixed_pool_elo(preys, "prey", frozen, b["eval_episodes"])}
    cross = pool.win_rate_matrix(preds, preys, episodes=b["cross_episodes"], seed=777)
    out = {
        "seed": seed,
        "fixed_pool_elo": {side: {r.player: {"elo": float(r.elo), "mean_score": float(r.mean_score),
                                             "min_score": float(r.min_score), "exploitability": float(r.exploitability)}
                                  for r in df.itertuples()} for side, df in rated.items()},
        "predator_budgets": {name: {k: round(v, 2) if isinstance(v, float) else v for k, v in d.items()}
                             for name, d in budgets.items()},
        "league_elo_final": {name: {k: float(v) for k, v in r.ratings.items()} for name, r in leagues.items()},
        "league_history": {name: history(results[name].curve, size, seed) for name, size in runs.items()},
        "cross_play": {"predators": list(cross.index), "prey": list(cross.columns),
                       "win_rate": cross.to_numpy().round(4).tolist()},
        "cpu_s": {**{f"league_{n}": round(float(r.curve.cpu_s.iloc[-1]), 1) for n, r in results.items()},
                  **{name: round(t["cpu_s"], 1) for name, t in trained.items()},
                  "total": round(time.process_time() - cpu0, 1)},
        "wall_s": {**{f"league_{n}": round(r.wall_s, 1) for n, r in leagues.items()},
                   **{name: round(t["wall_s"], 1) for name, t in trained.items()},
                   "total": round(time.perf_counter() - wall0, 1)},
    }
    p5 = out["fixed_pool_elo"]["predator"]
    print(f"seed {seed}: fixed-pool Elo of the predators: " +
          ", ".join(f"{k} {v['elo']:.0f}" for k, v in p5.items()) + f" ({out['cpu_s']['total']:.0f} CPU s)", flush=True)
    return out


def markdown(result: dict[str, Any]) -> str:
    fp = result["fictitious_play"]
    seeds = [t["seed"] for t in result["tag"]]
    n = len(seeds)
    lines = [
        "Self-play and competitive evaluation (`bench/selfplay.py`, results in `bench/results/selfplay.json`; "
        "the settings of notebooks/08_self_play).",
        "",
        f"**Fictitious play** ({result['settings']['fp_iterations']:,} simultaneous rounds from (first action, "
        "first action)): exploitability (NashConv / 2).",
        "",
        "| game | FP average @100 | FP average @1,000 | FP average @10,000 | FP average, final | FP below 0.01 from | "
        "naive self-play, current (final) | naive self-play, average (final) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in fp.items():
        lines.append(f"| {name} | {r['fp_average'][1]:.4f} | {r['fp_average'][2]:.4f} | {r['fp_average'][3]:.4f} | "
                     f"{r['fp_average'][-1]:.4f} | {r['fp_average_below_0.01_from']:,} | {r['naive_current'][-1]:.2f} | "
                     f"{r['naive_average'][-1]:.4f} |")
    s = result["settings"]
    lines += [
        "",
        f"**simple_tag_v3** (predators win an episode when they touch the prey at least once; random predators win "
        f"{result['random_win_rate']:.1%} against the random prey, an edge of {result['advantage']:+.0f} Elo points). "
        f"IPPO leagues of {s['generations']} generations x {s['steps_per_generation']:,} steps per side; Method I and "
        f"MADDPG predators trained against the final prey pool of the pool-of-5 league, at matched steps and at "
        f"matched CPU seconds (table below). Fixed-pool Elo against the frozen archive of the "
        f"pool-of-5 league (K = 32, random anchored at 1000), {s['eval_episodes']} episodes per opponent; "
        f"exploitability approximation = 0.5 - lowest score against that pool; "
        + (f"mean over seeds {seeds} (min – max)." if n > 1 else f"seed {seeds[0]}."),
        "",
        "| side | agent | fixed-pool Elo | vs random anchor | mean score vs pool | exploitability approx. |",
        "|---|---|---:|---:|---:|---:|",
    ]

    def stat(values: list[float], fmt: str) -> str:
        v = np.asarray(values)
        return (f"{v.mean():{fmt}} ({v.min():{fmt}} – {v.max():{fmt}})" if v.min() != v.max() else f"{v[0]:{fmt}}")

    for side in ("predator", "prey"):
        for agent in result["tag"][0]["fixed_pool_elo"][side]:
            rows = [t["fixed_pool_elo"][side][agent] for t in result["tag"]]
            e = [r["elo"] for r in rows]
            lines.append(f"| {side} | {agent} | {stat(e, '.0f')} | {stat([x - elo.ANCHOR for x in e], '+.0f')} | "
                         f"{stat([r['mean_score'] for r in rows], '.2f')} | "
                         f"{stat([r['exploitability'] for r in rows], '+.2f')} |")
    lines += ["", "**Matched budgets** (the predators' training; same seeds): IPPO's predators trained against the "
              "rolling prey pool of their league, Method I's and MADDPG's against that league's final prey pool, "
              f"{s['generations'] * s['steps_per_generation']:,} environment steps (steps-matched) or as many steps as "
              "the IPPO predators' CPU seconds of PPO training give at the learner's own throughput in its "
              "steps-matched run (CPU-matched; the CPU seconds it then took are shown). \"Method I, lambda 0\": "
              "Method I's learner without the alignment (independent PPO, one network per predator), the control. "
              "Process CPU seconds, one torch thread; win rates from the cross-play matrix of each seed.", "",
              "| predators | env steps | training CPU s | fixed-pool Elo | win rate vs IPPO prey (pool of 5) | "
              "win rate vs scripted prey |",
              "|---|---:|---:|---:|---:|---:|"]

    def cross(t: dict, pred: str, prey: str) -> float:
        cp = t["cross_play"]
        return cp["win_rate"][cp["predators"].index(pred)][cp["prey"].index(prey)]

    for name in result["tag"][0]["predator_budgets"]:
        bud = [t["predator_budgets"][name] for t in result["tag"]]
        lines.append(f"| {name} | {stat([x['steps'] for x in bud], ',.0f')} | "
                     f"{stat([x['cpu_s'] for x in bud], '.1f')} | "
                     f"{stat([t['fixed_pool_elo']['predator'][name]['elo'] for t in result['tag']], '.0f')} | "
                     f"{stat([cross(t, name, 'IPPO (pool of 5)') for t in result['tag']], '.2f')} | "
                     f"{stat([cross(t, name, 'scripted') for t in result['tag']], '.2f')} |")
    cp = result["tag"][0]["cross_play"]
    lines += ["", f"Cross-play (seed {seeds[0]}): predators' win rate over {s['cross_episodes']} episodes, rows "
              "predators, columns prey.", "",
              "| predators \\ prey | " + " | ".join(cp["prey"]) + " |",
              "|---|" + "---:|" * len(cp["prey"])]
    for name, row in zip(cp["predators"], cp["win_rate"]):
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    t = result["timing"]
    lines += ["", f"Cost: {t['cpu_s']:.0f} CPU seconds ({t['cpu_s'] / max(n, 1):.0f} per seed; one torch thread), "
              f"{t['wall_s']:.0f} s wall at load average {t['loadavg_start']} → {t['loadavg_end']} on a shared "
              f"{result['machine']['cpus']}-core machine. Code: commit {result['code']['commit']}"
              + (f", with uncommitted {', '.join(result['code']['uncommitted'])}" if result['code']['uncommitted'] else "")
              + " (file hashes in the JSON)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2, help="seeds of the simple_tag experiment (0, 1, ...)")
    ap.add_argument("--quick", action="store_true", help="the notebook's quick budget")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "selfplay.json"))
    ap.add_argument("--table", default=str(ROOT / "bench" / "README_selfplay.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    b = QUICK if args.quick else FULL
    load0 = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result: dict[str, Any] = {"benchmark": "selfplay", "budget": "quick" if args.quick else "full",
                              "settings": {**{k: v for k, v in b.items()}, "pool_size": POOL_SIZE, "k_factor": elo.K,
                                           "anchor": elo.ANCHOR}}
    result["fictitious_play"] = fictitious_play(b["fp_iterations"])
    ref_preds, ref_preys = league.reference_players(seed=0)
    p = pool.win_rate(ref_preds["pred:random"], ref_preys["prey:random"], b["reference_episodes"], seed=123)
    result["random_win_rate"], result["advantage"] = p, elo.side_advantage(p)
    result["tag"] = [tag(seed, b, result["advantage"]) for seed in range(args.seeds)]
    final = [t["fixed_pool_elo"]["predator"]["IPPO (pool of 5)"]["elo"] - elo.ANCHOR for t in result["tag"]]
    result["trained_predators_above_random"] = {"per_seed": final, "min": float(min(final)), "target": 100.0,
                                                "met": bool(min(final) >= 100.0)}
    result["predators_matched"] = {  # the matched-budget predators' mean over seeds (per seed under "tag")
        name: {"elo": float(np.mean([t["fixed_pool_elo"]["predator"][name]["elo"] for t in result["tag"]])),
               "steps": float(np.mean([t["predator_budgets"][name]["steps"] for t in result["tag"]])),
               "cpu_s": float(np.mean([t["predator_budgets"][name]["cpu_s"] for t in result["tag"]])),
               "seeds": [t["seed"] for t in result["tag"]]}
        for name in result["tag"][0]["predator_budgets"]}
    result["fp_rps_final_exploitability"] = result["fictitious_play"]["rock-paper-scissors"]["fp_average"][-1]
    load1 = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"
    result["timing"] = {"cpu_s": round(time.process_time() - cpu0, 1), "wall_s": round(time.perf_counter() - wall0, 1),
                        "loadavg_start": load0, "loadavg_end": load1,
                        "note": "cpu_s is this process's CPU time (one thread): its wall time on an idle core"}
    result["code"] = code_versions()
    result["machine"] = machine_info()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    Path(args.table).write_text(markdown(result))
    print(f"wrote {args.out} and {args.table}")
    return result


if __name__ == "__main__":
    main()
