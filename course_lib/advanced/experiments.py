"""The measured experiments of notebooks/06_advanced, shared by the notebook and
``bench/advanced.py`` so both report the same numbers the same way.

Every ``run_*`` function trains over seeds and returns ``(curves, rows)``: the learning
curves (one DataFrame, a ``method`` and a ``seed`` column) and one summary row per run
with the fixed keys of :data:`ROW_KEYS` (plus task-specific extras).  Time is measured
twice: ``cpu_s`` (this process's CPU seconds; with one torch thread it is what a quiet
machine shows as wall time) and ``wall_s`` (wall clock, inflated when the machine is
shared).  :func:`comparison_table` turns the rows into the notebook's final table.
"""
from __future__ import annotations

import time
from typing import Iterable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from course_lib.envs.memory import VecCueCorridor, VecSparseGoalGrid

from . import curiosity, drqn, scaling

__all__ = ["ROW_KEYS", "count_parameters", "run_memory", "run_exploration", "run_scaling",
           "reference_rows", "comparison_table"]

ROW_KEYS = ("task", "method", "seed", "success", "return", "parameters", "steps", "cpu_s", "wall_s")
MEMORY_TASK, EXPLORATION_TASK = "T-maze memory (CueCorridor)", "sparse goal grid 4x16"


def count_parameters(*modules: torch.nn.Module) -> int:
    """Trainable parameters of the modules together."""
    return int(sum(p.numel() for m in modules if m is not None for p in m.parameters() if p.requires_grad))


class _Clock:
    def __enter__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu_s, self.wall_s = time.process_time() - self.cpu, time.perf_counter() - self.wall


def run_memory(seeds: Iterable[int], episodes: int, eval_episodes: int = 500, progress: bool = True,
               **overrides) -> tuple[pd.DataFrame, list[dict]]:
    """DRQN (LSTM) against a feed-forward DQN on the T-maze, over ``seeds``."""
    curves, rows = [], []
    runs = [(recurrent, seed) for recurrent in (True, False) for seed in seeds]
    for recurrent, seed in tqdm(runs, desc="memory task: DRQN vs feed-forward", disable=not progress):
        cfg = drqn.DRQNConfig(recurrent=recurrent, episodes=episodes, seed=seed, progress=False, **overrides)
        with _Clock() as clock:
            df, net = drqn.train(cfg, return_model=True)
        ev = drqn.evaluate(net, cfg, episodes=eval_episodes, seed=50_000 + seed)
        curves.append(df)
        rows.append({"task": MEMORY_TASK, "method": df.method.iloc[0], "seed": seed, "success": ev["success"],
                     "return": ev["episode_return_mean"], "parameters": count_parameters(net),
                     "steps": int(df.step.iloc[-1]), "cpu_s": clock.cpu_s, "wall_s": clock.wall_s,
                     "correct_fraction": ev["correct_fraction"]})
    return pd.concat(curves, ignore_index=True), rows


def run_exploration(seeds: Iterable[int], total_steps: int, progress: bool = True,
                    bonuses: Iterable[str] = curiosity.BONUSES, **overrides) -> tuple[pd.DataFrame, list[dict]]:
    """DQN without and with an ICM or RND bonus on the sparse goal grid, over ``seeds``.

    Extra row keys: ``first_goal_step`` (env steps until an agent first reached the goal;
    the budget where it never did) and ``found`` (whether it did)."""
    curves, rows = [], []
    runs = [(bonus, seed) for bonus in bonuses for seed in seeds]
    for bonus, seed in tqdm(runs, desc="sparse reward: DQN, + ICM, + RND", disable=not progress):
        cfg = curiosity.ExplorerConfig(bonus=bonus, total_steps=total_steps, seed=seed, progress=False, **overrides)
        with _Clock() as clock:
            df, net = curiosity.train(cfg, return_model=True)
        ev = curiosity.greedy_success(net, cfg, seed=60_000 + seed)
        budget = total_steps * cfg.num_envs
        first = df.first_goal_step.iloc[-1]
        method = "DQN" if bonus == "none" else f"DQN + {bonus.upper()}"
        curves.append(df.assign(method=method))
        if bonus == "none":  # plain DQN uses the task Q-network only
            n_params = count_parameters(net.ext)
        else:  # the explorer's second Q-network and the bonus model count too
            obs_dim = cfg.height * cfg.size + 1
            n_params = count_parameters(net, curiosity._bonus_model(cfg, obs_dim, 5))
        rows.append({"task": EXPLORATION_TASK, "method": method, "seed": seed, "success": ev["success"],
                     "return": ev["reached_fraction"], "parameters": n_params, "steps": budget,
                     "cpu_s": clock.cpu_s, "wall_s": clock.wall_s,
                     "first_goal_step": float(first) if np.isfinite(first) else float(budget),
                     "found": bool(np.isfinite(first))})
    return pd.concat(curves, ignore_index=True), rows


def run_scaling(sizes: Iterable[int], updates: int, seeds: Iterable[int] = (0,), progress: bool = True,
                comms: Iterable[str] = ("gnn", "attention", "none"), **overrides):
    """GNN (GAT on the k-nearest graph), all-to-all gated attention and no communication on
    neighbourhood majority with ``sizes`` agents.  Returns ``(curves, rows, policies)``;
    ``policies[(comm, N)]`` is the last seed's trained policy.

    Extra row keys: ``num_agents``, ``act_cpu_ms`` / ``act_wall_ms`` (one acting step for 64
    instances, graph construction included), ``graph_cpu_ms`` (of which building the
    k-nearest graph), ``messages`` (sender-receiver pairs per round)."""
    curves, rows, policies = [], [], {}
    scaling.train(updates=2, log_every=1, progress=False)  # warm-up: the first run should not pay torch's start-up
    runs = [(n, comm, seed) for n in sizes for comm in comms for seed in seeds]
    for n, comm, seed in tqdm(runs, desc="scaling: GNN vs all-to-all attention", disable=not progress):
        cfg = scaling.ScalingConfig(comm=comm, num_agents=n, updates=updates, seed=seed, progress=False, **overrides)
        with _Clock() as clock:
            df, policy = scaling.train(cfg, return_model=True)
        game = scaling.NeighbourMajority(n, cfg.k)
        ev = scaling.evaluate_comm(policy, game, seed=70_000 + seed)
        speed = scaling.time_per_step(policy, game)
        policies[(comm, n)] = policy
        method = {"gnn": "GNN (GAT, k-nearest graph)", "attention": "all-to-all gated attention",
                  "none": "no communication"}[comm]
        curves.append(df.assign(method=method))
        rows.append({"task": f"neighbourhood majority, N={n}", "method": method, "seed": seed,
                     "success": ev["all_right"], "return": ev["return"], "parameters": count_parameters(policy),
                     "steps": int(df.step.iloc[-1]), "cpu_s": clock.cpu_s, "wall_s": clock.wall_s,
                     "num_agents": n, "act_cpu_ms": 1e3 * speed["cpu_s"], "act_wall_ms": 1e3 * speed["wall_s"],
                     "graph_cpu_ms": 1e3 * speed["graph_cpu_s"],
                     "messages": scaling.messages_per_step(comm, n, cfg.k), "own_bit_return": ev["own_bit_return"]})
    return pd.concat(curves, ignore_index=True), rows, policies


def reference_rows(episodes: int = 2000, seed: int = 0, scaling_sizes: Iterable[int] = (3, 10, 30)) -> list[dict]:
    """Untrained reference policies on the same tasks (no parameters, no training time):
    uniformly random actions, and the best policy without memory / communication."""
    rng = np.random.default_rng(seed)
    rows = []
    cfg = drqn.DRQNConfig()
    env = VecCueCorridor(episodes, seed=seed, **cfg.env_kwargs())
    ep = drqn.collect_episodes(env, drqn.FeedForwardQNetwork(env.obs_dim, env.n_actions), epsilon=1.0, rng=rng)
    rows.append({"task": MEMORY_TASK, "method": "random policy", "success": float(ep["success"].mean()),
                 "return": float(ep["episode_return_mean"].mean())})
    # without memory the best is a fixed arm: walk up, always turn left
    env.reset(seed=seed)
    for action in [1] * cfg.length + [3]:
        _, _, _, _, info = env.step(np.full((episodes, cfg.num_agents), action))
    rows.append({"task": MEMORY_TASK, "method": "up, then always left (best without memory)",
                 "success": float(info["success"].mean()), "return": float(info["episode_return_mean"].mean())})
    ecfg = curiosity.ExplorerConfig()
    grid = VecSparseGoalGrid(episodes, num_agents=ecfg.num_agents, size=ecfg.size, height=ecfg.height,
                             max_steps=ecfg.max_steps, seed=seed)
    grid.reset(seed=seed)
    for _ in range(ecfg.max_steps):
        _, _, _, _, info = grid.step(rng.integers(0, grid.n_actions, (episodes, ecfg.num_agents)))
    rows.append({"task": EXPLORATION_TASK, "method": "random policy", "success": float(info["success"].mean()),
                 "return": float(info["reached_fraction"].mean())})
    for n in scaling_sizes:
        game = scaling.NeighbourMajority(n)
        ev = scaling.evaluate_comm(scaling.CommPolicy("none"), game, seed=70_000)
        rows.append({"task": f"neighbourhood majority, N={n}", "method": "random policy",
                     "return": ev["random_return"], "success": float(0.5 ** n)})
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
