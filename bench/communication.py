"""Learned communication (CommNet, TarMAC and the CommNet paper's baselines) beside the papers' tables.

    .venv/bin/python bench/communication.py                       # every section, resuming what is saved
    .venv/bin/python bench/communication.py --sections tj_easy --seeds 1       # a quicker look
    nohup .venv/bin/python bench/communication.py --jobs 1 > bench_communication.log 2>&1 &
    .venv/bin/python bench/communication.py --redo tj_medium/CommNet          # train those runs again
    .venv/bin/python bench/communication.py --summary             # tables from the saved runs, no training
    .venv/bin/python bench/communication.py --speed --summary     # also time the LSTM agents' two ways (a minute)

Writes bench/results/communication.json and the markdown tables bench/README_communication.md;
notebooks/05_communication loads the results file.  Every run trains with a checkpoint folder
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_lib import papers  # noqa: E402
from course_lib.algos import levers, reinforce  # noqa: E402
from course_lib.envs.navigation import TUNED  # noqa: E402
from course_lib.evaluation import evaluate  # noqa: E402
from course_lib.learning import CheckpointError  # noqa: E402
from course_lib.policy import Policy  # noqa: E402
from course_lib.tasks import task  # noqa: E402
from course_lib.utils import machine_info  # noqa: E402

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


def parse(key: str) -> tuple[str, str, int]:
    """A run key ``section/label/seed`` (a lever label holds a slash: ``CommNet/supervised``)."""
    section, rest = key.split("/", 1)
    label, seed = rest.rsplit("/", 1)
    return section, label, int(seed)


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
LABELS = {"CommNet": "CommNet", "TarMAC": "TarMAC", "NoComm": "NoComm (independent)",
          "FullyConnected": "fully connected", "Discrete": "discrete communication"}


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


def _pct(x: dict) -> str:
    return f"{100 * x['mean']:.1f} ± {100 * x['sd']:.1f}"


def _cpu_h(result: dict[str, Any], section: str) -> float:
    return result["cpu_hours"].get(section, 0.0)


def tj_table(result: dict[str, Any], section: str, title: str) -> list[str]:
    s, refs, paper = result["summary"].get(section, {}), result["references"].get(section, {}), PAPER.get(section, {})
    core = TASKS[section].batched(1).core
    metric = "success" if section == "tj_hard" else "failure"  # as the papers report them
    lines = [f"**{title}** ({core.size}x{core.size}, up to {core.num_agents} cars, {core.max_steps} steps, vision "
             f"{core.vision}{' with the routes of the cars in view' if core.see_routes else ''}"
             f"{', new cars in random free slots' if core.random_slots else ''}, arrival "
             f"probability {core.arrival_prob_min} -> {core.arrival_prob_max} over the first half of training, "
             f"evaluated at {core.arrival_prob_max}; {result['cpu_hours'].get(section, 0):.1f} CPU hours): failure = "
             "share of episodes with a collision, success = 100 − failure, 2,048 episodes per seed, mean ± sd over "
             "seeds. " + (f"Paper columns: {paper['source']}." if paper else ""), "",
             f"| model | settings | seeds | paper: failure % | paper: success % | ours: {metric} %, greedy | "
             f"ours: {metric} %, sampled | cars through (greedy) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label in CONFIGS[section]:
        row = s.get(label)
        cells = [LABELS.get(label, label), describe(section, label)]
        if row is None:
            lines.append("| " + " | ".join(cells + ["0", "–", "–", "not yet measured", "–", "–"]) + " |")
            continue
        lines.append("| " + " | ".join(cells + [
            str(row["greedy_failure"]["n"]), str(paper.get("failure", {}).get(label, "–")),
            str(paper.get("success", {}).get(label, "–")), _pct(row[f"greedy_{metric}"]),
            _pct(row[f"sampled_{metric}"]),
            f"{row['greedy_cars_completed']['mean']:.2f}"]) + " |")
    for kind, label in (("random", "random policy"), ("gas", "always gas"), ("noop", "always brake"),
                        ("heuristic", "scripted heuristic (sees the whole junction)")):
        if kind in refs:
            lines.append(f"| {label} | – | – | – | – | {100 * refs[kind][metric]:.1f} | – | "
                         f"{refs[kind]['cars_completed']:.2f} |")
    return lines + [""]


CURVE_POINTS = (0.1, 0.25, 0.5, 0.75, 1.0)  # fractions of a run's updates


def curves_of(result: dict[str, Any], section: str, label: str) -> list[dict[str, list]]:
    """The training curves of a row's seeds."""
    return [run["curve"] for key, run in result["runs"].items() if parse(key)[:2] == (section, label)]


def curve_at(curves: list[dict[str, list]], column: str, fraction: float) -> float:
    """``column`` of the curves at ``fraction`` of their runs, mean over the seeds."""
    return float(np.mean([c[column][max(round(fraction * len(c[column])) - 1, 0)] for c in curves]))


def curve_table(result: dict[str, Any], section: str, title: str) -> list[str]:
    """The learning curves of a table's rows in numbers: failure of the training episodes (sampled
    actions, at the arrival probability of the moment), mean over the seeds, at a few points of the run."""
    runs = {label: curves_of(result, section, label) for label in CONFIGS[section]}
    runs = {label: curves for label, curves in runs.items() if curves}
    if not runs:
        return []

    head = " | ".join(f"{f:.0%}" for f in CURVE_POINTS)
    lines = [f"**{title}: learning curves** (failure % of the training episodes, sampled actions, mean over the "
             "seeds, at a share of each run's updates; the arrival probability rises over the first half)", "",
             f"| model | seeds | {head} |", "|---|---:|" + "---:|" * len(CURVE_POINTS)]
    for label, curves in runs.items():
        cells = " | ".join(f"{100 * curve_at(curves, 'failure', f):.1f}" for f in CURVE_POINTS)
        lines.append(f"| {LABELS.get(label, label)} | {len(curves)} | {cells} |")
    first = next(iter(runs.values()))
    cells = " | ".join(f"{curve_at(first, 'arrival_prob', f):.3f}" for f in CURVE_POINTS)
    return lines + [f"| arrival probability | – | {cells} |", ""]


NOTES = """**How the settings were chosen** (pilots of at most 10 CPU minutes, seed 0, one process, on the
machine above; greedy failure at the final arrival probability, 1,024 episodes).  Speed, env steps per CPU
second with 256 episodes per update (hidden 64): easy CommNet 62-74k, NoComm 82-86k, TarMAC 36k; medium
CommNet (K = 2) 38k, NoComm 47k, fully connected 15k, discrete 23k, TarMAC 20k, LSTM CommNet 22k; hard
(LSTM, 128 episodes per update) TarMAC with 2 rounds 4.7k, before the LSTM cells ran on the present slots
only (the speed-up is measured below).  Easy, vision 1, 1,500 updates (7.7 M steps,
about 2 CPU minutes): with lr 3e-3 and entropy 0.02 CommNet (3 seeds), TarMAC and NoComm all end at 0.0%
failure with 7.17-7.35 cars through (heuristic 7.35), and lr 1e-3 stays at "always gas" (76%); so on the
kit's junction a car's 3x3 view suffices and messages are not needed.  Easy, vision 0, 1,500 updates: with
entropy 0.02 every model settles on "always gas" (76%); with 0.1 CommNet reaches 0.0% failure at 6.2 cars,
TarMAC 0.0% at 6.4 and NoComm 0.0% at 3.1 (it stands still), all still sharpening when the entropy bonus
reaches 0, hence 4,000 updates with the bonus at 0 from 60% on.  Medium, 1,200 updates (12 M steps, about
5.5 CPU minutes): CommNet 36% (entropy 0.1) or 34% (0.02), NoComm 36% (0.1), on a plateau after the
curriculum; lr 1e-3 (entropy 0.05) 38%, slower; hence lr 3e-3, entropy 0.1 -> 0 by 60%, and 6,000
updates.  Hard, TarMAC (LSTM, 2 rounds, hidden 64), 250 updates of 128 episodes (2.6 M steps, 9 CPU
minutes): 55% failure (45% success), falling; hence 3,000 updates.

**What the papers did differently.**  Far longer training: IC3Net's public script for the easy junction
(papers.IC3NET_TJ_EASY_SCRIPT) runs 2,000 epochs x 10 updates x 8,000 steps = 160 M env steps per run,
with 128-unit LSTM agents and RMSprop; the CommNet code's medium script (papers.COMMNET_TJ_MEDIUM_SCRIPT)
trains on 8.64 M episodes (346 M steps) with RMSprop and no entropy bonus.  Our easy runs take 20 M steps,
medium 61 M, hard 31 M.  IC3Net's easy
grid is 6x6 (ours 7x7, so that the one-way roads cross in the middle cell).  Our agents' hidden states
are 64 wide (128 in IC3Net) to fit the CPU budget.  Our evaluation is 2,048 fresh episodes per seed at the
final arrival probability, greedy and sampled; the papers report the success of the training episodes or
of sampled runs.

**What a car sees.**  The CommNet code builds its observation from MazeBase items: a car's 3x3 view lists
the attributes of every car in it, its route among them (games/Traffic.lua sets ``attr.route``), so its
cars can tell a car about to turn across them from one that is not.  IC3Net's junction (which the TarMAC
paper uses) shows only how many cars are in each cell.  The medium table uses the CommNet paper's view
(``see_routes=True``); easy (vision 0: nothing in view) and hard (the TarMAC paper's junction) show
occupancy.  The ``tj_routes`` table measures what the routes change at the ablations' budget.
"""


def easy_reading(result: dict[str, Any]) -> list[str]:
    """What the easy table says where failure alone does not rank the models: a model that brakes
    whenever unsure collides as rarely as one that knows, and gets fewer cars through."""
    models = {"CommNet": "commnet", "TarMAC": "tarmac", "NoComm": "nocomm"}
    fail = {m: result.get(f"tj_easy_failure_{k}") for m, k in models.items()}
    cars = {m: result.get(f"tj_easy_cars_{k}") for m, k in models.items()}
    heur = result["references"].get("tj_easy", {}).get("heuristic", {}).get("cars_completed")
    if None in fail.values() or heur is None or fail["NoComm"] > max(fail["CommNet"], fail["TarMAC"]):
        return []
    said = ", ".join(f"{m} {fail[m]:.1f}% at {cars[m]:.2f} cars" for m in models)
    return [f"**Easy, vision 0: without messages as safe, not as fast.** Greedy failure and cars through per "
            f"episode: {said} (scripted heuristic {heur:.2f}). A car that sees only its own cell and hears "
            "nobody learns to avoid collisions by braking often, so NoComm's failure is "
            "not above the others' (the target on failure alone is missed) while it gets "
            f"{100 * (1 - cars['NoComm'] / max(cars['CommNet'], cars['TarMAC'])):.0f}% fewer cars through. "
            "The papers' independent agents instead collide (CommNet paper: "
            f"{papers.TJ_EASY_FAILURE_PAPER['independent']}% failure), with the same "
            "reward weights (10 per collision, 0.01 tau per step); their papers do not report cars through.", ""]


def medium_reading(result: dict[str, Any]) -> list[str]:
    """Where the medium table's order comes from: the models' training failure at the end of the curriculum
    against each seed's greedy failure at the end (the spread decides how far 3 seeds rank them)."""
    labels = [label for label in CONFIGS["tj_medium"] if result["summary"].get("tj_medium", {}).get(label)]
    if "CommNet" not in labels or len(labels) < 2:
        return []
    cfg, core = CONFIGS["tj_medium"]["CommNet"], TASKS["tj_medium"].batched(1).core
    greedy = {label: result["summary"]["tj_medium"][label]["greedy_failure"] for label in labels}
    half = {label: 100 * curve_at(curves_of(result, "tj_medium", label), "failure", cfg.curriculum_until)
            for label in labels}
    end = {label: 100 * greedy[label]["mean"] for label in labels}
    first_half, first_end = min(half, key=half.get), min(end, key=end.get)

    def seeds(label):
        return " / ".join(f"{100 * v:.1f}" for v in greedy[label]["values"])

    said_half = ", ".join(f"{LABELS[label]} {half[label]:.1f}%" for label in labels)
    said_end = "; ".join(f"{LABELS[label]} {seeds(label)}" for label in labels)
    if first_half == "CommNet" and first_end != "CommNet":
        order = (f"CommNet fails least while the arrivals rise and is passed after them: {LABELS[first_end]} ends "
                 "lowest.")
    elif first_end == "CommNet":
        order = "CommNet ends lowest."
    else:
        order = f"{LABELS[first_half]} leads half-way and {LABELS[first_end]} ends lowest."
    others = [label for label in labels if label != "CommNet"]
    nearest = min(others, key=lambda label: abs(end[label] - end["CommNet"]))
    sd, distance = 100 * greedy["CommNet"]["sd"], abs(end[nearest] - end["CommNet"])
    caveat = (f" CommNet's seeds spread by {sd:.1f} points (sd), more than its distance to {LABELS[nearest]}: "
              f"{distance:.1f} points; three seeds do not separate the two." if sd > distance else "")
    script = papers.COMMNET_TJ_MEDIUM_SCRIPT
    code_episodes = script["epochs"] * script["updates_per_epoch"] * script["episodes_per_update"]
    our_episodes = cfg.total_steps // core.max_steps
    return [f"**Medium: how the order comes about.** Failure of the training episodes (sampled) when the arrival "
            f"probability reaches its final {core.arrival_prob_max:g}, at {cfg.curriculum_until:.0%} of the updates: "
            f"{said_half}. Greedy failure at the end, seed by seed: "
            f"{said_end}. {order}{caveat} The CommNet code trained its medium models on {code_episodes / 1e6:.2f} M "
            f"episodes, ours on {our_episodes / 1e6:.2f} M.", ""]


def slots_reading(result: dict[str, Any]) -> list[str]:
    """What the ``tj_slots`` row says of the paper's fully-connected baseline, once both rows are measured."""
    s = result["summary"]
    ours = s.get("tj_routes", {}).get("FullyConnected", {}).get("greedy_failure")
    code = s.get("tj_slots", {}).get(CODE_FC, {}).get("greedy_failure")
    commnet = s.get("tj_routes", {}).get("CommNet", {}).get("greedy_failure")
    if not (ours and code and commnet):
        return []

    def said(m):
        spread = f" ± {100 * m['sd']:.1f}" if m["n"] > 1 else ""
        return f"{100 * m['mean']:.1f}{spread}% ({m['n']} seed{'s' * (m['n'] > 1)})"

    verdict = ("the code's set-up fails more often than ours: ours is the stronger baseline, one reason our "
               "medium row sits far below the paper's" if code["mean"] > ours["mean"] else
               "the code's set-up does not fail more often than ours at this budget, so it does not explain the gap")

    return [f"**The fully-connected baseline, ours and the CommNet code's.** At the ablations' budget on the medium "
            f"junction with routes, greedy failure: ours {said(ours)}, the CommNet code's set-up {said(code)}, "
            f"CommNet {said(commnet)}. The CommNet code (`--fully_connected`, main.lua and train.lua) gives every car "
            "slot its own parameters except the encoder (its own action and value heads, its own weights in each "
            "module), and games/Traffic.lua seats a new car in a random free slot; ours shares the heads and seats a "
            "new car in the first free slot, so a slot's number says something about its car. The paper's "
            f"fully-connected row ({papers.TJ_MEDIUM_FAILURE_PAPER['fully connected']}% on medium, CommNet "
            f"{papers.TJ_MEDIUM_FAILURE_PAPER['CommNet']}%) comes from that set-up. Here {verdict}.", ""]


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


def speed_reading(result: dict[str, Any]) -> list[str]:
    """The ``--speed`` measurement in a sentence: each LSTM row's CPU s per update both ways."""
    speed = result.get("lstm_speed")
    if not speed:
        return []

    def said_row(label, row):
        losses = "equal" if row["every"]["losses"] == row["present"]["losses"] else "differ"
        return (f"{label} {row['every']['cpu_s_per_update']:.2f} -> {row['present']['cpu_s_per_update']:.2f} "
                f"({row['speedup']:.2f}x, losses {losses})")

    said = "; ".join(said_row(label, row) for label, row in speed.items() if isinstance(row, dict) and "speedup" in row)
    return [f"**LSTM agents on the present slots** (`--speed`, commit {speed['commit']}): CPU seconds per update of "
            f"128 hard-junction episodes, the cell on every slot -> on the present slots only (`lstm_present`): "
            f"{said}. The hard runs of seed 0 were resumed across that change, so their CPU hours mix both speeds.",
            ""]


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = ["Learned communication (`bench/communication.py`, results in `bench/results/communication.json`, "
             f"commit {result['provenance']['commit']}). Rows marked *not yet measured* have no finished run yet "
             "(the bench resumes them).", ""]
    for section, title in (("tj_easy", "Traffic junction, easy, vision 0 (IC3Net's run script)"),
                           ("tj_easy_vision1", "Traffic junction, easy, vision 1 (notebook 05's junction)"),
                           ("tj_medium", "Traffic junction, medium"), ("tj_hard", "Traffic junction, hard")):
        lines += tj_table(result, section, title)
    lines += tj_table(result, "tj_ablation", "Ablations on the medium junction, cars seeing occupancy only")
    lines += tj_table(result, "tj_routes", "Ablation: the routes of the cars in view (medium, the ablations' budget)")
    lines += tj_table(result, "tj_slots", "The fully-connected baseline as the CommNet code runs it (random car "
                                          "slots, a head per slot; medium with routes, the ablations' budget)")
    for section, title in (("tj_easy", "Easy, vision 0"), ("tj_medium", "Medium"), ("tj_hard", "Hard")):
        lines += curve_table(result, section, title)
    lines += ["**Targets of issue 20** (`target_verdicts` in the JSON): " + "; ".join(
        f"{k}: {v}" for k, v in result["target_verdicts"].items()) + ".", ""]
    lines += easy_reading(result)
    lines += medium_reading(result)
    lines += slots_reading(result)
    lines += speed_reading(result)
    lev = s.get("levers", {})
    if lev:
        lines += ["**Lever pulling** (CommNet paper, Table 1): 5 of 500 agents, 5 levers; score "
                  "(#distinct − 1)/(m − 1) on 8,192 fresh rounds, greedy / sampled pulls; "
                  + describe("levers", "CommNet/supervised") + ".", "",
                  "| model | paper, supervised | ours, supervised | paper, REINFORCE | ours, REINFORCE |",
                  "|---|---:|---:|---:|---:|"]
        for method, name in (("NoComm", "independent"), ("CommNet", "CommNet")):
            cells = []
            for mode, pmode in (("supervised", "supervised"), ("reinforce", "REINFORCE")):
                r = lev.get(f"{method}/{mode}")
                cells += [f"{PAPER['levers'][f'{name}, {pmode}']:.2f}",
                          "–" if r is None else f"{r['greedy_distinct_score']['mean']:.3f} / "
                                                f"{r['sampled_distinct_score']['mean']:.3f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    for section, title in (("predator_prey", "Predator-prey"), ("navigation", "Cooperative navigation")):
        if section not in s:
            continue
        refs = result["references"].get(section, {})
        lines += [f"**{title}** ({describe(section, 'CommNet')}): return per agent and success of the greedy policy, "
                  "2,048 episodes.", "", "| model | return per agent | success % |", "|---|---:|---:|"]
        for method in ("NoComm", "CommNet"):
            if method in s[section]:
                r = s[section][method]
                lines.append(f"| {method} | {r['greedy_episode_return']['mean']:.2f} ± "
                             f"{r['greedy_episode_return']['sd']:.2f} | {_pct(r['greedy_success'])} |")
        for kind, label in (("random", "random policy"), ("noop", "no-op"), ("heuristic", "scripted heuristic")):
            if kind in refs:
                lines.append(f"| {label} | {refs[kind]['episode_return']:.2f} | {100 * refs[kind]['success']:.1f} |")
        lines.append("")
    lines += [NOTES]
    t = result["timing"]
    machine = result["provenance"]["machine"]
    lines.append(f"Measured on {machine['processor']} ({machine['cpus']} "
                 f"cores shared with other work), one torch thread per run: {t['cpu_hours']:.1f} CPU hours in all "
                 f"({', '.join(f'{k} {v:.1f}' for k, v in result['cpu_hours'].items())}); CPU time is what a quiet "
                 "machine would take.")
    return "\n".join(lines) + "\n"


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
                              "paper": PAPER, "summary": summary,
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
