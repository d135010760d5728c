"""Learned communication (CommNet, TarMAC and the CommNet paper's baselines) beside the papers' tables.

    .venv/bin/python bench/communication.py                       # every section, resuming what is saved
    .venv/bin/python bench/communication.py --sections tj_easy --seeds 1       # a quicker look
    nohup .venv/bin/python bench/communication.py --jobs 1 > bench_communication.log 2>&1 &
    .venv/bin/python bench/communication.py --redo tj_medium/CommNet          # train those runs again
    .venv/bin/python bench/communication.py --summary             # tables from the saved runs, no training
    .venv/bin/python bench/communication.py --speed --summary     # also time the LSTM agents' two ways (a minute)

Writes bench/results/communication.json and, from that file alone, the markdown tables
bench/README_communication.md (bench/communication_report.py); notebooks/05_communication loads the
results file.  Every run trains with a checkpoint folder
(``--runs``, default bench/runs/communication/<section>/<label>/<seed>, saved every 5% of the
run): a run that is stopped (``kill -INT <pid>`` finishes the update and saves; any other kill
loses at most 5%) resumes where it stopped when the bench is called again, and a finished run
is kept in the results file and skipped (``--redo PREFIX`` forgets the runs whose key starts
with PREFIX).  A saved run whose settings differ from this file's (another Config, another
BENCH_VERSION) is stale: it is trained again.  ``--jobs N`` runs N processes, one torch
thread each.

Sections (``CONFIGS``: one ``reinforce.Config`` per row, the same for every seed), run in this order:
every seed of the cheap ones, then seed 0 of every long row, then the other seeds:

* ``tj_easy`` (vision 0, as IC3Net's run script: a car sees only its own cell), ``tj_medium``,
  ``tj_hard``: the traffic junction (CommNet paper Table 2; TarMAC paper), REINFORCE with a learned
  baseline (:func:`course_lib.algos.reinforce.train`), the arrival probability raised by the
  curriculum; greedy and sampled evaluation on 2,048 episodes at the final arrival probability
  (``EVAL_TASKS``): failure (an episode with a collision), success and cars through; the reference
  policies on the same episodes.  Easy and medium: CommNet, NoComm and the CommNet paper's fully-connected
  and discrete-communication baselines (and TarMAC on easy); hard: TarMAC (LSTM agents, 2 rounds) and
  NoComm (the same LSTM agents).
* ``tj_easy_vision1``: notebook 05's junction (a 3x3 view): CommNet, TarMAC, NoComm.
* ``tj_ablation``: CommNet on the medium junction with communication limited to 3 cells, and without
  the skip connection, beside the same CommNet and NoComm at the same (shorter) budget; here the cars see only
  whether the cells around are occupied (``tj_medium`` shows the routes of the cars in view, as the
  CommNet paper does).
* ``tj_routes``: CommNet, NoComm and fully connected at the ablations' budget on the medium junction
  with the routes of the cars in view, beside the same rows of ``tj_ablation`` (occupancy only): what
  seeing does.
* ``tj_slots``: the fully-connected baseline as the CommNet code runs it, at the same budget on the same
  junction: a new car takes a random free slot (``random_slots``; ours take the first free one) and
  every slot has its own action and value heads (``fully_connected_slots``).  Beside ``tj_routes``'
  fully-connected row: does the code's set-up explain the paper's weak baseline?
* ``levers``: lever pulling (CommNet paper Table 1), supervised and REINFORCE.
* ``predator_prey`` and ``navigation``: CommNet against NoComm.

Every run records its process CPU seconds (summed over the sessions it took, work redone
after a kill included), wall seconds, the commit and the command; the results file sums the
CPU hours per table.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):  # course_lib, and communication_report beside this file
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from course_lib import papers  # noqa: E402
from course_lib.algos import levers, reinforce  # noqa: E402
from course_lib.envs.navigation import TUNED  # noqa: E402
from course_lib.evaluation import evaluate  # noqa: E402
from course_lib.learning import CheckpointError  # noqa: E402
from course_lib.policy import Policy  # noqa: E402
from course_lib.tasks import task  # noqa: E402
from course_lib.utils import machine_info  # noqa: E402
from communication_report import markdown, parse  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "communication.json"
README = ROOT / "bench" / "README_communication.md"
RUNS = ROOT / "bench" / "runs" / "communication"
BENCH_VERSION = 2  # 2: the paper's CommNet (c^0 = 0), recurrent agents, Table 2's baselines (issue 20)
SECTIONS = ("tj_easy", "tj_easy_vision1", "tj_medium", "tj_hard", "tj_ablation", "tj_routes", "tj_slots", "levers",
            "predator_prey", "navigation")
# easy: IC3Net's public run script gives the cars vision 0 (only their own cell);
# the kit's default easy junction (notebook 05's) sees the 3x3 cells around (vision 1).
# medium: the CommNet paper's observation, the routes of the cars in view too (see_routes).
TASKS = {"tj_easy": task("traffic_junction_easy", vision=0), "tj_easy_vision1": task("traffic_junction_easy"),
         "tj_medium": task("traffic_junction_medium", see_routes=True),
         "tj_hard": task("traffic_junction_hard"), "tj_ablation": task("traffic_junction_medium"),
         "tj_routes": task("traffic_junction_medium", see_routes=True),
         "tj_slots": task("traffic_junction_medium", see_routes=True, random_slots=True),
         "levers": task("levers"), "predator_prey": task("predator_prey"), "navigation": task("navigation", **TUNED)}
# evaluated at the final arrival probability of the curriculum, where the papers evaluate
EVAL_TASKS = {**TASKS, "tj_easy": task("traffic_junction_easy", vision=0, arrival_prob=0.3),
              "tj_easy_vision1": task("traffic_junction_easy", arrival_prob=0.3),
              "tj_medium": task("traffic_junction_medium", see_routes=True, arrival_prob=0.2),
              "tj_hard": task("traffic_junction_hard", arrival_prob=0.05),
              "tj_ablation": task("traffic_junction_medium", arrival_prob=0.2),
              "tj_routes": task("traffic_junction_medium", see_routes=True, arrival_prob=0.2),
              "tj_slots": task("traffic_junction_medium", see_routes=True, random_slots=True, arrival_prob=0.2),
              "levers": task("levers", obs_type="index")}  # ids as indices: CommNet's lookup table, same rounds


def horizon(section: str) -> int:
    """Steps per episode of ``section``'s task (every one is truncated at its ``max_steps``)."""
    return TASKS[section].batched(1).core.max_steps


def _steps(section: str, updates: int, num_envs: int) -> dict[str, int]:
    """``total_steps`` and ``log_every`` (50 curve rows) of ``updates`` updates of ``num_envs`` episodes."""
    per_update = num_envs * horizon(section)
    return {"total_steps": updates * per_update, "log_every": max(updates // 50, 1) * per_update}


# The traffic junction: 256 episodes per update (the batched junction's speed) and lr 3e-3 (chosen in
# pilots, see bench/README_communication.md).  With vision 1 a small entropy bonus (0.02) suffices; with
# vision 0 it lets every model settle on "always gas" before the arrivals get dense, so the bonus is 0.1,
# annealed to 0 by 60% of the updates (the policies sharpen and drive through after that).
TJ = dict(num_envs=256, lr=3e-3, entropy_coef=0.02, entropy_end=0.0, reward_scale=0.1, curriculum_until=0.5)
EASY_V1 = reinforce.Config(hidden=64, comm_steps=2, **TJ, **_steps("tj_easy", 1500, 256))
EASY = reinforce.Config(hidden=64, comm_steps=2, **{**TJ, "entropy_coef": 0.1}, entropy_until=0.6,
                        **_steps("tj_easy", 4000, 256))
MEDIUM = reinforce.Config(hidden=64, comm_steps=2, **{**TJ, "entropy_coef": 0.1}, entropy_until=0.6,
                          **_steps("tj_medium", 6000, 256))
SHORT = dataclasses.replace(MEDIUM, **_steps("tj_medium", 1000, 256))  # the ablations' budget
# hard: LSTM agents, 128 episodes of 80 steps per update (the backward pass through 80 steps of 20 slots)
HARD = reinforce.Config(hidden=64, comm_steps=2, **{**TJ, "num_envs": 128, "entropy_coef": 0.05}, entropy_until=0.8,
                        **_steps("tj_hard", 3000, 128))
CODE_FC = "FullyConnected, the CommNet code's"  # tj_slots' row
CONFIGS: dict[str, dict[str, Any]] = {
    "tj_easy": {"CommNet": EASY, "TarMAC": dataclasses.replace(EASY, model="tarmac"),
                "NoComm": dataclasses.replace(EASY, model="nocomm"),
                "FullyConnected": dataclasses.replace(EASY, model="fully_connected"),
                "Discrete": dataclasses.replace(EASY, model="discrete")},
    "tj_easy_vision1": {"CommNet": EASY_V1, "TarMAC": dataclasses.replace(EASY_V1, model="tarmac"),
                        "NoComm": dataclasses.replace(EASY_V1, model="nocomm")},
    "tj_medium": {"CommNet": MEDIUM, "FullyConnected": dataclasses.replace(MEDIUM, model="fully_connected"),
                  "Discrete": dataclasses.replace(MEDIUM, model="discrete"),
                  "NoComm": dataclasses.replace(MEDIUM, model="nocomm")},
    "tj_hard": {"TarMAC": dataclasses.replace(HARD, model="tarmac_lstm"),
                "NoComm": dataclasses.replace(HARD, model="nocomm_lstm")},
    "tj_ablation": {"CommNet": SHORT, "CommNet, range 3": dataclasses.replace(SHORT, comm_range=3.0),
                    "CommNet, no skip": dataclasses.replace(SHORT, skip=False),
                    "NoComm": dataclasses.replace(SHORT, model="nocomm")},
    "tj_routes": {"CommNet": SHORT, "NoComm": dataclasses.replace(SHORT, model="nocomm"),
                  "FullyConnected": dataclasses.replace(SHORT, model="fully_connected")},
    "tj_slots": {CODE_FC: dataclasses.replace(SHORT, model="fully_connected_slots")},
    "levers": {f"{label}/{mode}": levers.Config(hidden=128, batch=512, comm_steps=3, mode=mode, model=model,
                                                total_steps=2500 * 512, log_every=125 * 512)
               for label, model in (("CommNet", "commnet"), ("NoComm", "nocomm"))
               for mode in ("supervised", "reinforce")},
    "predator_prey": {m: reinforce.Config(model=m.lower(), num_envs=32, hidden=64, comm_steps=3, lr=1e-3,
                                          entropy_coef=0.05, entropy_end=0.0, reward_scale=0.1, curriculum_until=0.0,
                                          **_steps("predator_prey", 600, 32)) for m in ("CommNet", "NoComm")},
    "navigation": {m: reinforce.Config(model=m.lower(), num_envs=32, hidden=64, comm_steps=3, lr=1e-3,
                                       entropy_coef=0.05, entropy_end=0.0, reward_scale=0.1, curriculum_until=0.0,
                                       **_steps("navigation", 600, 32)) for m in ("CommNet", "NoComm")},
}
# the headline keys of the results file: (section, row) -> key stem
HEADLINE = {("tj_easy", "CommNet"): "tj_easy_failure_commnet", ("tj_easy", "TarMAC"): "tj_easy_failure_tarmac",
            ("tj_easy", "NoComm"): "tj_easy_failure_nocomm",
            ("tj_easy", "FullyConnected"): "tj_easy_failure_fully_connected",
            ("tj_easy", "Discrete"): "tj_easy_failure_discrete",
            ("tj_medium", "CommNet"): "tj_medium_failure_commnet",
            ("tj_medium", "FullyConnected"): "tj_medium_failure_fully_connected",
            ("tj_medium", "Discrete"): "tj_medium_failure_discrete",
            ("tj_medium", "NoComm"): "tj_medium_failure_nocomm",
            ("tj_hard", "TarMAC"): "tj_hard_success_tarmac", ("tj_hard", "NoComm"): "tj_hard_success_nocomm"}
EVAL_ROUNDS = 8192        # lever rounds per score
EVAL_EPISODES = 2048      # episodes per evaluation
EVAL_ENVS = 256           # ... run in this many environments at a time
EVAL_SEED = 10_000
SAVE_FRACTION = 0.05      # a checkpoint every 5% of a run


def _setup() -> None:
    import torch

    torch.set_num_threads(1)


def git_commit() -> str:
    """The commit of the working tree, ``+dirty`` when it has uncommitted changes to tracked files."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ------------------------------------------------------------------------ one run
class CpuMeter:
    """This process's CPU seconds since ``start``, written to ``folder/cpu.json`` every 30 s under
    a session key, so that the CPU of a run that took several sessions (kills included) adds up."""

    def __init__(self, folder: Path):
        self.path, self.key = folder / "cpu.json", f"{os.getpid()}-{time.time():.0f}"
        self.start, self.stopped = time.process_time(), threading.Event()
        folder.mkdir(parents=True, exist_ok=True)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def sessions(self) -> dict[str, float]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def write(self) -> float:
        sessions = self.sessions() | {self.key: round(time.process_time() - self.start, 1)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sessions))
        tmp.replace(self.path)
        return float(sum(sessions.values()))

    def _loop(self) -> None:
        while not self.stopped.wait(30.0):
            self.write()

    def stop(self) -> float:
        """Stop; the run's CPU seconds over all its sessions."""
        self.stopped.set()
        self.thread.join()
        return self.write()


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


def settings_of(section: str, label: str, seed: int) -> dict[str, Any]:
    cfg = dataclasses.replace(CONFIGS[section][label], seed=seed)
    return {"version": BENCH_VERSION, "task": TASKS[section].spec(), **dataclasses.asdict(cfg)}


def _train(section: str, cfg, folder: Path):
    """Train (resuming ``folder``'s checkpoint when it is of this run) with checkpoints in ``folder``."""
    module = levers if section == "levers" else reinforce
    options = dict(out=folder, save_every=max(int(cfg.total_steps * SAVE_FRACTION), 1), progress=False)
    if (folder / "checkpoint.pt").exists():
        try:
            print(f"{folder}: resuming from its checkpoint", flush=True)
            return module.train(TASKS[section], cfg, resume=folder, **options)
        except CheckpointError as exc:
            print(f"{folder}: not resumed ({exc}); training from the start", flush=True)
            (folder / "checkpoint.pt").unlink()
    return module.train(TASKS[section], cfg, **options)


def folder_of(runs_dir: "str | Path", section: str, label: str, seed: int) -> Path:
    """The checkpoint folder of a run (the label's letters and digits, the rest as "_": a plain shell word)."""
    return Path(runs_dir) / section / re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_") / str(seed)


def train_run(section: str, label: str, seed: int, runs_dir: str) -> dict[str, Any]:
    """One row, one seed: train (or resume) with checkpoints, then evaluate greedy and sampled."""
    _setup()
    cfg = dataclasses.replace(CONFIGS[section][label], seed=seed)
    folder = folder_of(runs_dir, section, label, seed)
    meter, wall = CpuMeter(folder), time.perf_counter()
    trained = _train(section, cfg, folder)
    cpu_train = meter.stop()
    final = {}
    for mode in ("greedy", "sampled"):
        policy = trained.policy.reseed(EVAL_SEED + seed)
        if section == "levers":
            ev = evaluate(policy, EVAL_TASKS[section], EVAL_ROUNDS, seed=EVAL_SEED + seed, greedy=mode == "greedy",
                          num_envs=EVAL_ROUNDS)
        else:
            ev = evaluate(policy, EVAL_TASKS[section], EVAL_EPISODES, seed=EVAL_SEED + seed,
                          greedy=mode == "greedy", num_envs=EVAL_ENVS)
        final[mode] = _means(ev)
    curve = trained.curve.drop(columns=["sps"])
    return {"final": final, "curve": {c: curve[c].round(4).tolist() for c in curve.columns},
            "settings": settings_of(section, label, seed), "cpu_s": round(cpu_train, 1),
            "cpu_s_note": "training, summed over the sessions the run took",
            "train_wall_s": round(trained.learner.wall_s, 1),
            "wall_s": round(time.perf_counter() - wall, 1), "load_avg": os.getloadavg()[0], "commit": git_commit(),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def reference_policies(section: str) -> dict[str, Any]:
    """Random, always brake / no-op, always gas and the scripted heuristic on the evaluation episodes."""
    out = {}
    kinds = ["random", "heuristic", "noop"] + (["gas"] if section.startswith("tj") else [])
    for kind in kinds:
        env = EVAL_TASKS[section].batched(1)
        policy = AlwaysGas(env.possible_agents, env.obs_dim) if kind == "gas" else kind
        ev = evaluate(policy, EVAL_TASKS[section], EVAL_EPISODES, seed=EVAL_SEED, num_envs=EVAL_ENVS)
        out[kind] = {**_means(ev), "episodes": ev.episodes}
    return out


# ------------------------------------------------------------------- summary
def _mean_sd(values: list[float]) -> dict[str, Any]:
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size),
            "values": [float(v) for v in a]}


def summarise(runs: dict[str, Any]) -> dict[str, Any]:
    """Per section and row: mean, sd and values over the seeds of every final metric."""
    out: dict[str, Any] = {}
    for key, run in runs.items():
        section, label, _ = parse(key)
        out.setdefault(section, {}).setdefault(label, []).append(run["final"])
    return {section: {label: {f"{mode}_{metric}": _mean_sd([f[mode][metric] for f in finals])
                              for mode in ("greedy", "sampled") for metric in finals[0][mode]}
                      for label, finals in rows.items()}
            for section, rows in out.items()}


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys: percent, mean over seeds, greedy (``..._sampled``: sampled actions),
    with the cars through per episode (``tj_<version>_cars_<model>``, greedy) and the seeds
    measured (``tj_<version>_seeds_<model>``)."""
    out: dict[str, Any] = {}
    for (section, label), key in HEADLINE.items():
        row = summary.get(section, {}).get(label)
        metric = "success" if "_success_" in key else "failure"
        if row is None:
            out[key] = None
            continue
        out[key] = round(100 * row[f"greedy_{metric}"]["mean"], 3)
        out[key + "_sampled"] = round(100 * row[f"sampled_{metric}"]["mean"], 3)
        out[key.replace(f"_{metric}_", "_cars_")] = round(row["greedy_cars_completed"]["mean"], 3)
        out[key.replace(f"_{metric}_", "_seeds_")] = row[f"greedy_{metric}"]["n"]
    lev = summary.get("levers", {})
    for label, key in (("CommNet/supervised", "lever_commnet_supervised"),
                       ("CommNet/reinforce", "lever_commnet_reinforce"),
                       ("NoComm/supervised", "lever_independent_supervised"),
                       ("NoComm/reinforce", "lever_independent_reinforce")):
        if label in lev:  # independent agents are scored on sampled pulls (their best policy is random)
            out[key] = round(lev[label]["sampled_distinct_score" if "NoComm" in label else "greedy_distinct_score"]
                             ["mean"], 4)
    return out


def _target_checks(references: dict[str, Any]) -> dict[str, tuple]:
    """Issue 20's targets: name -> (test, the headline keys it reads)."""
    heur = references.get("tj_easy", {}).get("heuristic", {}).get("cars_completed")
    near = (lambda cars: heur is not None and abs(cars - heur) <= 0.05 * heur)
    return {
        "easy: CommNet failure <= 1% and cars through within 5% of the heuristic":
            (lambda f, c: f <= 1.0 and near(c), ("tj_easy_failure_commnet", "tj_easy_cars_commnet")),
        "easy: TarMAC failure <= 1% and cars through within 5% of the heuristic":
            (lambda f, c: f <= 1.0 and near(c), ("tj_easy_failure_tarmac", "tj_easy_cars_tarmac")),
        "easy: NoComm failure above CommNet's and TarMAC's":
            (lambda n, c, t: n > c and n > t, ("tj_easy_failure_nocomm", "tj_easy_failure_commnet",
                                               "tj_easy_failure_tarmac")),
        "medium: CommNet failure <= 5%": (lambda f: f <= 5.0, ("tj_medium_failure_commnet",)),
        "medium: CommNet below fully connected and discrete":
            (lambda c, fc, d: c < fc and c < d, ("tj_medium_failure_commnet", "tj_medium_failure_fully_connected",
                                                 "tj_medium_failure_discrete")),
        "medium: CommNet below NoComm by at least 3x":
            (lambda c, n: 3 * c <= n, ("tj_medium_failure_commnet", "tj_medium_failure_nocomm")),
        "hard: TarMAC success >= 90%": (lambda s: s >= 90.0, ("tj_hard_success_tarmac",)),
        "hard: TarMAC success above NoComm": (lambda t, n: t > n, ("tj_hard_success_tarmac", "tj_hard_success_nocomm")),
    }


def targets(head: dict[str, Any], references: dict[str, Any]) -> dict[str, Any]:
    """Issue 20's targets, each ``True`` (met), ``False`` (missed) or ``None`` (not measured yet)."""
    return {name: None if any(head.get(k) is None for k in keys) else bool(test(*[head[k] for k in keys]))
            for name, (test, keys) in _target_checks(references).items()}


def target_seeds(head: dict[str, Any], references: dict[str, Any]) -> dict[str, int]:
    """The seeds behind each target: the fewest of the rows it reads (0: not measured)."""
    return {name: min(head.get(re.sub(r"_(failure|success|cars)_", "_seeds_", k)) or 0 for k in keys)
            for name, (_, keys) in _target_checks(references).items()}


def target_verdict(met: Any, seeds: int, planned: int = 3) -> str:
    """'met', 'missed' or 'not yet measured', with the seeds when fewer than planned."""
    word = "met" if met else "missed" if met is not None else "not yet measured"
    return word if met is None or seeds >= planned else f"{word} ({seeds} of {planned} seeds so far)"


PAPER = {
    "levers": {**papers.LEVER_PAPER, "source": "Sukhbaatar et al. 2016 (CommNet), Table 1"},
    "tj_easy_vision1": {"failure": {}, "success": {}, "source": "the papers' easy junctions are vision 0"},
    "tj_easy": {"failure": {"NoComm": papers.TJ_EASY_FAILURE_PAPER["independent"],
                            "Discrete": papers.TJ_EASY_FAILURE_PAPER["discrete comm."],
                            "CommNet": papers.TJ_EASY_FAILURE_PAPER["CommNet"]},
                "success": {"NoComm": papers.TJ_EASY_SUCCESS_PAPER["no communication"],
                            "TarMAC": papers.TJ_EASY_SUCCESS_PAPER["TarMAC"]},
                "source": "failure: CommNet paper Table 2 (easy, MLP modules); success: TarMAC paper (Das et al. "
                          "2019), traffic junction easy"},
    "tj_medium": {"failure": {"NoComm": papers.TJ_MEDIUM_FAILURE_PAPER["independent"],
                              "FullyConnected": papers.TJ_MEDIUM_FAILURE_PAPER["fully connected"],
                              "Discrete": papers.TJ_MEDIUM_FAILURE_PAPER["discrete comm."],
                              "CommNet": papers.TJ_MEDIUM_FAILURE_PAPER["CommNet"]},
                  "success": {}, "source": "CommNet paper Table 2 (the main version, MLP modules)"},
    "tj_hard": {"failure": {}, "success": {"NoComm": papers.TJ_HARD_SUCCESS_PAPER["no communication"],
                                           "TarMAC": papers.TJ_HARD_SUCCESS_PAPER["TarMAC (2 rounds)"]},
                "source": "TarMAC paper (Das et al. 2019), traffic junction hard, TarMAC with 2 rounds"},
}


def describe(section: str, label: str) -> str:
    """One line on a row's env and training settings."""
    cfg = CONFIGS[section][label]
    if section == "levers":
        return (f"{cfg.total_steps // cfg.batch} updates x {cfg.batch} rounds, hidden {cfg.hidden}, "
                f"K = {cfg.comm_steps} (c^0 = 0: {cfg.comm_steps - 1} messages)")
    updates = cfg.total_steps // (cfg.num_envs * horizon(section))
    what = (f"model {cfg.model}, {updates} updates x {cfg.num_envs} episodes, hidden {cfg.hidden}, "
            f"comm_steps {cfg.comm_steps}")
    extra = [f"range {cfg.comm_range:g} cells"] if cfg.comm_range is not None else []
    extra += [] if cfg.skip else ["no skip connection"]
    return (what + "".join(f", {e}" for e in extra)
            + f", lr {cfg.lr:g}, entropy {cfg.entropy_coef:g} -> {cfg.entropy_end} by {cfg.entropy_until:.0%}")


def task_facts(section: str) -> dict[str, Any]:
    """What the tables say of a junction section's task: its size, cars, steps, view and arrivals."""
    core = TASKS[section].batched(1).core
    return {k: getattr(core, k) for k in ("size", "num_agents", "max_steps", "vision", "see_routes", "random_slots",
                                          "arrival_prob_min", "arrival_prob_max")}


def _lstm_every_slot(cell, inp, state, alive):
    """The LSTM step before lstm_present: the cell on every slot, the absent ones zeroed after."""
    B, N = alive.shape
    h, m = cell(inp.reshape(B * N, -1), tuple(x.reshape(B * N, -1) for x in state))
    keep = alive.reshape(B * N, 1).to(h.dtype)
    return (h * keep).reshape(B, N, -1), (m * keep).reshape(B, N, -1)


def lstm_speed(updates: int = 3) -> dict[str, Any]:
    """CPU seconds per update of the hard junction's LSTM rows with the cells on the present slots
    (``lstm_present``) and on every slot, measured in one run: a fresh learner at curriculum 0.7, one
    warm-up update, then ``updates`` timed ones; the losses of both ways, which should agree."""
    from unittest import mock

    from course_lib.algos import commnet, tarmac

    out: dict[str, Any] = {"updates": updates, "commit": git_commit(), "machine": machine_info()}
    for label, cfg in CONFIGS["tj_hard"].items():
        row = {}
        for way, step in (("present", commnet.lstm_present), ("every", _lstm_every_slot)):
            with mock.patch.object(commnet, "lstm_present", step), mock.patch.object(tarmac, "lstm_present", step):
                learner = reinforce.Reinforce(TASKS["tj_hard"], cfg, reinforce.Parts())
                learner.follow_schedules()
                learner.env.set_curriculum(0.7)
                losses, start = [], None
                for i in range(updates + 1):
                    start = time.process_time() if i == 1 else start
                    loss = learner.loss(reinforce.rollout(learner.env, learner.model))
                    learner.learn(loss)
                    losses.append(round(loss.item(), 5))
                row[way] = {"cpu_s_per_update": (time.process_time() - start) / updates, "losses": losses}
        row["speedup"] = row["every"]["cpu_s_per_update"] / row["present"]["cpu_s_per_update"]
        out[label] = row
    return out


def build(runs: dict[str, Any], references: dict[str, Any], command: str,
          speed: dict[str, Any] | None = None) -> dict[str, Any]:
    summary = summarise(runs)
    head = headline(summary)
    met, seeds = targets(head, references), target_seeds(head, references)
    cpu: dict[str, float] = {}
    for key, run in runs.items():
        cpu[key.split("/")[0]] = cpu.get(key.split("/")[0], 0.0) + run["cpu_s"] / 3600
    result: dict[str, Any] = {"benchmark": "communication", **head,
                              "units": {"tj_*_failure_*": "percent of episodes with a collision at the final arrival "
                                                          "probability, greedy policy, mean over seeds; *_sampled: "
                                                          "actions sampled from the policy; None: not yet measured",
                                        "tj_*_cars_*": "cars through per episode, greedy policy, mean over seeds",
                                        "tj_*_seeds_*": "seeds measured",
                                        "tj_hard_success_*": "percent of episodes without a collision (as above)",
                                        "lever_*": "(#distinct - 1)/(m - 1); CommNet greedy pulls, independent "
                                                   "sampled pulls"},
                              "targets": met, "target_seeds": seeds,
                              "target_verdicts": {k: target_verdict(met[k], seeds[k]) for k in met},
                              "paper": PAPER, "tasks": {s: task_facts(s) for s in CONFIGS if s.startswith("tj_")},
                              "summary": summary,
                              "references": references, **({"lstm_speed": speed} if speed else {}),
                              "settings": {"version": BENCH_VERSION, "eval_episodes": EVAL_EPISODES,
                                           "eval_rounds": EVAL_ROUNDS, "eval_seed": EVAL_SEED,
                                           **{section: {label: {"describe": describe(section, label),
                                                                **dataclasses.asdict(cfg)}
                                                        for label, cfg in rows.items()}
                                              for section, rows in CONFIGS.items()}},
                              "cpu_hours": {k: round(v, 3) for k, v in cpu.items()},
                              "provenance": {"commit": git_commit(), "command": command, "machine": machine_info(),
                                             "written": time.strftime("%Y-%m-%d %H:%M:%S")},
                              "runs": runs}
    result["timing"] = {"cpu_hours": round(sum(cpu.values()), 3),
                        "run_wall_s": round(sum(r["wall_s"] for r in runs.values()), 1),
                        "note": "cpu_s: process CPU seconds of a run's training over all its sessions; wall_s: "
                                "wall seconds of its last session (training and evaluation)"}
    return result


# ------------------------------------------------------------------------ main
CHEAP = ("tj_easy_vision1", "levers", "predator_prey", "navigation", "tj_easy", "tj_ablation",
         "tj_routes", "tj_slots")  # minutes per run: first


def _jobs(sections: list[str], seeds: int) -> dict[str, tuple]:
    """Run key -> (section, label, seed), in the order they run: every seed of the cheap sections,
    then every row's seed 0 of the long ones (medium, hard, ablations), then their other seeds."""
    jobs = [(section, label, seed) for section in sections for seed in range(seeds) for label in CONFIGS[section]]
    order = {section: i for i, section in reversed(list(enumerate(CHEAP + SECTIONS)))}  # first place counts

    def phase(job):
        section, _, seed = job
        return (0 if section in CHEAP else 1 + min(seed, 1), order[section], seed)

    return {f"{section}/{label}/{seed}": (section, label, seed) for section, label, seed in sorted(jobs, key=phase)}


def keep_saved(runs: dict[str, Any], references: dict[str, Any], saved: dict[str, Any], redo: list[str]) -> None:
    """Add to ``runs`` the runs of a results file ``saved`` that are of this file's settings and not
    being redone (``redo``: key prefixes), and to ``references`` its sections' reference policies;
    what ``runs`` and ``references`` hold already stays.  Two bench processes on different sections can
    run at once: each keeps the other's runs when it writes the file."""
    for key, run in saved.get("runs", {}).items():
        section, label, seed = parse(key)
        current = label in CONFIGS.get(section, {}) and run.get("settings") == settings_of(section, label, seed)
        if current and key not in runs and not any(key.startswith(p) for p in redo):
            runs[key] = run
    if saved.get("settings", {}).get("version") == BENCH_VERSION:
        for section, refs in saved.get("references", {}).items():
            references.setdefault(section, refs)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds per row")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {SECTIONS}")
    ap.add_argument("--jobs", type=int, default=1, help="parallel processes (one torch thread each)")
    ap.add_argument("--redo", action="append", default=[],
                    help="forget the runs whose key starts with this, checkpoints included (repeatable)")
    ap.add_argument("--summary", action="store_true", help="only rebuild the results file and tables from saved runs")
    ap.add_argument("--speed", action="store_true", help="time the hard LSTM rows with lstm_present and without")
    ap.add_argument("--runs", default=str(RUNS), help="checkpoint folders")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--table", default=str(README))
    args = ap.parse_args(argv)
    _setup()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's background job starts with SIGINT ignored
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))  # kill <pid>: stop as Ctrl-C does
    sections = [s for s in args.sections.split(",") if s]
    bad = sorted(set(sections) - set(SECTIONS))
    if bad:
        ap.error(f"unknown sections {bad}; choose from {SECTIONS}")
    command = " ".join([Path(sys.executable).name, *sys.argv])
    out_path = Path(args.out)
    saved = json.loads(out_path.read_text()) if out_path.exists() else {}
    runs: dict[str, Any] = {}
    references: dict[str, Any] = {}
    keep_saved(runs, references, saved, args.redo)
    speed = lstm_speed() if args.speed else saved.get("lstm_speed")
    for key, job in _jobs(list(SECTIONS), args.seeds).items():  # --redo: their checkpoints too
        if any(key.startswith(p) for p in args.redo):
            shutil.rmtree(folder_of(args.runs, *job), ignore_errors=True)

    def save():
        nonlocal speed
        if out_path.exists():  # another bench process (other sections) may have finished runs since
            on_disk = json.loads(out_path.read_text())
            keep_saved(runs, references, on_disk, args.redo)
            speed = speed or on_disk.get("lstm_speed")
        result = build(runs, references, command, speed)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_suffix(f".{os.getpid()}.tmp")  # two bench processes never share it
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(out_path)
        Path(args.table).write_text(markdown(result))
        return result

    if args.summary:
        return save()
    for section in sections:
        if section != "levers" and section not in references:
            references[section] = reference_policies(section)
            print(f"{section} references: " + ", ".join(
                f"{k} failure {v.get('failure', float('nan')):.3f} cars {v.get('cars_completed', float('nan')):.2f}"
                for k, v in references[section].items()), flush=True)
    todo = {k: v for k, v in _jobs(sections, args.seeds).items() if k not in runs}
    print(f"{len(todo)} runs to do, {len(runs)} saved; checkpoints in {args.runs}", flush=True)
    save()

    def done(key: str, run: dict[str, Any]) -> None:
        runs[key] = run
        g = run["final"]["greedy"]
        brief = {k: round(g[k], 4) for k in ("failure", "success", "cars_completed", "distinct_score") if k in g}
        print(f"{key}: {brief} ({run['cpu_s']:.0f} CPU s, {run['wall_s']:.0f} s wall)", flush=True)
        save()

    if args.jobs <= 1:
        for key, job in todo.items():
            print(f"{key}: training ({describe(job[0], job[1])})", flush=True)
            try:
                done(key, train_run(*job, args.runs))
            except KeyboardInterrupt:
                print(f"stopped during {key}; its checkpoint is in {folder_of(args.runs, *job)}: call the bench "
                      "again to resume", flush=True)
                raise SystemExit(130) from None
    else:
        # No more runs in flight than workers (the executor would queue one more in advance): a stop
        # (Ctrl-C, or SIGTERM to the whole process group) lets the running runs save, and starts none.
        queue, running = list(todo.items()), {}
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            try:
                while queue or running:
                    while queue and len(running) < args.jobs:
                        key, job = queue.pop(0)
                        running[pool.submit(train_run, *job, args.runs)] = key
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        done(running.pop(future), future.result())
            except KeyboardInterrupt:
                print(f"stopping: {len(running)} running run(s) save their checkpoints; call the bench again to "
                      "resume", flush=True)
                wait(running)
                raise SystemExit(130) from None
    result = save()
    print(markdown(result))
    print(f"wrote {out_path} and {args.table}")
    return result


if __name__ == "__main__":
    main()
