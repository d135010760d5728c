"""Reference policies for every course task: random, no-op and a scripted heuristic.

Used in notebooks/02-06 to draw the floor (random / no-op) and the ceiling (scripted
heuristic) beside every learning curve.

A policy is built for one environment, single (PettingZoo) or batched twin, and
called with the observation the env returned::

    env = VecTrafficJunction(64, seed=0)
    policy = make_policy("heuristic", env)
    obs, info = env.reset()
    obs, rew, term, trunc, info = env.step(policy(obs))   # actions [B, N]

    single = TrafficJunction()
    obs, infos = single.reset(seed=0)
    actions = make_policy("random", single, seed=0)(obs)   # {agent: action}

Heuristics are *scripted* with privileged access to the simulator state (the
``env.core`` arrays), so they are a ceiling, not something a decentralised learner
can necessarily reach:

* matrix games: every player plays its part of the joint action with the highest
  total payoff (the social optimum); two-step game: go to 2B, then (1, 1) -> 8.
* lever pulling: pull the lever of your rank among the drawn ids (score 1.0, what
  perfect communication achieves).
* grid world: agents are assigned greedily to the nearest remaining targets and walk
  to them.
* traffic junction: gas unless the next cell is occupied by a braking car or claimed
  by an older car (priority to the car that has waited longer); no collisions.
* predator-prey: predators take distinct cells next to the prey and walk there.
* cooperative navigation: step along the larger coordinate gap to the goal until
  within half a step.

:func:`evaluate_policy` runs a policy for a number of episodes and returns the mean
episode statistics (``team_return``, ``episode_return_mean``, task metrics).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.policy import Policy as BasePolicy

from .base import BatchedEnv, CoreBatchedEnv, CourseParallelEnv, make_rng
from .gridworld import GridWorldCore
from .levers import LeversCore
from .matrix_games import MatrixGameCore, TwoStepCore
from .navigation import NavigationCore
from .predator_prey import PredatorPreyCore
from .traffic_junction import TrafficJunctionCore

__all__ = [
    "Policy",
    "RandomPolicy",
    "NoOpPolicy",
    "HeuristicPolicy",
    "make_policy",
    "reference_policies",
    "heuristic_actions",
    "evaluate_policy",
]


# ----------------------------------------------------------------- policy classes
class Policy(BasePolicy):
    """A reference policy bound to one course environment (it may read ``env.core``):
    ``act`` gives actions ``[B, N]`` for every env of the core; ``policy({agent: obs})``
    answers the PettingZoo env (see :class:`course_lib.policy.Policy`)."""

    name = "policy"

    def __init__(self, env: Any, seed: int | None = None):
        if not isinstance(env, (CourseParallelEnv, CoreBatchedEnv)):
            raise TypeError(
                f"reference policies work with course_lib.envs environments; got {type(env).__name__}"
            )
        super().__init__(env.possible_agents, env.core.obs_dim)
        self.env = env
        self.core = env.core
        self.rng = make_rng(seed)

    def batch_actions(self, obs: Any = None) -> np.ndarray:  # pragma: no cover - abstract
        """Actions ``[B, N]`` for every env of the core."""
        raise NotImplementedError

    def act(self, obs: Any = None, info: Any = None, greedy: bool = True) -> np.ndarray:
        return self.batch_actions(obs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.core.name})"


class RandomPolicy(Policy):
    """Uniformly random actions (each agent within its own action space)."""

    name = "random"

    def batch_actions(self, obs=None):
        u = self.rng.random((self.core.num_envs, self.core.num_agents))
        return (u * self.core.n_actions[None, :]).astype(np.int64)


class NoOpPolicy(Policy):
    """The do-nothing action (stay / brake) for every agent."""

    name = "noop"

    def __init__(self, env, seed=None):
        super().__init__(env, seed)
        if self.core.noop_action is None:
            raise ValueError(f"{self.core.name} has no no-op action")

    def batch_actions(self, obs=None):
        return np.full((self.core.num_envs, self.core.num_agents), self.core.noop_action, dtype=np.int64)


class HeuristicPolicy(Policy):
    """The scripted heuristic of the task (see the module docstring)."""

    name = "heuristic"

    def __init__(self, env, seed=None):
        super().__init__(env, seed)
        if type(self.core) not in _HEURISTICS:
            raise ValueError(f"no heuristic for {self.core.name}")

    def batch_actions(self, obs=None):
        return heuristic_actions(self.core)


def make_policy(kind: str, env: Any, seed: int | None = None) -> BasePolicy:
    """The reference policy ``kind`` (``"random"``, ``"noop"`` or ``"heuristic"``) for ``env``:
    a course environment (single or batched) or an MPE task (mpe2's env or its twin)."""
    from .mpe_policies import POLICY_KINDS, is_mpe_env, mpe_policy

    if is_mpe_env(env):
        return mpe_policy(kind, env, seed=seed)
    kinds = {"random": RandomPolicy, "noop": NoOpPolicy, "heuristic": HeuristicPolicy}
    if kind not in kinds:
        raise ValueError(f"kind must be one of {list(POLICY_KINDS)}, got {kind!r}")
    return kinds[kind](env, seed=seed)


def reference_policies(env: Any, seed: int | None = None) -> dict[str, Policy]:
    """Every reference policy the task has: random, no-op (where one exists), heuristic."""
    out = {"random": RandomPolicy(env, seed)}
    if env.core.noop_action is not None:
        out["noop"] = NoOpPolicy(env, seed)
    out["heuristic"] = HeuristicPolicy(env, seed)
    return out


# ---------------------------------------------------------------------- heuristics
def _toward(delta: np.ndarray) -> np.ndarray:
    """Grid move (stay/up/down/left/right) that shrinks the larger of |d_row|, |d_col|."""
    dr, dc = delta[..., 0], delta[..., 1]
    vertical = np.abs(dr) >= np.abs(dc)
    move = np.where(vertical, np.where(dr < 0, 1, 2), np.where(dc < 0, 3, 4))
    return np.where((dr == 0) & (dc == 0), 0, move)


def _greedy_assign(cost: np.ndarray, valid_cols: np.ndarray) -> np.ndarray:
    """Greedy assignment ``[B, N]`` of rows to distinct columns by increasing cost.

    ``cost`` [B, N, K]; columns where ``valid_cols`` [B, K] is False are never used.
    When there are more rows than valid columns, the leftover rows get their
    cheapest valid column (shared).  Rows of envs without any valid column get 0.
    """
    B, N, K = cost.shape
    big = np.inf
    c = np.where(valid_cols[:, None, :], cost.astype(float), big)
    fallback = np.argmin(c, axis=2)
    out = np.full((B, N), -1, dtype=np.int64)
    rows = np.arange(B)
    for _ in range(min(N, K)):
        flat = np.argmin(c.reshape(B, -1), axis=1)
        i, k = np.divmod(flat, K)
        ok = np.isfinite(c[rows, i, k])
        out[rows[ok], i[ok]] = k[ok]
        c[rows[ok], i[ok], :] = big
        c[rows[ok], :, k[ok]] = big
    return np.where(out < 0, fallback, out)


def _matrix(core: MatrixGameCore) -> np.ndarray:
    welfare = core.payoffs.sum(axis=-1)
    best = np.unravel_index(int(np.argmax(welfare)), welfare.shape)
    return np.broadcast_to(np.array(best, dtype=np.int64), (core.num_envs, core.num_agents)).copy()


def _two_step(core: TwoStepCore) -> np.ndarray:
    # state 1: agent 1 picks 2B (action 1); in 2B both play action 1 -> 8
    return np.ones((core.num_envs, 2), dtype=np.int64)


def _levers(core: LeversCore) -> np.ndarray:
    return core.targets()


def _gridworld(core: GridWorldCore) -> np.ndarray:
    d = np.abs(core.pos[:, :, None, :] - core.targets[:, None, :, :]).sum(-1)  # [B, N, T]
    k = _greedy_assign(d, core.present)
    goal = np.take_along_axis(core.targets, k[..., None].repeat(2, -1), axis=1)
    acts = _toward(goal - core.pos)
    return np.where(core.present.any(axis=1)[:, None], acts, 0)


def _predator_prey(core: PredatorPreyCore) -> np.ndarray:
    B, N, S = core.num_envs, core.num_agents, core.size
    # chase the first live prey; candidate cells: the prey's cell and its 4 neighbours
    first = np.argmax(core.alive, axis=1)
    prey = core.prey[np.arange(B), first]  # [B, 2]
    offs = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])
    cand = prey[:, None, :] + offs[None]  # [B, 5, 2]
    inside = ((cand >= 0) & (cand < S)).all(-1)
    cost = np.abs(core.pred[:, :, None, :] - cand[:, None, :, :]).sum(-1)  # [B, N, 5]
    k = _greedy_assign(cost, inside)
    goal = cand[np.arange(B)[:, None], k]  # [B, N, 2]
    delta = goal - core.pred
    move = _toward(delta)
    # if the preferred cell holds another predator, try the other axis
    alt = np.where(np.abs(delta[..., 0]) >= np.abs(delta[..., 1]),
                   np.where(delta[..., 1] < 0, 3, np.where(delta[..., 1] > 0, 4, 0)),
                   np.where(delta[..., 0] < 0, 1, np.where(delta[..., 0] > 0, 2, 0)))
    moves = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])
    nxt = core.pred + moves[move]
    blocked = (nxt[:, :, None, :] == core.pred[:, None, :, :]).all(-1)
    blocked &= ~np.eye(N, dtype=bool)[None]
    move = np.where(blocked.any(-1), alt, move)
    return np.where(core.alive.any(axis=1)[:, None], move, 0)


def _navigation(core: NavigationCore) -> np.ndarray:
    delta = core.goal - core.pos  # (dx, dy)
    dx, dy = delta[..., 0], delta[..., 1]
    horizontal = np.abs(dx) >= np.abs(dy)
    move = np.where(horizontal, np.where(dx < 0, 3, 4), np.where(dy > 0, 1, 2))
    close = np.maximum(np.abs(dx), np.abs(dy)) <= core.step_size / 2
    return np.where(close, 0, move)


def _traffic(core: TrafficJunctionCore) -> np.ndarray:
    B, N = core.num_envs, core.num_agents
    act = core.active
    pos = core.cells()
    leaving = act & (core.progress + 1 >= core.route_len[core.route])
    nxt = np.where(leaving, -2 - np.arange(N)[None, :], core.next_cells())  # leaving never clashes
    prio = core.tau * (N + 1) + (N - np.arange(N))[None, :]  # older first, then lower slot
    higher = prio[:, None, :] > prio[:, :, None]  # [b, i, j]: j outranks i
    pair = act[:, :, None] & act[:, None, :] & ~np.eye(N, dtype=bool)[None]
    gas = act.copy()
    for _ in range(N + 1):
        tgt = np.where(gas, nxt, pos)
        clash = (tgt[:, :, None] == tgt[:, None, :]) & pair
        must_brake = gas & (clash & (~gas[:, None, :] | higher)).any(axis=2)
        if not must_brake.any():
            break
        gas &= ~must_brake
    return gas.astype(np.int64)


_HEURISTICS = {
    MatrixGameCore: _matrix,
    TwoStepCore: _two_step,
    LeversCore: _levers,
    GridWorldCore: _gridworld,
    PredatorPreyCore: _predator_prey,
    NavigationCore: _navigation,
    TrafficJunctionCore: _traffic,
}


def heuristic_actions(core) -> np.ndarray:
    """The scripted heuristic's actions ``[B, N]`` for a task core."""
    try:
        fn = _HEURISTICS[type(core)]
    except KeyError:
        raise ValueError(f"no heuristic for {getattr(core, 'name', type(core).__name__)}") from None
    return fn(core)


# ---------------------------------------------------------------------- evaluation
def evaluate_policy(env: Any, policy: Policy, num_episodes: int = 100,
                    seed: int | None = None, max_steps: int = 1_000_000) -> dict[str, float]:
    """Mean episode statistics of ``policy`` over at least ``num_episodes`` episodes.

    Works with a batched twin (fast; counts every episode that ends, so slightly more
    than ``num_episodes`` may be averaged) or a single env.  Returns
    ``team_return`` (summed over agents), ``episode_return_mean`` (averaged over
    agents), ``episode_length``, the task's metrics and ``episodes``.
    """
    keys = ["team_return", "episode_return_mean", "episode_length"] + list(env.core.metric_fill)
    stats: dict[str, list] = {k: [] for k in keys}
    if isinstance(env, BatchedEnv):
        obs, _ = env.reset(seed=seed)
        steps = 0
        while len(stats["team_return"]) < num_episodes and steps < max_steps:
            obs, _, _, _, info = env.step(policy(obs))
            steps += 1
            done = info["done"]
            if done.any():
                for k in keys:
                    stats[k].extend(np.asarray(info[k])[done].tolist())
    else:
        for ep in range(num_episodes):
            obs, _ = env.reset(seed=None if seed is None or ep else seed)
            while env.agents:
                obs, _, _, _, infos = env.step(policy(obs))
            last = infos[env.possible_agents[0]]
            for k in keys:
                stats[k].append(last[k])
    out = {k: float(np.mean(np.asarray(v, dtype=float))) for k, v in stats.items() if v}
    out["episodes"] = len(stats["team_return"])
    return out
