"""Curiosity bonuses for sparse rewards: ICM (Pathak et al. 2017) and RND (Burda et al. 2019),
on top of a DQN learner.  Taught in notebooks/06_advanced.

**ICM.** An encoder ``phi`` maps observations to features.  An *inverse model* predicts
the action from ``(phi(o), phi(o'))``, which shapes ``phi`` to keep what the agent can
influence.  A *forward model* predicts ``phi(o')`` from ``(phi(o), a)``; its error is the
intrinsic reward, large where the agent cannot yet predict the outcome of its action:

    L_I   = CE(inverse([phi(o); phi(o')]), a)                       (mean over the batch)
    L_F   = mean_b 1/2 ||forward([sg(phi(o)); onehot(a)]) - sg(phi(o'))||^2
    r_int = 1/2 ||forward([sg(phi(o)); onehot(a)]) - sg(phi(o'))||^2   (per transition)

``sg`` is the stop-gradient (``detach``): only the inverse loss trains the encoder, so the
features cannot collapse to make the forward model's job trivial.  The encoder ends in a
LayerNorm without parameters: features of a fixed scale, so the forward error cannot grow
just because the inverse model stretches the feature space.
Students write :func:`icm_losses` (TODO 4).

**RND.** A fixed, randomly initialised *target* network ``f`` and a trained *predictor*
``f_hat``; the bonus ``||f_hat(o') - f(o')||^2`` shrinks where the agent has been often
(a learned visit count).

:func:`train` is DQN on :class:`~course_lib.envs.memory.VecSparseGoalGrid` with two
Q-networks, as in the RND paper's two value heads: ``Q_ext`` learns the task reward and
``Q_int`` the bonus ``beta * r_int / mean_batch(r_int)`` (relative novelty, recomputed with
the current model for every sampled batch; ``beta`` annealed linearly to 0).  The explorer
acts epsilon-greedily on ``Q_ext + Q_int``; the task policy is greedy on ``Q_ext`` alone,
which learns off-policy from whatever the bonus made the explorer find.  Without a bonus
(``bonus="none"``) this is plain DQN: the explorer acts on ``Q_ext``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_lib.envs.memory import VecSparseGoalGrid
from course_lib.nets import mlp
from course_lib.training import linear_schedule

__all__ = ["ICM", "icm_losses", "RND", "rnd_bonus", "TwoHeadQ", "ExplorerConfig", "train",
           "greedy_success", "BONUSES"]

BONUSES = ("none", "icm", "rnd")


class ICM(nn.Module):
    """``encoder``: obs -> features ``[.., F]``; ``inverse``: ``[2F] -> n_actions`` logits;
    ``forward_model``: ``[F + n_actions] -> F``."""

    def __init__(self, obs_dim: int, n_actions: int, feature_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.n_actions, self.feature_dim = int(n_actions), int(feature_dim)
        self.encoder = nn.Sequential(mlp(obs_dim, [hidden], feature_dim),
                                     nn.LayerNorm(feature_dim, elementwise_affine=False))
        self.inverse = mlp(2 * feature_dim, [hidden], n_actions)
        self.forward_model = mlp(feature_dim + n_actions, [hidden], feature_dim)


def icm_losses(icm: ICM, obs: torch.Tensor, next_obs: torch.Tensor, actions: torch.Tensor):
    """ICM on a batch of transitions ``obs, next_obs [B, D]``, ``actions [B]`` (long).

    Returns ``(inverse_loss, forward_loss, intrinsic)``: two scalar tensors and the
    per-transition intrinsic reward ``[B]`` (no gradient).  The forward model sees the
    encoder's features detached, so only the inverse loss trains the encoder.
    Taught in notebooks/06_advanced.
    """
    phi, phi_next = icm.encoder(obs), icm.encoder(next_obs)
    logits = icm.inverse(torch.cat([phi, phi_next], dim=-1))
    inverse_loss = F.cross_entropy(logits, actions.long())
    one_hot = F.one_hot(actions.long(), icm.n_actions).float()
    predicted = icm.forward_model(torch.cat([phi.detach(), one_hot], dim=-1))
    error = 0.5 * ((predicted - phi_next.detach()) ** 2).sum(dim=-1)  # [B]
    return inverse_loss, error.mean(), error.detach()


class RND(nn.Module):
    """A frozen random ``target`` and a trained ``predictor`` (both obs -> ``[B, F]``)."""

    def __init__(self, obs_dim: int, feature_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.target = mlp(obs_dim, [hidden], feature_dim)
        self.predictor = mlp(obs_dim, [hidden, hidden], feature_dim)
        for p in self.target.parameters():
            p.requires_grad_(False)


def rnd_bonus(rnd: RND, next_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, intrinsic [B])``: the predictor's squared error on ``next_obs``."""
    error = ((rnd.predictor(next_obs) - rnd.target(next_obs)) ** 2).sum(dim=-1)
    return error.mean(), error.detach()


class TwoHeadQ(nn.Module):
    """``obs -> (q_ext, q_int)``, each ``[.., n_actions]``: two small Q-networks.

    Separate networks, so the large and ever-changing bonus values cannot disturb the
    features of the task values.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()
        self.ext = mlp(obs_dim, [hidden], n_actions)
        self.int = mlp(obs_dim, [hidden], n_actions)

    def forward(self, obs: torch.Tensor):
        return self.ext(obs), self.int(obs)


@dataclass
class ExplorerConfig:
    """Hyperparameters of :func:`train` (the defaults are the notebook's full run)."""

    bonus: str = "none"          # "none" (plain DQN), "icm" or "rnd"
    beta: float = 0.5            # weight of the relative bonus r_int / mean(r_int) at the start ...
    beta_fraction: float = 0.5   # ... annealed linearly to 0 over this share of training
    size: int = 16               # grid columns; start bottom-left, goal top-right
    height: int = 4              # grid rows
    max_steps: int = 40          # episode horizon
    num_agents: int = 2          # agents per grid (independent, one shared network)
    num_envs: int = 8            # parallel grids
    total_steps: int = 2000      # vectorised steps (x num_envs env steps)
    learning_starts: int = 50    # vectorised steps before the first update
    batch_size: int = 128        # agent transitions per update (one update per step)
    buffer_size: int = 50_000    # agent transitions kept
    lr: float = 1e-3             # Adam, both Q-networks
    bonus_lr: float = 1e-3       # Adam, ICM / RND
    gamma: float = 0.9           # discount; 0.9 keeps "stay" loops clearly worse than moving on
    eps_start: float = 1.0       # epsilon-greedy (same schedule for every bonus) ...
    eps_end: float = 0.05
    eps_fraction: float = 0.1    # ... annealed over this share of training
    target_every: int = 20       # updates between target-network copies
    hidden: int = 64             # Q-network width
    seed: int = 0                # torch, numpy and the env
    log_every: int = 100         # vectorised steps between logged rows
    progress: bool = True        # tqdm progress bar


def greedy_success(q_net: TwoHeadQ, cfg: ExplorerConfig, seed: int = 0) -> dict:
    """The task policy (greedy on ``Q_ext``) on fresh grids: ``success`` (every agent
    reached the goal) and ``reached_fraction``.  The task is deterministic, so a few
    grids say everything."""
    env = VecSparseGoalGrid(4, num_agents=cfg.num_agents, size=cfg.size, height=cfg.height,
                            max_steps=cfg.max_steps, seed=seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(cfg.max_steps):
        with torch.no_grad():
            actions = q_net(torch.as_tensor(obs))[0].argmax(-1).numpy()
        obs, _, _, _, info = env.step(actions)
        if info["done"].all():
            return {"success": float(info["success"].mean()), "reached_fraction": float(info["reached_fraction"].mean())}
    return {"success": 0.0, "reached_fraction": 0.0}


def _bonus_model(cfg: ExplorerConfig, obs_dim: int, n_actions: int):
    return {"icm": lambda: ICM(obs_dim, n_actions), "rnd": lambda: RND(obs_dim), "none": lambda: None}[cfg.bonus]()


def _intrinsic(cfg: ExplorerConfig, model, obs, next_obs, actions):
    """``(loss of the bonus model, intrinsic [B])`` for a batch."""
    if cfg.bonus == "icm":
        inverse_loss, forward_loss, r_int = icm_losses(model, obs, next_obs, actions)
        return inverse_loss + forward_loss, r_int  # disjoint parameters: no weighting needed
    return rnd_bonus(model, next_obs)


def train(config: ExplorerConfig | None = None, *, return_model: bool = False, **overrides):
    """DQN (+ an ICM or RND bonus) on :class:`VecSparseGoalGrid`; a DataFrame, one row per
    ``log_every`` vectorised steps (``(df, q_net)`` with ``return_model=True``).

    Columns: ``step`` (env steps), ``first_goal_step`` (env steps until an agent first
    reached the goal; NaN while it has not), ``train_success`` (share of the episodes that
    ended since the last row in which every agent reached the goal), ``eval_success``
    (task policy, greedy on ``Q_ext``), ``visited_fraction`` (cells any agent has been to),
    ``intrinsic`` (mean raw bonus of the last batch), ``loss/q``, ``loss/bonus``,
    ``epsilon``, ``beta``, ``sps`` (env steps per second, wall clock), ``bonus``, ``seed``.
    """
    cfg = ExplorerConfig(**{**asdict(config or ExplorerConfig()), **overrides})
    if cfg.bonus not in BONUSES:
        raise ValueError(f"bonus must be one of {BONUSES}, got {cfg.bonus!r}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    env = VecSparseGoalGrid(cfg.num_envs, num_agents=cfg.num_agents, size=cfg.size, height=cfg.height,
                            max_steps=cfg.max_steps, seed=cfg.seed)
    D, A = env.obs_dim, env.n_actions
    q_net = TwoHeadQ(D, A, cfg.hidden)
    target_net = copy.deepcopy(q_net)
    optimiser = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    model = _bonus_model(cfg, D, A)
    bonus_opt = torch.optim.Adam(model.parameters(), lr=cfg.bonus_lr) if model is not None else None
    buf = {"obs": np.zeros((cfg.buffer_size, D), np.float32), "next_obs": np.zeros((cfg.buffer_size, D), np.float32),
           "actions": np.zeros(cfg.buffer_size, np.int64), "rewards": np.zeros(cfg.buffer_size, np.float32),
           "dones": np.zeros(cfg.buffer_size, np.float32)}
    size = pos = updates = 0
    visited = np.zeros(D - 1, dtype=bool)
    first_goal, window, rows = np.nan, [], []
    q_loss, bonus_loss, r_int, beta = torch.zeros(()), torch.zeros(()), torch.zeros(1), cfg.beta
    obs, _ = env.reset(seed=cfg.seed)
    start = time.perf_counter()
    name = "DQN" if cfg.bonus == "none" else f"DQN + {cfg.bonus.upper()}"
    for t in tqdm(range(cfg.total_steps), desc=f"{name} seed {cfg.seed}", disable=not cfg.progress, leave=False):
        eps = linear_schedule(cfg.eps_start, cfg.eps_end, int(cfg.eps_fraction * cfg.total_steps), t)
        with torch.no_grad():
            q_ext, q_int = q_net(torch.as_tensor(obs))
            greedy = (q_ext + q_int if model is not None else q_ext).argmax(-1).numpy()
        actions = np.where(rng.random(greedy.shape) < eps, rng.integers(0, A, greedy.shape), greedy)
        next_obs, rewards, _, _, info = env.step(actions)
        final = info["final_obs"]
        live = obs[..., -1] == 0                        # agents still looking for the goal (all agents batched)
        n = int(live.sum())
        idx = (pos + np.arange(n)) % cfg.buffer_size
        buf["obs"][idx], buf["next_obs"][idx] = obs[live], final[live]
        buf["actions"][idx], buf["rewards"][idx] = actions[live], rewards[live]
        buf["dones"][idx] = final[live][:, -1]          # reaching the goal ends the agent's task
        pos, size = int((pos + n) % cfg.buffer_size), min(size + n, cfg.buffer_size)
        visited[final[..., :-1].reshape(-1, D - 1).argmax(-1)] = True
        if np.isnan(first_goal) and rewards.sum() > 0:
            first_goal = (t + 1) * cfg.num_envs
        window.extend(info["success"][info["done"]].tolist())
        obs = next_obs
        if t >= cfg.learning_starts and size >= cfg.batch_size:
            i = rng.integers(0, size, cfg.batch_size)
            b = {k: torch.as_tensor(v[i]) for k, v in buf.items()}
            with torch.no_grad():
                next_ext, next_int = target_net(b["next_obs"])
                keep = cfg.gamma * (1.0 - b["dones"])
                target_ext = b["rewards"] + keep * next_ext.max(-1).values
            q_ext, q_int = q_net(b["obs"])
            a = b["actions"][:, None]
            q_loss = F.smooth_l1_loss(q_ext.gather(1, a).squeeze(1), target_ext)
            if model is not None:
                bonus_loss, r_int = _intrinsic(cfg, model, b["obs"], b["next_obs"], b["actions"])
                beta = linear_schedule(cfg.beta, 0.0, int(cfg.beta_fraction * cfg.total_steps), t)
                target_int = beta * r_int / (r_int.mean() + 1e-8) + keep * next_int.max(-1).values
                q_loss = q_loss + F.smooth_l1_loss(q_int.gather(1, a).squeeze(1), target_int)
                bonus_opt.zero_grad()
                bonus_loss.backward()
                bonus_opt.step()
            optimiser.zero_grad()
            q_loss.backward()
            optimiser.step()
            updates += 1
            if updates % cfg.target_every == 0:
                target_net.load_state_dict(q_net.state_dict())
        if (t + 1) % cfg.log_every == 0 or t == cfg.total_steps - 1:
            rows.append({"step": (t + 1) * cfg.num_envs, "first_goal_step": first_goal,
                         "train_success": float(np.mean(window)) if window else np.nan,
                         "eval_success": greedy_success(q_net, cfg, seed=cfg.seed)["success"],
                         "visited_fraction": float(visited.mean()), "intrinsic": float(r_int.mean()),
                         "loss/q": float(q_loss.detach()), "loss/bonus": float(bonus_loss.detach()),
                         "epsilon": eps, "beta": beta if model is not None else 0.0,
                         "sps": (t + 1) * cfg.num_envs / (time.perf_counter() - start),
                         "bonus": cfg.bonus, "seed": cfg.seed})
            window = []
    df = pd.DataFrame(rows)
    return (df, q_net) if return_model else df
