"""Reference policies for simple_spread and simple_tag: the floor and the ceiling
of every MPE learning curve.

Taught in: notebooks/04_maddpg (baselines for the learning curves), 07_method_i.

Three kinds, for both tasks, discrete or continuous actions:

* ``random``: uniform actions (``Discrete(5)`` or ``Box(0, 1, (5,))``);
* ``noop``: action 0 (continuous: all zeros), the agents never move;
* ``heuristic``: a scripted controller that reads only the agent's own
  observation (and its index in mpe2's agent order).

  - simple_spread: every agent reconstructs all agents' and landmarks' positions
    relative to itself, picks the agent-to-landmark assignment with the least
    total distance (all N! permutations for N <= 6, greedy otherwise; all agents
    agree because they solve the same problem) and steers greedily to its
    landmark.  Discrete: a two-step look-ahead over mpe2's own dynamics
    (damping 0.25, dt 0.1): of the 25 two-action plans (then coasting), the
    one whose next six positions are closest to the landmark in summed
    distance; its first action is taken.  Continuous: the force that puts the
    *stopping point* (where the agent would come to rest coasting,
    ``pos + 0.1 v + 0.4 v'``) on the landmark.
  - simple_tag: predators (adversaries) steer, the same way, at the nearest
    prey's position led by its velocity; the prey flees along the sum of
    ``away / dist**2`` from every predator, pushed back towards the centre near the
    boundary (where mpe2 penalises it) and away from obstacles it is about to hit.

The policy functions take batched observations ``[B, N, obs_dim]`` (the twins'
layout, simple_tag padded) and return batched actions (``[B, N]`` ints, or
``[B, N, 5]`` float32).  :func:`course_lib.envs.policies.make_policy` wraps one for an environment (an
mpe2 parallel env or a batched twin) so that it also accepts mpe2's dict
observations ``{agent: obs}`` and returns mpe2's dict actions.
:func:`evaluate_mpe2` and :func:`evaluate_vec` run whole episodes and return
per-agent episode returns.  The floor/ceiling table (mpe2 and twin, same
episodes)::

    python -m course_lib.envs.mpe_policies --episodes 200 [--continuous]
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np

from course_lib.policy import Policy

__all__ = [
    "random_policy",
    "noop_policy",
    "spread_heuristic",
    "tag_heuristic",
    "MPEPolicy",
    "act_on_agent_dict",
    "mpe_policy",
    "is_mpe_env",
    "evaluate_mpe2",
    "evaluate_vec",
    "POLICY_KINDS",
]

POLICY_KINDS = ("random", "noop", "heuristic")

# mpe2 world constants used by the controllers
_DT, _DAMPING = 0.1, 0.25
_MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


# --------------------------------------------------------------- basic policies
def random_policy(obs: np.ndarray, *, continuous: bool = False,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Uniform random actions for batched ``obs`` ``[B, N, D]``."""
    rng = np.random.default_rng() if rng is None else rng
    B, N = obs.shape[:2]
    if continuous:
        return rng.random((B, N, 5), dtype=np.float32)
    return rng.integers(0, 5, size=(B, N))


def noop_policy(obs: np.ndarray, *, continuous: bool = False) -> np.ndarray:
    """Action 0 (no movement) for every agent."""
    B, N = obs.shape[:2]
    if continuous:
        return np.zeros((B, N, 5), dtype=np.float32)
    return np.zeros((B, N), dtype=np.int64)


# ------------------------------------------------------------------ steering
_PLANS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _plans(accel: float, horizon: int, lookahead: int) -> tuple[np.ndarray, np.ndarray]:
    """Displacements of every discrete action sequence of length ``horizon``
    (then coasting) at each of the next ``lookahead`` steps, and the
    displacement per unit of initial velocity.  Dynamics (mass 1, no contacts):
    ``p' = p + 0.1 v``, ``v' = 0.75 v + 0.1 * accel * move``."""
    key = (accel, horizon, lookahead)
    if key not in _PLANS:
        seqs = np.array(list(itertools.product(range(5), repeat=horizon)), dtype=np.int64)
        S = len(seqs)
        offsets = np.zeros((S, lookahead, 2))
        from_v0 = np.zeros(lookahead)
        p, v = np.zeros((S, 2)), np.zeros((S, 2))
        pv, vv = 0.0, 1.0  # response to the initial velocity
        for k in range(lookahead):
            p = p + _DT * v
            pv = pv + _DT * vv
            u = _MOVES[seqs[:, k]] if k < horizon else 0.0
            v = (1 - _DAMPING) * v + _DT * accel * u
            vv = (1 - _DAMPING) * vv
            offsets[:, k] = p
            from_v0[k] = pv
        _PLANS[key] = (seqs[:, 0], offsets, from_v0)
    return _PLANS[key]


def _steer(vel: np.ndarray, target: np.ndarray, accel: float, continuous: bool,
           horizon: int = 2, lookahead: int = 6) -> np.ndarray:
    """Greedy steering to ``target`` (position relative to the agent).

    ``vel`` and ``target`` are ``[..., 2]``.
    Discrete: a short receding-horizon plan: of all ``5**horizon`` action
    sequences (then coasting), the one whose positions over the next
    ``lookahead`` steps are closest to the target in summed distance (what the
    reward counts); its first action is taken.
    Continuous: the force (each axis in [-1, 1]) that puts the stopping point
    ``0.1 v + 0.4 v'`` (where the agent would come to rest, coasting) on the
    target, saturated.
    """
    if continuous:
        coast = _DT / _DAMPING  # coasting from velocity v' covers 0.4 v'
        v_des = (target - _DT * vel) / coast
        u = np.clip((v_des - (1 - _DAMPING) * vel) / (_DT * accel), -1.0, 1.0)
        act = np.zeros(vel.shape[:-1] + (5,), dtype=np.float32)
        act[..., 1] = np.maximum(-u[..., 0], 0.0)
        act[..., 2] = np.maximum(u[..., 0], 0.0)
        act[..., 3] = np.maximum(-u[..., 1], 0.0)
        act[..., 4] = np.maximum(u[..., 1], 0.0)
        return act
    first, offsets, from_v0 = _plans(float(accel), horizon, lookahead)
    # remaining displacement to the target at each lookahead step, per plan
    base = target[..., None, :] - from_v0[:, None] * vel[..., None, :]  # [..., K, 2]
    err = base[..., None, :, :] - offsets  # [..., S, K, 2]
    cost = np.sqrt(np.sum(np.square(err), axis=-1)).sum(axis=-1)  # [..., S]
    return first[np.argmin(cost, axis=-1)]


def _direction_action(direction: np.ndarray, continuous: bool) -> np.ndarray:
    """Push as hard as possible along ``direction`` ``[..., 2]``."""
    norm = np.linalg.norm(direction, axis=-1, keepdims=True)
    d = direction / np.maximum(norm, 1e-12)
    if continuous:
        act = np.zeros(direction.shape[:-1] + (5,), dtype=np.float32)
        act[..., 1] = np.maximum(-d[..., 0], 0.0)
        act[..., 2] = np.maximum(d[..., 0], 0.0)
        act[..., 3] = np.maximum(-d[..., 1], 0.0)
        act[..., 4] = np.maximum(d[..., 1], 0.0)
        return act
    return np.argmax(d @ _MOVES[1:].T, axis=-1) + 1


# -------------------------------------------------------------- simple_spread
_PERMS: dict[int, np.ndarray] = {}


def _assignment(dist: np.ndarray) -> np.ndarray:
    """Agent -> landmark assignment with the least total distance.

    ``dist`` ``[..., N(agents), N(landmarks)]``; returns ``[..., N]`` landmark indices.
    Exact over all permutations for N <= 6, greedy (closest pair first) beyond.
    """
    N = dist.shape[-1]
    if N <= 6:
        if N not in _PERMS:
            _PERMS[N] = np.array(list(itertools.permutations(range(N))), dtype=np.int64)
        perms = _PERMS[N]  # [P, N]
        cost = dist[..., np.arange(N), perms].sum(axis=-1)  # [..., P]
        return perms[np.argmin(cost, axis=-1)]
    d = dist.reshape(-1, N, N).copy()
    out = np.zeros((d.shape[0], N), dtype=np.int64)
    rows = np.arange(d.shape[0])
    for _ in range(N):
        flat = np.argmin(d.reshape(d.shape[0], -1), axis=1)
        a, lm = np.divmod(flat, N)
        out[rows, a] = lm
        d[rows, a, :] = np.inf
        d[rows, :, lm] = np.inf
    return out.reshape(dist.shape[:-1])


def spread_heuristic(obs: np.ndarray, *, continuous: bool = False) -> np.ndarray:
    """Scripted simple_spread policy: assign agents to landmarks, steer greedily.

    ``obs`` ``[B, N, 6N]`` (mpe2's layout: vel, pos, landmarks rel, others rel, comm);
    agent ``i`` of the batch uses only ``obs[:, i]`` and its index ``i``.
    """
    obs = np.asarray(obs, dtype=np.float64)
    B, N, D = obs.shape
    if D != 6 * N:
        raise ValueError(f"simple_spread obs for N={N} agents must have size {6 * N}, got {D}")
    vel = obs[..., 0:2]
    lm = obs[..., 4:4 + 2 * N].reshape(B, N, N, 2)  # [B, viewer, landmark, 2]
    others = obs[..., 4 + 2 * N:4 + 2 * N + 2 * (N - 1)].reshape(B, N, N - 1, 2)
    # every agent's position relative to the viewer, in agent order (self = 0)
    agents = np.zeros((B, N, N, 2))
    for i in range(N):  # N is small; this loop is over agents, not environments
        idx = [j for j in range(N) if j != i]
        agents[:, i, idx] = others[:, i]
    dist = np.linalg.norm(agents[:, :, :, None, :] - lm[:, :, None, :, :], axis=-1)  # [B,v,a,l]
    assign = _assignment(dist)  # [B, viewer, agent] -> landmark
    mine = assign[:, np.arange(N), np.arange(N)]  # [B, N]: viewer i's own landmark
    target = np.take_along_axis(lm, mine[..., None, None].repeat(2, axis=-1), axis=2)[:, :, 0]
    return _steer(vel, target, 5.0, continuous)


# ----------------------------------------------------------------- simple_tag
def tag_heuristic(obs: np.ndarray, *, num_adversaries: int = 3, num_good: int = 1,
                  num_obstacles: int = 2, continuous: bool = False,
                  lead: float = 0.3, margin: float = 0.6) -> np.ndarray:
    """Scripted simple_tag policy: predators chase the nearest prey, prey flees.

    ``obs`` ``[B, nAdv + nGood, D]`` in mpe2's agent order (adversaries first),
    padded with zeros where an agent's observation is shorter.  ``lead``: how
    far ahead (seconds) predators aim along the prey's velocity; ``margin``: the
    prey is pushed back towards the centre beyond this coordinate.
    """
    obs = np.asarray(obs, dtype=np.float64)
    nAdv, nG, nO = num_adversaries, num_good, num_obstacles
    nA = nAdv + nG
    B = obs.shape[0]
    if obs.shape[1] != nA:
        raise ValueError(f"expected {nA} agents in obs, got {obs.shape[1]}")
    vel, pos = obs[..., 0:2], obs[..., 2:4]
    obstacles = obs[..., 4:4 + 2 * nO].reshape(B, nA, nO, 2)
    s = 4 + 2 * nO
    others = obs[..., s:s + 2 * (nA - 1)].reshape(B, nA, nA - 1, 2)
    s += 2 * (nA - 1)
    acts = []
    # predators: others = other adversaries (nAdv-1) then the good agents; then good vels
    prey_rel = others[:, :nAdv, nAdv - 1:]  # [B, nAdv, nG, 2]
    prey_vel = obs[:, :nAdv, s:s + 2 * nG].reshape(B, nAdv, nG, 2)
    d = np.linalg.norm(prey_rel, axis=-1)
    k = np.argmin(d, axis=-1)[..., None, None].repeat(2, axis=-1)
    target = (np.take_along_axis(prey_rel, k, axis=2) + lead * np.take_along_axis(prey_vel, k, axis=2))[:, :, 0]
    acts.append(_steer(vel[:, :nAdv], target, 3.0, continuous))
    # prey: others = all adversaries then the other good agents
    pred_rel = others[:, nAdv:, :nAdv]  # [B, nG, nAdv, 2]
    d2 = np.maximum(np.sum(np.square(pred_rel), axis=-1, keepdims=True), 1e-6)
    flee = -np.sum(pred_rel / d2, axis=2)  # away from predators, nearer ones weigh more
    p = pos[:, nAdv:]
    over = np.abs(p) - margin
    flee = flee - np.sign(p) * np.where(over > 0, 40.0 * over, 0.0) * np.linalg.norm(flee, axis=-1, keepdims=True)
    if nO:
        ob = obstacles[:, nAdv:]  # [B, nG, nO, 2]
        od = np.linalg.norm(ob, axis=-1, keepdims=True)
        close = np.clip(0.45 - od, 0.0, None) / 0.2  # 0 beyond 0.45, grows as it nears (size 0.2+0.05)
        flee = flee - np.sum(ob / np.maximum(od, 1e-6) * close, axis=2) * np.linalg.norm(flee, axis=-1, keepdims=True)
    acts.append(_direction_action(flee, continuous))
    return np.concatenate(acts, axis=1)


# ------------------------------------------------------------ env-aware wrapper
def _describe(env: Any) -> dict[str, Any]:
    """Task, agent names, sizes and action kind of a batched twin or an mpe2 env."""
    if hasattr(env, "num_envs") and hasattr(env, "agent_names"):  # batched twin
        d = dict(task=env.name, names=list(env.agent_names), continuous=env.continuous_actions,
                 obs_sizes=[int(x) for x in env.obs_sizes])
        if env.name == "simple_tag_v3":
            d.update(num_adversaries=env.num_adversaries, num_good=env.num_good,
                     num_obstacles=env.num_obstacles)
        return d
    raw = getattr(env, "unwrapped", env)
    world = raw.world
    names = [a.name for a in world.agents]
    d = dict(task=raw.metadata.get("name"), names=names, continuous=raw.continuous_actions,
             obs_sizes=[int(raw.observation_space(n).shape[0]) for n in names])
    if d["task"] == "simple_tag_v3":
        n_adv = sum(bool(getattr(a, "adversary", False)) for a in world.agents)
        d.update(num_adversaries=n_adv, num_good=len(names) - n_adv, num_obstacles=len(world.landmarks))
    return d


def act_on_agent_dict(act: Callable[[np.ndarray], np.ndarray], names: list[str], obs: dict, width: int,
                      continuous: bool, dtype=np.float32) -> dict:
    """One mpe2 parallel-env step, ``{agent: observation}``, through a batched policy.

    ``act`` maps a [1, N, width] batch to [1, N] discrete or [1, N, 5] continuous
    actions; shorter observations are zero-padded, and agents absent from ``obs``
    (done) get no action.
    """
    batch = np.zeros((1, len(names), width), dtype=dtype)
    for i, name in enumerate(names):
        if name in obs:
            o = np.asarray(obs[name], dtype=dtype)
            batch[0, i, :o.shape[0]] = o
    acts = act(batch)[0]
    if continuous:
        return {n: acts[i].astype(np.float32) for i, n in enumerate(names) if n in obs}
    return {n: int(acts[i]) for i, n in enumerate(names) if n in obs}


class MPEPolicy(Policy):
    """A reference policy bound to one MPE task's layout: ``act(obs [B, N, D])`` gives
    batched actions; ``policy({agent: obs})`` answers mpe2's parallel env with
    ``{agent: action}`` (ints, or float32 ``(5,)`` arrays)."""

    def __init__(self, kind: str, task: str, names: list[str], *, continuous: bool,
                 obs_sizes: list[int], seed: int | None = None, **layout: int) -> None:
        if kind not in POLICY_KINDS:
            raise ValueError(f"unknown policy kind {kind!r}; choose from {POLICY_KINDS}")
        if task not in ("simple_spread_v3", "simple_tag_v3"):
            raise ValueError(f"no reference policies for task {task!r}")
        super().__init__(names, max(obs_sizes), continuous=continuous)
        self.kind = self.name = kind
        self.task, self.names = task, list(names)
        self.obs_sizes = list(obs_sizes)
        self.layout = layout
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, info: Any = None, greedy: bool = True) -> np.ndarray:
        """Batched actions for batched observations ``[B, N, D]``."""
        obs = np.asarray(obs)
        if self.kind == "random":
            return random_policy(obs, continuous=self.continuous, rng=self.rng)
        if self.kind == "noop":
            return noop_policy(obs, continuous=self.continuous)
        if self.task == "simple_spread_v3":
            return spread_heuristic(obs, continuous=self.continuous)
        return tag_heuristic(obs, continuous=self.continuous, **self.layout)

    def __call__(self, obs: Any, info: Any = None, greedy: bool = True) -> Any:
        if isinstance(obs, dict):  # mpe2 observations are float64: keep them so
            return act_on_agent_dict(self.act, self.names, obs, self.obs_dim, self.continuous, dtype=np.float64)
        return self.act(obs)

    def __repr__(self) -> str:
        return f"MPEPolicy({self.kind!r}, {self.task!r}, continuous={self.continuous})"


def is_mpe_env(env: Any) -> bool:
    """An mpe2 environment or one of the batched MPE twins."""
    from course_lib.envs.mpe import _MPEVec

    return isinstance(env, _MPEVec) or hasattr(getattr(env, "unwrapped", env), "world")


def mpe_policy(kind: str, env: Any, *, seed: int | None = None) -> MPEPolicy:
    """Reference policy ``kind`` for an MPE env (use :func:`course_lib.envs.policies.make_policy`)."""
    d = _describe(env)
    layout = {k: d[k] for k in ("num_adversaries", "num_good", "num_obstacles") if k in d}
    return MPEPolicy(kind, d["task"], d["names"], continuous=d["continuous"],
                     obs_sizes=d["obs_sizes"], seed=seed, **layout)


# ----------------------------------------------------------------- evaluation
def evaluate_mpe2(env: Any, policy: Callable[[dict], dict], episodes: int,
                  seed: int = 0) -> np.ndarray:
    """Run ``episodes`` episodes of mpe2 parallel ``env`` (reset seeds ``seed, seed+1, ...``).

    Returns per-agent episode returns ``[episodes, N]`` (mpe2's agent order);
    the team return is ``.sum(axis=1)``.
    """
    names = list(env.possible_agents)
    out = np.zeros((episodes, len(names)))
    for e in range(episodes):
        obs, _ = env.reset(seed=seed + e)
        while env.agents:
            obs, rew, _, _, _ = env.step(policy(obs))
            for i, n in enumerate(names):
                out[e, i] += rew.get(n, 0.0)
    return out


def evaluate_vec(vec: Any, policy: Callable[[np.ndarray], np.ndarray], episodes: int,
                 seed: int = 0, *, mpe2_seeds: bool = False) -> np.ndarray:
    """Run ``episodes`` episodes of a batched twin, ``vec.num_envs`` at a time.

    Each round resets the batch (``reset(seed=seed + round)``, or with
    ``mpe2_seeds=True`` slot ``i`` of round ``r`` starts from mpe2's
    ``reset(seed=seed + r * num_envs + i)``, i.e. the same episodes as
    :func:`evaluate_mpe2`) and runs until every env has finished.  Returns
    per-agent returns ``[episodes, N]``.
    """
    B = vec.num_envs
    out: list[np.ndarray] = []
    rounds = -(-episodes // B)
    for r in range(rounds):
        if mpe2_seeds:
            obs, _ = vec.reset_from_seeds(range(seed + r * B, seed + (r + 1) * B))
        else:
            obs, _ = vec.reset(seed=seed + r)
        returns = np.full((B, vec.num_agents), np.nan)
        finished = np.zeros(B, dtype=bool)
        while not finished.all():
            obs, _, _, _, info = vec.step(policy(obs))
            new = info["done"] & ~finished
            returns[new] = info["episode_return"][new]
            finished |= info["done"]
        out.append(returns)
    return np.concatenate(out)[:episodes]


# ------------------------------------------------------------------------ CLI
def _main(argv: list[str] | None = None) -> None:
    """Team returns of the reference policies on mpe2 and on the twins."""
    import argparse
    import json
    import warnings

    from mpe2 import simple_spread_v3, simple_tag_v3

    from course_lib.envs.mpe import SimpleSpreadVec, SimpleTagVec

    ap = argparse.ArgumentParser(description=_main.__doc__)
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--continuous", action="store_true")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    E, c = args.episodes, args.continuous
    rows = {}
    for task, module, Vec in (("simple_spread_v3", simple_spread_v3, SimpleSpreadVec),
                              ("simple_tag_v3", simple_tag_v3, SimpleTagVec)):
        env = module.parallel_env(continuous_actions=c)
        vec = Vec(min(E, 200), continuous_actions=c)
        for kind in POLICY_KINDS:
            ref = evaluate_mpe2(env, mpe_policy(kind, env, seed=args.seed), E, seed=args.seed)
            twin = evaluate_vec(vec, mpe_policy(kind, vec, seed=args.seed), E, seed=args.seed, mpe2_seeds=True)
            rows[f"{task}/{kind}"] = {
                "mpe2_team_return": float(ref.sum(axis=1).mean()),
                "mpe2_team_return_sem": float(ref.sum(axis=1).std(ddof=1) / np.sqrt(E)),
                "twin_team_return": float(twin.sum(axis=1).mean()),
                "twin_team_return_sem": float(twin.sum(axis=1).std(ddof=1) / np.sqrt(E)),
                "mpe2_per_agent": ref.mean(axis=0).round(3).tolist(),
                "twin_per_agent": twin.mean(axis=0).round(3).tolist(),
            }
    mode = "continuous" if c else "discrete"
    print(f"{E} episodes of 25 steps, {mode} actions, reset seeds {args.seed}..{args.seed + E - 1}; "
          "team return = summed over agents and steps (mean ± s.e.m.)")
    print("| task / policy | mpe2 | course_lib twin | per-agent (mpe2) |")
    print("|---|---:|---:|---|")
    for key, r in rows.items():
        print(f"| {key} | {r['mpe2_team_return']:.1f} ± {r['mpe2_team_return_sem']:.1f} | "
              f"{r['twin_team_return']:.1f} ± {r['twin_team_return_sem']:.1f} | {r['mpe2_per_agent']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"episodes": E, "actions": mode, "seed": args.seed, "results": rows}, f, indent=2)


if __name__ == "__main__":
    _main()
