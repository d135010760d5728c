"""Learned communication (CommNet, TarMAC) beside the papers' tables.

    .venv/bin/python bench/communication.py                 # (run by `make bench`)
    .venv/bin/python bench/communication.py --seeds 1 --sections levers   # a quicker look
    .venv/bin/python bench/communication.py --jobs 2        # two processes

Writes bench/results/communication.json and the markdown tables
bench/README_communication.md.  Every finished run is saved at once and a second call
resumes (``--fresh`` starts over); notebooks/05_communication loads the results file.

* ``levers``: lever pulling (pool 500, 5 agents, 5 levers; CommNet section 4.1) with
  :func:`course_lib.algos.levers.train` (``LEVER_CONFIG``): CommNet and the independent
  (NoComm) network, supervised and REINFORCE, ``--seeds`` seeds; the score
  (#distinct - 1)/(m - 1) of greedy and of sampled pulls on 8192 fresh rounds.  CommNet
  paper, Table 1.
* ``tj_easy`` (and ``tj_medium``): traffic junction with REINFORCE and a learned baseline
  (:func:`course_lib.algos.reinforce.train`, ``CONFIGS``): CommNet, TarMAC and NoComm;
  the failure rate (episodes with a collision) of the greedy and of the sampled policy on
  2048 episodes at the final arrival probability (``EVAL_TASKS``), beside CommNet's Table 2
  and TarMAC's success rates; the reference policies (random, always gas, always brake,
  the scripted heuristic that sees the whole junction) on the same episodes.
* ``predator_prey`` and ``navigation``: CommNet vs NoComm learning curves (training
  episodes) and the greedy return and success at the end, with the random and heuristic
  policies.

Every evaluation is :func:`course_lib.evaluation.evaluate`: the first 2048 episodes to end
in 256 environments reset with the evaluation seed, the sampled actions drawn from the
policy's own generator (seeded with the evaluation seed too).

Each run records its process CPU seconds and wall seconds (the machine is shared: CPU
seconds are what a quiet machine would take).  One torch thread per process.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_lib import papers  # noqa: E402
from course_lib.evaluation import evaluate  # noqa: E402
from course_lib.algos import levers, reinforce  # noqa: E402
from course_lib.envs.navigation import TUNED  # noqa: E402
from course_lib.policy import Policy  # noqa: E402
from course_lib.tasks import task  # noqa: E402
from course_lib.utils import machine_info  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "communication.json"
README = ROOT / "bench" / "README_communication.md"
SECTIONS = ("levers", "tj_easy", "tj_medium", "predator_prey", "navigation")
TASKS = {"tj_easy": task("traffic_junction_easy"), "tj_medium": task("traffic_junction_medium"),
         "predator_prey": task("predator_prey"), "navigation": task("navigation", **TUNED)}
# evaluated at the final arrival probability of the curriculum, where the papers evaluate
EVAL_TASKS = {**TASKS, "tj_easy": task("traffic_junction_easy", arrival_prob=0.3),
              "tj_medium": task("traffic_junction_medium", arrival_prob=0.2)}
HORIZON = {section: reinforce.horizon(t.batched(1)) for section, t in TASKS.items()}  # steps per episode
UPDATES = {"tj_easy": 2000, "tj_medium": 1000, "predator_prey": 600, "navigation": 600}
# Tuned on the traffic junction (seed 0): a high entropy bonus annealed to 0 keeps the cars
# exploring "brake" long enough to learn when to yield.  32 episodes per update; steps are
# updates x 32 episodes x the horizon.
CONFIGS = {
    "tj_easy": reinforce.Config(total_steps=2000 * 32 * 20, log_every=25 * 32 * 20, num_envs=32, hidden=64, lr=1e-3,
                                entropy_coef=0.1, entropy_end=0.0, reward_scale=0.1, curriculum_until=0.5),
    "tj_medium": reinforce.Config(total_steps=1000 * 32 * 40, log_every=25 * 32 * 40, num_envs=32, hidden=64,
                                  lr=1e-3, entropy_coef=0.1, entropy_end=0.0, reward_scale=0.1, curriculum_until=0.5),
    "predator_prey": reinforce.Config(total_steps=600 * 32 * 40, log_every=10 * 32 * 40, num_envs=32, hidden=64,
                                      lr=1e-3, entropy_coef=0.05, entropy_end=0.0, reward_scale=0.1,
                                      curriculum_until=0.0),
    "navigation": reinforce.Config(total_steps=600 * 32 * 40, log_every=10 * 32 * 40, num_envs=32, hidden=64,
                                   lr=1e-3, entropy_coef=0.05, entropy_end=0.0, reward_scale=0.1,
                                   curriculum_until=0.0),
}
MODEL_OF = {"CommNet": "commnet", "TarMAC": "tarmac", "NoComm": "nocomm"}
LEVER_CONFIG = levers.Config(hidden=128, batch=512)  # total_steps and log_every from --lever-updates
LEVER_RUNS = {("CommNet", "supervised"): "commnet", ("CommNet", "reinforce"): "commnet",
              ("NoComm", "supervised"): "nocomm", ("NoComm", "reinforce"): "nocomm"}
LEVER_TASK = task("levers", obs_type="index")  # ids as indices: CommNet's lookup table, same numbers
EVAL_ROUNDS = 8192        # lever rounds per score
EVAL_EPISODES = 2048      # traffic-junction / predator-prey / navigation episodes per evaluation
EVAL_ENVS = 256           # ... run in this many environments at a time
EVAL_SEED = 10_000


def _setup() -> None:
    import torch

    torch.set_num_threads(1)


def _timed(fn, *args) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    out.update(cpu_s=round(time.process_time() - cpu, 1), wall_s=round(time.perf_counter() - wall, 1),
               load_avg=os.getloadavg()[0])
    return out


# --------------------------------------------------------------------- levers
def lever_run(method: str, mode: str, seed: int, updates: int) -> dict[str, Any]:
    _setup()

    def run():
        batch = LEVER_CONFIG.batch
        cfg = dataclasses.replace(LEVER_CONFIG, mode=mode, model=LEVER_RUNS[(method, mode)], seed=seed,
                                  total_steps=updates * batch, log_every=max(updates // 20, 1) * batch)
        trained = levers.train("levers", cfg, progress=False)
        score = {}
        for greedy in (True, False):
            ev = evaluate(trained.policy.reseed(EVAL_SEED + seed), LEVER_TASK, EVAL_ROUNDS, seed=EVAL_SEED + seed,
                          greedy=greedy, num_envs=EVAL_ROUNDS)
            score[greedy] = float(np.mean(ev.metrics["distinct_score"]))
        curve = trained.curve
        return {"score": score[True], "score_sampled": score[False],
                "curve": {"update": (curve["step"] // batch).tolist(),
                          "eval_score": curve["eval_score"].round(4).tolist()}}

    return _timed(run)


# ------------------------------------------------------------- episodic tasks
class AlwaysGas(Policy):
    """Every car drives on, every step (the traffic junction's action 1)."""

    name = "gas"

    def act(self, obs, info=None, greedy=True):
        return np.ones(np.shape(obs)[:2], dtype=np.int64)


def _means(ev) -> dict[str, float]:
    """An evaluation as the results file keeps it: return per agent, team return, task metrics."""
    s = ev.summary()
    return {"episode_return": s["return_per_agent"], "team_return": s["mean"],
            **{k: float(np.mean(v)) for k, v in ev.metrics.items()}}


def _evaluate(section: str, run, seed: int) -> dict[str, dict[str, float]]:
    """Greedy and sampled on the same evaluation episodes (the final arrival probability)."""
    return {mode: _means(evaluate(run.policy.reseed(EVAL_SEED + seed), EVAL_TASKS[section], EVAL_EPISODES,
                                  seed=EVAL_SEED + seed, greedy=mode == "greedy", num_envs=EVAL_ENVS))
            for mode in ("greedy", "sampled")}


def config_of(section: str, updates: int | None = None) -> reinforce.Config:
    """The section's Config, with ``updates`` updates instead of its own when given."""
    cfg = CONFIGS[section]
    if updates is None:
        return cfg
    return dataclasses.replace(cfg, total_steps=updates * cfg.num_envs * HORIZON[section])


# curve columns kept in the results file, under the names the file has always used
CURVE_KEYS = {"episode": "episodes", "return_per_agent": "episode_return", "failure": "failure",
              "success": "success", "cars_completed": "cars_completed", "prey_caught": "prey_caught",
              "final_mean_dist": "final_mean_dist", "arrival_prob": "arrival_prob", "entropy": "entropy",
              "sps": "sps"}


def episodic_run(section: str, method: str, seed: int, updates: int | None) -> dict[str, Any]:
    _setup()
    cfg = dataclasses.replace(config_of(section, updates), model=MODEL_OF[method], seed=seed)

    def run():
        trained = reinforce.train(TASKS[section], cfg, progress=False)
        hist = trained.curve
        curve = {"update": (hist["step"] // (cfg.num_envs * HORIZON[section])).tolist()}
        curve.update({name: hist[col].round(4).tolist() for col, name in CURVE_KEYS.items() if col in hist})
        return {"final": _evaluate(section, trained, seed), "curve": curve,
                "settings": {**dataclasses.asdict(cfg), "updates": curve["update"][-1]}}

    return _timed(run)


def reference_policies(section: str) -> dict[str, Any]:
    """Random, always brake / no-op, always gas and the scripted heuristic on the evaluation episodes."""
    out = {}
    kinds = ["random", "heuristic", "noop"] + (["gas"] if section.startswith("tj") else [])
    for kind in kinds:
        env = EVAL_TASKS[section].batched(1)
        policy = AlwaysGas(env.possible_agents, env.obs_dim) if kind == "gas" else kind
        ev = evaluate(policy, EVAL_TASKS[section], EVAL_EPISODES, seed=EVAL_SEED, num_envs=EVAL_ENVS)
        means = _means(ev)
        out[kind] = {"team_return": means["team_return"], "episode_return_mean": means["episode_return"],
                     **{k: v for k, v in means.items() if k not in ("team_return", "episode_return")},
                     "episodes": ev.episodes}
    return out


def describe(section: str) -> str:
    """One line on a section's env and training settings."""
    core, cfg = TASKS[section].batched(1).core, CONFIGS[section]
    if section.startswith("tj_"):
        what = (f"{core.size}x{core.size}, up to {core.num_agents} cars, {core.max_steps} steps, vision "
                f"{core.vision}, arrival probability {core.arrival_prob_min} -> {core.arrival_prob_max} over the "
                f"first {cfg.curriculum_until:.0%} of training")
    elif section == "predator_prey":
        what = f"{core.size}x{core.size}, {core.num_agents} predators, vision {core.vision}, {core.max_steps} steps"
    else:
        what = (f"{core.num_agents} agents, spawn span {core.spawn_span}, vision {core.vision_radius}, "
                f"{core.max_steps} steps")
    return (f"{what}; {UPDATES[section]} updates x {cfg.num_envs} episodes, hidden {cfg.hidden}, K = "
            f"{cfg.comm_steps}, lr {cfg.lr}, entropy {cfg.entropy_coef} -> {cfg.entropy_end}")


# ------------------------------------------------------------------- summary
def _mean_sd(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size),
            "values": [float(v) for v in a]}


def summarise(runs: dict[str, Any], seeds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lev = {}
    for (method, mode) in LEVER_RUNS:
        done = [runs[k] for s in range(seeds) if (k := f"levers/{method}/{mode}/{s}") in runs]
        if done:
            lev[f"{method}/{mode}"] = _mean_sd([r["score"] for r in done])
        sampled = [r["score_sampled"] for r in done if "score_sampled" in r]
        if sampled:
            lev[f"{method}/{mode}/sampled"] = _mean_sd(sampled)
    if lev:
        out["levers"] = lev
    for section in SECTIONS[1:]:
        methods = ("CommNet", "TarMAC", "NoComm") if section.startswith("tj") else ("CommNet", "NoComm")
        sec = {}
        for method in methods:
            finals = [runs[k]["final"] for s in range(seeds) if (k := f"{section}/{method}/{s}") in runs]
            if not finals:
                continue
            sec[method] = {f"{mode}_{metric}": _mean_sd([f[mode][metric] for f in finals])
                           for mode in ("greedy", "sampled") for metric in finals[0][mode]}
        if sec:
            out[section] = sec
    return out


def _pct(x: dict) -> str:
    return f"{100 * x['mean']:.1f} ± {100 * x['sd']:.1f}"


def markdown(result: dict[str, Any]) -> str:
    s, paper, n = result["summary"], result["paper"], result["settings"]["seeds"]
    lines = [f"Learned communication, {n} seeds per row (`bench/communication.py`, results in "
             "`bench/results/communication.json`); mean ± standard deviation over seeds.", ""]
    if "levers" in s:
        lev = s["levers"]
        lines += ["**Lever pulling** (CommNet paper, Table 1): 5 of 500 agents, 5 levers; score "
                  "(#distinct − 1)/(m − 1) on 8,192 fresh rounds of greedy (argmax) pulls and of pulls sampled "
                  f"from the policy; uniform random pulling scores 0.590; {result['settings']['lever_updates']} "
                  "updates of 512 rounds, hidden 128, K = 2.", "",
                  "| model | paper, supervised | ours, supervised: greedy / sampled | paper, REINFORCE | "
                  "ours, REINFORCE: greedy / sampled |",
                  "|---|---:|---:|---:|---:|"]

        def cell(key):
            g, smp = lev.get(key), lev.get(key + "/sampled")
            if not g:
                return "–"
            return f"{g['mean']:.3f} ± {g['sd']:.3f} / " + (f"{smp['mean']:.3f} ± {smp['sd']:.3f}" if smp else "–")

        for method, label in (("NoComm", "independent"), ("CommNet", "CommNet")):
            cells = []
            for mode, pmode in (("supervised", "supervised"), ("reinforce", "REINFORCE")):
                cells += [f"{paper['levers'][f'{label}, {pmode}']:.2f}", cell(f"{method}/{mode}")]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    for section, title, pkey in (("tj_easy", "Traffic junction, easy", "tj_easy"),
                                 ("tj_medium", "Traffic junction, medium", "tj_medium")):
        if section not in s:
            continue
        sec, refs = s[section], result["references"].get(section, {})
        p = paper[pkey]
        lines += [f"**{title}** ({result['settings'][section]['describe']}): failure rate = share of "
                  "episodes with a collision, greedy policy, 2,048 episodes at the final arrival probability; "
                  "success = 100 − failure. Paper columns: CommNet paper Table 2 (MLP modules, failure %) and "
                  "TarMAC paper (success %).", "",
                  "| model | paper: failure % (CommNet) | paper: success % (TarMAC) | ours: failure % | "
                  "ours: cars through per episode | ours: failure %, sampled actions |",
                  "|---|---:|---:|---:|---:|---:|"]
        for method in ("NoComm", "CommNet", "TarMAC"):
            if method not in sec:
                continue
            r = sec[method]
            lines.append(f"| {method} | {p['failure_commnet_paper'].get(method, '–')} | "
                         f"{p['success_tarmac_paper'].get(method, '–')} | {_pct(r['greedy_failure'])} | "
                         f"{r['greedy_cars_completed']['mean']:.1f} | {_pct(r['sampled_failure'])} |")
        for kind, label in (("random", "random policy"), ("gas", "always gas"), ("noop", "always brake"),
                            ("heuristic", "scripted heuristic (sees the whole junction)")):
            if kind in refs:
                lines.append(f"| {label} | – | – | {100 * refs[kind]['failure']:.1f} | "
                             f"{refs[kind]['cars_completed']:.1f} | – |")
        lines.append("")
    for section, title, metric in (("predator_prey", "Predator-prey", "success"),
                                   ("navigation", "Cooperative navigation", "success")):
        if section not in s:
            continue
        sec, refs = s[section], result["references"].get(section, {})
        lines += [f"**{title}** ({result['settings'][section]['describe']}): return per agent and success "
                  "rate of the greedy policy at the end of training, 2,048 episodes (learning curves in the "
                  "JSON and in notebooks/05_communication).", "",
                  "| model | return per agent | success % |", "|---|---:|---:|"]
        for method in ("NoComm", "CommNet"):
            if method in sec:
                r = sec[method]
                lines.append(f"| {method} | {r['greedy_episode_return']['mean']:.2f} ± "
                             f"{r['greedy_episode_return']['sd']:.2f} | {_pct(r['greedy_success'])} |")
        for kind, label in (("random", "random policy"), ("noop", "no-op"),
                            ("heuristic", "scripted heuristic (sees everything)")):
            if kind in refs:
                lines.append(f"| {label} | {refs[kind]['episode_return_mean']:.2f} | "
                             f"{100 * refs[kind]['success']:.1f} |")
        lines.append("")
    t = result["timing"]
    lines.append(f"Measured on {result['machine']['processor']} ({result['machine']['cpus']} cores shared with other "
                 f"work; 1-min load average {t['load_avg_min']:.1f} to {t['load_avg_max']:.1f} as the runs ended), "
                 f"one torch thread per run, up to {t['jobs']} runs at a time: {t['cpu_s'] / 60:.0f} CPU minutes "
                 f"and {t['run_wall_s'] / 60:.0f} minutes of wall time, summed over the runs (CPU time is what a "
                 "quiet machine would take).")
    return "\n".join(lines) + "\n"


PAPER = {
    "levers": {**papers.LEVER_PAPER, "source": "Sukhbaatar et al. 2016 (CommNet), Table 1"},
    "tj_easy": {"failure_commnet_paper": {"NoComm": papers.TJ_EASY_FAILURE_PAPER["independent"],
                                          "CommNet": papers.TJ_EASY_FAILURE_PAPER["CommNet"]},
                "success_tarmac_paper": {"NoComm": papers.TJ_EASY_SUCCESS_PAPER["no communication"],
                                         "TarMAC": papers.TJ_EASY_SUCCESS_PAPER["TarMAC"]},
                "source": "CommNet paper Table 2 (MLP modules; also discrete comm. 1.1%); TarMAC paper "
                          "(Das et al. 2019), traffic junction easy"},
    "tj_medium": {"failure_commnet_paper": {"NoComm": papers.TJ_MEDIUM_FAILURE_PAPER["independent"],
                                            "CommNet": papers.TJ_MEDIUM_FAILURE_PAPER["CommNet"]},
                  "success_tarmac_paper": {},
                  "source": "CommNet paper Table 2 (MLP modules; also fully connected 12.5%, discrete 15.8%)"},
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds per model and task")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {SECTIONS}")
    ap.add_argument("--lever-updates", type=int, default=2500, help="gradient steps per lever run")
    ap.add_argument("--updates", type=int, default=None,
                    help="override the gradient steps of every episodic run (default: UPDATES)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel processes")
    ap.add_argument("--fresh", action="store_true", help="forget saved runs and start over")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--table", default=str(README))
    args = ap.parse_args(argv)
    _setup()
    sections = [s for s in args.sections.split(",") if s]
    bad = sorted(set(sections) - set(SECTIONS))
    if bad:
        ap.error(f"unknown sections {bad}; choose from {SECTIONS}")
    out_path = Path(args.out)
    saved = {} if args.fresh or not out_path.exists() else json.loads(out_path.read_text())
    runs: dict[str, Any] = dict(saved.get("runs", {}))
    references: dict[str, Any] = dict(saved.get("references", {}))
    # the saved runs may have run more at a time than this call
    at_a_time = max(args.jobs, int(saved.get("timing", {}).get("jobs", 1)))
    load_start = os.getloadavg()[0]

    jobs = {}
    for section in sections:
        if section == "levers":
            for method, mode in LEVER_RUNS:
                for seed in range(args.seeds):
                    jobs[f"levers/{method}/{mode}/{seed}"] = (lever_run, method, mode, seed, args.lever_updates)
            continue
        methods = ("CommNet", "TarMAC", "NoComm") if section.startswith("tj") else ("CommNet", "NoComm")
        for method in methods:
            for seed in range(args.seeds):
                jobs[f"{section}/{method}/{seed}"] = (episodic_run, section, method, seed, args.updates)
    todo = {k: v for k, v in jobs.items() if k not in runs}
    print(f"{len(jobs)} runs, {len(jobs) - len(todo)} saved, {len(todo)} to do", flush=True)

    def save():
        result = build(runs, references, args, at_a_time, load_start)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=1) + "\n")
        return result

    for section in sections:
        if section != "levers" and section not in references:
            references[section] = reference_policies(section)
            print(f"{section} references: " + ", ".join(
                f"{k} failure {v.get('failure', float('nan')):.3f} success {v.get('success', float('nan')):.3f}"
                for k, v in references[section].items()), flush=True)
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        futures = {pool.submit(fn, *fargs): key for key, (fn, *fargs) in todo.items()}
        for future in as_completed(futures):
            key = futures[future]
            runs[key] = future.result()
            r = runs[key]
            brief = r.get("score", None)
            if brief is None:
                g = r["final"]["greedy"]
                brief = {k: round(g[k], 3) for k in ("failure", "cars_completed", "success", "episode_return")
                         if k in g}
            print(f"{key}: {brief} ({r['cpu_s']:.0f} CPU s, {r['wall_s']:.0f} s wall)", flush=True)
            save()
    result = save()
    Path(args.table).write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {out_path} and {args.table}")
    return result


def build(runs, references, args, at_a_time, load_start) -> dict[str, Any]:
    summary = summarise(runs, args.seeds)
    result: dict[str, Any] = {"benchmark": "communication"}
    lev, easy = summary.get("levers", {}), summary.get("tj_easy", {})

    def mean(d, key, metric=None, scale=1.0):
        if key not in d:
            return None
        x = d[key] if metric is None else d[key][metric]
        return round(scale * x["mean"], 4)

    # an independent agent's best policy is a random pull, so it is scored on sampled pulls
    independent = [v for k in ("NoComm/supervised/sampled", "NoComm/reinforce/sampled") if k in lev
                   for v in lev[k]["values"]]
    independent_greedy = [v for k in ("NoComm/supervised", "NoComm/reinforce") if k in lev
                          for v in lev[k]["values"]]
    result.update({
        "lever_commnet_supervised": mean(lev, "CommNet/supervised"),
        "lever_commnet_reinforce": mean(lev, "CommNet/reinforce"),
        "lever_independent": round(float(np.mean(independent)), 4) if independent else None,
        "lever_independent_greedy": round(float(np.mean(independent_greedy)), 4) if independent_greedy else None,
        "lever_independent_supervised": mean(lev, "NoComm/supervised/sampled"),
        "lever_independent_reinforce": mean(lev, "NoComm/reinforce/sampled"),
        "tj_easy_failure_commnet": mean(easy, "CommNet", "greedy_failure", 100),
        "tj_easy_failure_nocomm": mean(easy, "NoComm", "greedy_failure", 100),
        "tj_easy_failure_tarmac": mean(easy, "TarMAC", "greedy_failure", 100),
        "tj_easy_failure_commnet_sampled": mean(easy, "CommNet", "sampled_failure", 100),
        "tj_easy_failure_nocomm_sampled": mean(easy, "NoComm", "sampled_failure", 100),
        "tj_easy_failure_tarmac_sampled": mean(easy, "TarMAC", "sampled_failure", 100),
        "units": {"lever_commnet_*": "(#distinct - 1)/(m - 1) of greedy pulls, mean over seeds",
                  "lever_independent*": "(#distinct - 1)/(m - 1) of pulls sampled from the policy (an "
                                        "independent agent's best policy is random), mean over seeds and, for "
                                        "lever_independent, over both training modes; *_greedy: argmax pulls",
                  "tj_*_failure_*": "percent of episodes with a collision at the final arrival probability, "
                                    "greedy policy (*_sampled: actions sampled from the policy), mean over seeds"},
        "n_seeds": args.seeds,
        "paper": PAPER,
        "summary": summary,
        "references": references,
        "settings": {
            "seeds": args.seeds, "lever_updates": args.lever_updates, "updates_override": args.updates,
            "eval_rounds": EVAL_ROUNDS, "eval_episodes": EVAL_EPISODES,
            **{section: {**dataclasses.asdict(cfg), "updates": UPDATES[section], "task": TASKS[section].spec(),
                         "describe": describe(section)
                         + (f" (this run: {args.updates} updates)" if args.updates else "")}
               for section, cfg in CONFIGS.items()},
        },
        "runs": runs,
        "machine": machine_info(),
        "timing": {"cpu_s": round(sum(r["cpu_s"] for r in runs.values()), 1),
                   "run_wall_s": round(sum(r["wall_s"] for r in runs.values()), 1),
                   "load_avg_min": min((r["load_avg"] for r in runs.values()), default=load_start),
                   "load_avg_max": max((r["load_avg"] for r in runs.values()), default=load_start),
                   "jobs": at_a_time, "load_avg_start_of_last_call": load_start,
                   "note": "cpu_s / run_wall_s: process CPU and wall seconds summed over the runs; load_avg: "
                           "1-min load average when each run ended"},
    })
    return result


if __name__ == "__main__":
    main()
