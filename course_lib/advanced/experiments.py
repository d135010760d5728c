"""The measured experiments of notebooks/06_advanced, shared by the notebook and
``bench/advanced.py`` so both report the same numbers the same way.

Every ``run_*`` function trains one :class:`Config` of its learner over seeds (and its
variants: recurrent or not, each bonus, each communication round), with the ``parts``
given (the notebook passes the student's functions; the bench, the references), and
returns ``(curves, rows)``: the learning curves (one DataFrame, a ``method`` and a
``seed`` column) and one summary row per run with the fixed keys of :data:`ROW_KEYS`
(plus task-specific extras), measured with :func:`course_lib.evaluation.evaluate` after
training.  Time is measured twice: ``cpu_s`` (this process's CPU seconds; with one torch
thread it is what a quiet machine shows as wall time) and ``wall_s`` (wall clock,
inflated when the machine is shared).  :func:`comparison_table` turns the rows into the
notebook's final table.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from course_lib.envs.memory import LEFT, UP
from course_lib.evaluation import evaluate
from course_lib.policy import Policy
from course_lib.tasks import task as make_task

from . import curiosity, drqn, scaling

__all__ = ["ROW_KEYS", "count_parameters", "run_memory", "run_exploration", "run_scaling",
           "reference_rows", "comparison_table", "UpThenLeft", "METHODS"]

ROW_KEYS = ("task", "method", "seed", "success", "return", "parameters", "steps", "cpu_s", "wall_s")
MEMORY_TASK, EXPLORATION_TASK = "T-maze memory (CueCorridor)", "sparse goal grid 4x16"
METHODS = {"gnn": "GNN (GAT, k-nearest graph)", "attention": "all-to-all gated attention",
           "none": "no communication"}


def count_parameters(*modules: torch.nn.Module) -> int:
    """Trainable parameters of the modules together."""
    return int(sum(p.numel() for m in modules if m is not None for p in m.parameters() if p.requires_grad))


class _Clock:
    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu_s, self.wall_s = time.process_time() - self.cpu, time.perf_counter() - self.wall


def run_memory(config: drqn.Config, seeds: Iterable[int], parts: Any = None, eval_episodes: int = 500,
               task: Any = "cue_corridor", progress: bool = True) -> tuple[pd.DataFrame, list[dict]]:
    """DRQN (LSTM) against a feed-forward DQN (``config`` with ``recurrent`` True and False) on
    the T-maze, over ``seeds``; ``parts`` (your ``drqn_loss``) drive both."""
    curves, rows = [], []
    runs = [(recurrent, seed) for recurrent in (True, False) for seed in seeds]
    for recurrent, seed in tqdm(runs, desc="memory task: DRQN vs feed-forward", disable=not progress):
        with _Clock() as clock:
            run = drqn.train(task, replace(config, recurrent=recurrent, seed=seed), parts, progress=False)
        ev = evaluate(run.policy, run.task, episodes=eval_episodes, seed=50_000 + seed, num_envs=eval_episodes)
        method = "DRQN (LSTM)" if recurrent else "DQN (feed-forward)"
        curves.append(run.curve.assign(method=method, seed=seed))
        rows.append({"task": MEMORY_TASK, "method": method, "seed": seed, "success": ev.success,
                     "return": ev.summary()["return_per_agent"], "parameters": count_parameters(run.learner.q_net),
                     "steps": run.learner.step, "cpu_s": clock.cpu_s, "wall_s": clock.wall_s,
                     "correct_fraction": ev.summary()["correct_fraction"]})
    return pd.concat(curves, ignore_index=True), rows


def run_exploration(config: curiosity.Config, seeds: Iterable[int], parts: Any = None,
                    bonuses: Iterable[str] = curiosity.BONUSES, task: Any = "sparse_goal_grid",
                    progress: bool = True) -> tuple[pd.DataFrame, list[dict]]:
    """DQN without and with an ICM or RND bonus (``config`` with each of ``bonuses``) on the
    sparse goal grid, over ``seeds``; ``parts`` (your ``icm_losses``) drive the ICM runs.

    Extra row keys: ``first_goal_step`` (env steps until an agent first reached the goal;
    the budget where it never did) and ``found`` (whether it did)."""
    curves, rows = [], []
    runs = [(bonus, seed) for bonus in bonuses for seed in seeds]
    for bonus, seed in tqdm(runs, desc="sparse reward: DQN, + ICM, + RND", disable=not progress):
        with _Clock() as clock:
            run = curiosity.train(task, replace(config, bonus=bonus, seed=seed), parts, progress=False)
        ev = evaluate(run.policy, run.task, episodes=4, seed=60_000 + seed)  # deterministic: 4 say everything
        learner, budget = run.learner, run.learner.step
        method = "DQN" if bonus == "none" else f"DQN + {bonus.upper()}"
        curves.append(run.curve.assign(method=method, seed=seed))
        # plain DQN uses the task Q-network only; with a bonus, the explorer's second network and the bonus model count
        n_params = (count_parameters(learner.q_net.ext) if bonus == "none"
                    else count_parameters(learner.q_net, learner.bonus_model))
        found = bool(np.isfinite(learner.first_goal_step))
        rows.append({"task": EXPLORATION_TASK, "method": method, "seed": seed, "success": ev.success,
                     "return": ev.summary()["reached_fraction"], "parameters": n_params, "steps": budget,
                     "cpu_s": clock.cpu_s, "wall_s": clock.wall_s,
                     "first_goal_step": float(learner.first_goal_step) if found else float(budget), "found": found})
    return pd.concat(curves, ignore_index=True), rows


def run_scaling(config: scaling.Config, sizes: Iterable[int], seeds: Iterable[int] = (0,), parts: Any = None,
                comms: Iterable[str] = scaling.COMMS, progress: bool = True):
    """GNN (GAT on the k-nearest graph), all-to-all gated attention and no communication
    (``config`` with each of ``comms``) on neighbourhood majority with ``sizes`` agents;
    ``parts`` (your ``gat_forward`` and ``gated_attention``) drive the rounds.  Returns
    ``(curves, rows, runs)``; ``runs[(comm, N)]`` is the last seed's :class:`~course_lib.learning.Run`.

    Extra row keys: ``num_agents``, ``act_cpu_ms`` / ``act_wall_ms`` (one acting step for 64
    instances, graph construction included), ``graph_cpu_ms`` (of which building the
    k-nearest graph), ``messages`` (sender-receiver pairs per round), ``own_bit_return``
    (the best return without communication, on the same instances)."""
    curves, rows, last = [], [], {}
    warm_up = replace(config, total_steps=2 * config.batch_size, log_every=config.batch_size)
    scaling.train("neighbour_majority", warm_up, parts, progress=False)  # the first run should not pay torch's start-up
    runs = [(n, comm, seed) for n in sizes for comm in comms for seed in seeds]
    for n, comm, seed in tqdm(runs, desc="scaling: GNN vs all-to-all attention", disable=not progress):
        task = make_task("neighbour_majority", num_agents=n)
        with _Clock() as clock:
            run = scaling.train(task, replace(config, comm=comm, seed=seed), parts, progress=False)
        ev = evaluate(run.policy, task, episodes=1024, seed=70_000 + seed, num_envs=1024).summary()
        speed = scaling.time_per_step(run.learner.actor, task)
        last[(comm, n)] = run
        method = METHODS[comm]
        curves.append(run.curve.assign(method=method, seed=seed, num_agents=n))
        k = run.learner.env.core.k
        rows.append({"task": f"neighbourhood majority, N={n}", "method": method, "seed": seed,
                     "success": ev["success"], "return": ev["return_per_agent"],
                     "parameters": count_parameters(run.learner.actor), "steps": run.learner.step,
                     "cpu_s": clock.cpu_s, "wall_s": clock.wall_s, "num_agents": n,
                     "act_cpu_ms": 1e3 * speed["cpu_s"], "act_wall_ms": 1e3 * speed["wall_s"],
                     "graph_cpu_ms": 1e3 * speed["graph_cpu_s"], "messages": scaling.messages_per_step(comm, n, k),
                     "own_bit_return": ev["own_bit_right"]})
    return pd.concat(curves, ignore_index=True), rows, last


class UpThenLeft(Policy):
    """The best policy without memory on the T-maze: walk up, turn left at the junction."""

    name = "up, then always left"

    def act(self, obs, info=None, greedy=True):
        at_junction = np.asarray(obs)[..., 1] > 0.5
        return np.where(at_junction, LEFT, UP)


def reference_rows(episodes: int = 2000, seed: int = 0, scaling_sizes: Iterable[int] = (3, 10, 30)) -> list[dict]:
    """Untrained reference policies on the same tasks (no parameters, no training time):
    uniformly random actions, and the best policy without memory / communication."""
    rows = []
    random_maze = evaluate("random", "cue_corridor", episodes=episodes, seed=seed, on="single")
    rows.append({"task": MEMORY_TASK, "method": "random policy", "success": random_maze.success,
                 "return": random_maze.summary()["return_per_agent"]})
    maze = make_task("cue_corridor").single()
    no_memory = evaluate(UpThenLeft(maze.possible_agents, maze.core.obs_dim), "cue_corridor", episodes=episodes,
                         seed=seed, num_envs=episodes)
    rows.append({"task": MEMORY_TASK, "method": "up, then always left (best without memory)",
                 "success": no_memory.success, "return": no_memory.summary()["return_per_agent"]})
    grid = evaluate("random", "sparse_goal_grid", episodes=episodes, seed=seed, num_envs=episodes)
    rows.append({"task": EXPLORATION_TASK, "method": "random policy", "success": grid.success,
                 "return": grid.summary()["reached_fraction"]})
    for n in scaling_sizes:
        ev = evaluate("random", make_task("neighbour_majority", num_agents=n), episodes=1024, seed=70_000,
                      num_envs=1024)
        rows.append({"task": f"neighbourhood majority, N={n}", "method": "random policy",
                     "return": ev.summary()["return_per_agent"], "success": float(0.5 ** n)})
    return [{"parameters": 0, **r} for r in rows]


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """One line per (task, method): mean success and return over seeds (``± sd`` where
    there are several), trainable parameters, seeds, and training time per 1,000 env steps
    (CPU and wall seconds).  Reference rows (no training) show blanks for time."""
    df = pd.DataFrame(rows)
    out = []
    for (task, method), g in df.groupby(["task", "method"], sort=False):
        n = int(g["seed"].notna().sum()) if "seed" in g else 0
        line = {"task": task, "method": method, "seeds": n or None,
                "success": g["success"].mean(), "return": g["return"].mean(),
                "return sd": g["return"].std(ddof=1) if n > 1 else np.nan,
                "parameters": int(g["parameters"].iloc[0])}
        if n:
            line["cpu s / 1k steps"] = 1e3 * (g["cpu_s"] / g["steps"]).mean()
            line["wall s / 1k steps"] = 1e3 * (g["wall_s"] / g["steps"]).mean()
        if "first_goal_step" in g and g["first_goal_step"].notna().any():
            line["first goal (env steps)"] = g["first_goal_step"].mean()
        out.append(line)
    return pd.DataFrame(out)
