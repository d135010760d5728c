"""REINFORCE with a learned baseline, for communicating agents on the batched envs.

Taught in notebooks/05_communication (used by CommNet and TarMAC).  Read top to bottom:

1. :func:`reinforce_loss` -- policy gradient with the value head as baseline, the
   baseline's squared error and an entropy bonus, averaged over the agent-steps that
   count (student TODO);
2. :func:`rollout` -- one episode in every env of a batched twin, with the log-probs,
   values, entropies and the mask of agent-steps that count (present agents, episode
   not over yet);
3. :func:`returns_to_go` -- per-agent or team returns;
4. :class:`Config` and :func:`train` -- several episodes (one per env) per update,
   curriculum for the traffic junction, checkpoint save and resume;
5. :func:`evaluate` -- greedy or sampled episodes, task metrics averaged.

A model is any ``nn.Module`` with ``model(obs [B, N, D], alive [B, N]) -> (logits
[B, N, A], values [B, N])`` (:class:`~course_lib.algos.commnet.CommNet`,
:class:`~course_lib.algos.tarmac.TarMAC`).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = ["reinforce_loss", "rollout", "returns_to_go", "episode_metrics", "Config", "make_config",
           "train", "evaluate", "save_checkpoint", "load_checkpoint", "METRICS", "SETTINGS", "make_env",
           "describe"]

# task metrics reported by the course envs at the end of an episode
METRICS = ("success", "failure", "collisions", "cars_completed", "distinct_score",
           "final_mean_dist", "prey_caught")


# ----------------------------------------------------------------------- the loss
def reinforce_loss(log_probs: torch.Tensor, values: torch.Tensor, returns: torch.Tensor,
                   entropy: torch.Tensor, mask: torch.Tensor, value_coef: float = 0.03,
                   entropy_coef: float = 0.01) -> torch.Tensor:
    """REINFORCE with a learned baseline, averaged over the counted agent-steps.

    All inputs share one shape (e.g. ``[T, B, N]``): ``log_probs`` of the taken
    actions, the baseline ``values``, the ``returns`` to go, the policy ``entropy`` and a
    0/1 ``mask``.  With ``A = returns - values`` treated as a constant (no gradient
    through the baseline into the policy term) and means over the mask::

        loss = -mean(log_probs * A) + value_coef * mean((returns - values)^2)
               - entropy_coef * mean(entropy)

    Taught in notebooks/05_communication.
    """
    mask = mask.to(log_probs.dtype)
    count = mask.sum().clamp(min=1.0)
    advantage = (returns - values).detach()
    policy_loss = -(log_probs * advantage * mask).sum() / count
    value_loss = ((returns - values) ** 2 * mask).sum() / count
    entropy_bonus = (entropy * mask).sum() / count
    return policy_loss + value_coef * value_loss - entropy_coef * entropy_bonus


# --------------------------------------------------------------------- rollouts
def _alive(info: dict, obs: np.ndarray) -> np.ndarray:
    """Which agent slots are present: ``info["active"]`` where the env has it, else all."""
    return np.asarray(info.get("active", np.ones(obs.shape[:2], dtype=bool)), dtype=bool)


def _new_agents(env, alive: np.ndarray) -> np.ndarray:
    """``[B, N]``: the slot holds an agent in its first step.  Only the traffic junction
    refills slots (a car that arrives has ``tau == 0``); elsewhere agents live all episode."""
    tau = getattr(env.core, "tau", None)
    return alive & (tau == 0) if tau is not None else np.zeros_like(alive)


def horizon(env) -> int:
    """The longest episode of a batched course env (1 for one-step games)."""
    return int(getattr(env.core, "max_steps", 1))


def rollout(env, model: nn.Module, greedy: bool = False, record_attention: bool = False) -> dict[str, Any]:
    """One episode in each of the ``B`` envs of a batched twin (reset first).

    Returns tensors ``[T, B, N]``: ``log_probs``, ``values``, ``entropy``, ``rewards``,
    ``mask`` (agent present and its env's episode not over), and ``episodes``: the
    env's end-of-episode ``info`` (one dict per step, read where ``info["done"]``).
    With ``record_attention`` the model's ``last_attention`` is stored per step too.
    """
    obs, info = env.reset()
    running = np.ones(env.num_envs, dtype=bool)
    out: dict[str, list] = {k: [] for k in ("log_probs", "values", "entropy", "rewards", "mask",
                                            "starts", "alive", "attention", "obs")}
    episodes = []
    for _ in range(horizon(env)):
        alive = _alive(info, obs)
        logits, values = model(torch.as_tensor(obs), torch.as_tensor(alive))
        dist = torch.distributions.Categorical(logits=logits)
        actions = logits.argmax(-1) if greedy else dist.sample()
        counted = alive & running[:, None]
        out["log_probs"].append(dist.log_prob(actions))
        out["values"].append(values)
        out["entropy"].append(dist.entropy())
        out["mask"].append(torch.as_tensor(counted, dtype=torch.float32))
        out["starts"].append(torch.as_tensor(_new_agents(env, alive), dtype=torch.float32))
        if record_attention:
            out["alive"].append(alive)
            out["obs"].append(obs)
            out["attention"].append(getattr(model, "last_attention", None))
        obs, rewards, _, _, info = env.step(actions.numpy())
        out["rewards"].append(torch.as_tensor(rewards * counted))
        episodes.append({k: v for k, v in info.items() if k != "final_obs"} | {"counted": running.copy()})
        running &= ~info["done"]
        if not running.any():
            break
    result = {k: torch.stack(v) for k, v in out.items() if v and isinstance(v[0], torch.Tensor)}
    if record_attention:
        result.update(alive=np.stack(out["alive"]), obs=np.stack(out["obs"]), attention=out["attention"])
    result["episodes"] = episodes
    return result


def returns_to_go(rewards: torch.Tensor, gamma: float = 1.0, team: bool = False,
                  starts: torch.Tensor | None = None) -> torch.Tensor:
    """``G_t = r_t + gamma G_{t+1}`` per agent slot (``[T, B, N]``).

    ``starts [T, B, N]`` marks where a new agent takes over a slot (traffic junction): the
    return of the car before it stops there.  ``team`` sums the rewards over the agents
    first and gives every agent the team's return."""
    r = rewards.sum(dim=-1, keepdim=True).expand_as(rewards) if team else rewards
    out = torch.zeros_like(r)
    running = torch.zeros_like(r[0])
    for t in range(r.shape[0] - 1, -1, -1):
        if starts is not None and not team and t + 1 < r.shape[0]:
            running = running * (1.0 - starts[t + 1])
        running = r[t] + gamma * running
        out[t] = running
    return out


def episode_metrics(episodes: list[dict]) -> dict[str, float]:
    """Mean return and task metrics over the episodes that ended in a rollout."""
    values: dict[str, list] = {}
    for info in episodes:
        ended = info["done"] & info["counted"]
        if not ended.any():
            continue
        values.setdefault("episode_return", []).extend(info["episode_return_mean"][ended].tolist())
        values.setdefault("team_return", []).extend(info["team_return"][ended].tolist())
        for key in METRICS:
            if key in info:
                values.setdefault(key, []).extend(np.asarray(info[key], dtype=float)[ended].tolist())
    return {k: float(np.mean(v)) for k, v in values.items()}


# ------------------------------------------------------------------- training
@dataclass
class Config:
    """REINFORCE with a baseline; one episode per env of the batched twin per update."""

    updates: int = 500            # gradient steps (episodes = updates x num_envs)
    lr: float = 3e-3              # Adam
    gamma: float = 1.0            # undiscounted returns, as in CommNet
    value_coef: float = 0.03      # weight of the baseline's squared error (CommNet's alpha)
    entropy_coef: float = 0.01    # entropy bonus (at the start)
    entropy_end: float | None = None  # anneal the bonus linearly to this by the last update (None: constant)
    grad_clip: float = 1.0        # max gradient norm
    team_reward: bool = False     # True: every agent gets the team's summed return
    reward_scale: float = 1.0     # rewards are multiplied by this (keeps returns near 1 for Adam and the entropy bonus)
    curriculum_until: float = 0.0  # ramp env.set_curriculum from 0 to 1 over this fraction of updates
    log_every: int = 25           # updates between logged rows
    eval_episodes: int = 0        # greedy episodes per logged row (0: log the training episodes only)
    seed: int = 0


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    update: int, history: list[dict], config: Config, env=None) -> None:
    """Everything needed to resume training exactly: weights, optimiser, update count,
    history, and the torch and env random states."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "update": update,
             "history": history, "config": asdict(config), "torch_rng": torch.get_rng_state()}
    if env is not None:
        state["env_rng"] = env.core.rng.bit_generator.state
    torch.save(state, path)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    env=None):
    """Load a checkpoint into ``model`` (and ``optimizer``, ``env``'s generator); returns
    ``(update, history)``."""
    state = torch.load(Path(path), weights_only=False)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if env is not None and "env_rng" in state:
        env.core.rng.bit_generator.state = state["env_rng"]
    return int(state["update"]), list(state["history"])


def make_config(config: Config | None = None, **overrides) -> Config:
    """``config`` (default :class:`Config`) with ``overrides``; unknown names are an error."""
    fields = asdict(config or Config())
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise TypeError(f"unknown REINFORCE setting(s) {unknown}; the settings are {sorted(fields)}")
    return Config(**{**fields, **overrides})


def train(env, model: nn.Module, config: Config | None = None, *, progress: bool = True,
          checkpoint: str | Path | None = None, checkpoint_every: int = 100, label: str = "",
          **overrides) -> pd.DataFrame:
    """Train ``model`` on the batched env ``env`` with REINFORCE and a learned baseline.

    Every update runs one episode in each env (``env.num_envs`` episodes), then one
    gradient step.  Returns one row per ``log_every`` updates: ``update``, ``episodes``,
    ``episode_return`` and the task metrics of the training episodes (``eval_*`` for
    greedy evaluation episodes when ``eval_episodes > 0``), ``loss``, ``entropy``,
    ``arrival_prob`` (traffic junction), ``sps`` (env steps per second of wall time, all
    envs) and ``sps_cpu`` (per second of this process's CPU time).
    With ``checkpoint`` the run is saved every ``checkpoint_every`` updates and at the
    end, and resumed from there if the file exists.
    Taught in notebooks/05_communication.
    """
    from tqdm.auto import tqdm

    cfg = make_config(config, **overrides)
    torch.manual_seed(cfg.seed)
    env.reset(seed=cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start_update, history = 0, []
    if checkpoint is not None and Path(checkpoint).exists():
        start_update, history = load_checkpoint(checkpoint, model, optimizer, env)
    steps, start, start_cpu = 0, time.perf_counter(), time.process_time()
    bar = tqdm(range(start_update + 1, cfg.updates + 1), disable=not progress, desc=label or "REINFORCE")
    for update in bar:
        if cfg.curriculum_until > 0 and hasattr(env, "set_curriculum"):
            env.set_curriculum((update - 1) / max(cfg.curriculum_until * cfg.updates, 1))
        frac = (update - 1) / max(cfg.updates - 1, 1)
        entropy_coef = cfg.entropy_coef if cfg.entropy_end is None else \
            cfg.entropy_coef + frac * (cfg.entropy_end - cfg.entropy_coef)
        batch = rollout(env, model)
        steps += batch["rewards"].shape[0] * env.num_envs
        returns = returns_to_go(batch["rewards"] * cfg.reward_scale, cfg.gamma, cfg.team_reward, batch["starts"])
        loss = reinforce_loss(batch["log_probs"], batch["values"], returns, batch["entropy"],
                              batch["mask"], cfg.value_coef, entropy_coef)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if update % cfg.log_every == 0 or update == cfg.updates:
            mask = batch["mask"]
            row = {"update": update, "episodes": update * env.num_envs,
                   **episode_metrics(batch["episodes"]), "loss": loss.item(),
                   "entropy": float((batch["entropy"].detach() * mask).sum() / mask.sum().clamp(min=1)),
                   "sps": steps / max(time.perf_counter() - start, 1e-9),
                   "sps_cpu": steps / max(time.process_time() - start_cpu, 1e-9)}
            if hasattr(env, "arrival_prob"):
                row["arrival_prob"] = env.arrival_prob
            if cfg.eval_episodes > 0:
                row.update({f"eval_{k}": v for k, v in evaluate(env, model, cfg.eval_episodes).items()})
            history.append(row)
            bar.set_postfix(ret=f"{row.get('episode_return', float('nan')):.2f}")
            if checkpoint is not None and update % checkpoint_every == 0:
                save_checkpoint(checkpoint, model, optimizer, update, history, cfg, env)
    if checkpoint is not None:
        save_checkpoint(checkpoint, model, optimizer, cfg.updates, history, cfg, env)
    return pd.DataFrame(history).assign(seed=cfg.seed)


# ------------------------------------------------------------ tasks and settings
# The settings the notebook and bench/communication.py train with, per task: Config
# fields plus the batch of envs (episodes per update) and the hidden width.  Tuned on
# the traffic junction (seed 0): a high entropy bonus annealed to 0 keeps the cars
# exploring "brake" long enough to learn when to yield; lr 3e-4 learned to brake for good.
SETTINGS: dict[str, dict[str, Any]] = {
    "traffic_junction_easy": dict(num_envs=32, hidden=64, updates=2000, lr=1e-3, entropy_coef=0.1,
                                  entropy_end=0.0, reward_scale=0.1, curriculum_until=0.5, log_every=25),
    "traffic_junction_medium": dict(num_envs=32, hidden=64, updates=1000, lr=1e-3, entropy_coef=0.1,
                                    entropy_end=0.0, reward_scale=0.1, curriculum_until=0.5, log_every=25),
    "predator_prey": dict(num_envs=32, hidden=64, updates=600, lr=1e-3, entropy_coef=0.05, entropy_end=0.0,
                          reward_scale=0.1, log_every=10),
    "navigation": dict(num_envs=32, hidden=64, updates=600, lr=1e-3, entropy_coef=0.05, entropy_end=0.0,
                       reward_scale=0.1, log_every=10),
}


def make_env(task: str, num_envs: int, seed: int | None = None, final: bool = False):
    """The batched env of a task of :data:`SETTINGS`: traffic junction easy / medium (IC3Net's
    versions, vision 1), predator-prey (7x7, 3 predators, vision 2), navigation (the tuned
    CommNet reproduction, ``navigation.TUNED``).  ``final`` sets the traffic junction's
    arrival probability to its maximum (where the papers evaluate)."""
    from course_lib.envs import VecCooperativeNavigation, VecPredatorPrey, VecTrafficJunction
    from course_lib.envs.navigation import TUNED

    if task.startswith("traffic_junction_"):
        env = VecTrafficJunction(num_envs, version=task.rsplit("_", 1)[1], seed=seed)
        if final:
            env.set_curriculum(1.0)
        return env
    if task == "predator_prey":
        return VecPredatorPrey(num_envs, seed=seed)
    if task == "navigation":
        return VecCooperativeNavigation(num_envs, seed=seed, **TUNED)
    raise ValueError(f"unknown task {task!r}; the tasks are {sorted(SETTINGS)}")


def describe(task: str) -> str:
    """One line on a task's env and training settings."""
    env, s = make_env(task, 1), SETTINGS[task]
    core = env.core
    if task.startswith("traffic_junction_"):
        what = (f"{core.size}x{core.size}, up to {core.num_agents} cars, {core.max_steps} steps, vision "
                f"{core.vision}, arrival probability {core.arrival_prob_min} -> {core.arrival_prob_max} over the "
                f"first {s['curriculum_until']:.0%} of training")
    elif task == "predator_prey":
        what = (f"{core.size}x{core.size}, {core.num_agents} predators, vision {core.vision}, "
                f"{core.max_steps} steps")
    else:
        what = (f"{core.num_agents} agents, spawn span {core.spawn_span}, vision {core.vision_radius}, "
                f"{core.max_steps} steps")
    return (f"{what}; {s['updates']} updates x {s['num_envs']} episodes, hidden {s['hidden']}, K = 2, "
            f"lr {s['lr']}, entropy {s['entropy_coef']} -> {s.get('entropy_end', s['entropy_coef'])}")


def evaluate(env, model: nn.Module, episodes: int = 256, greedy: bool = True) -> dict[str, float]:
    """Mean return and task metrics over at least ``episodes`` episodes (greedy by default).

    Runs whole batches of ``env.num_envs`` episodes on ``env`` at its current settings
    (e.g. arrival probability) and leaves the model in the mode it found it.
    """
    sums: dict[str, list] = {}
    done = 0
    with torch.no_grad():
        while done < episodes:
            batch = rollout(env, model, greedy=greedy)
            for k, v in episode_metrics(batch["episodes"]).items():
                sums.setdefault(k, []).append(v)
            done += env.num_envs
    return {k: float(np.mean(v)) for k, v in sums.items()}
