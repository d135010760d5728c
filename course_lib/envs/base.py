"""Shared pieces of the course environments: batched cores, the PettingZoo wrapper,
the batched twin, action validation and seeding.

Every task in ``course_lib.envs`` is written once, as a :class:`BatchCore`: pure
NumPy dynamics for ``B`` environments at a time, with arrays shaped
``[B, agents, ...]``.  Two thin front ends drive the same core:

* :class:`CourseParallelEnv` -- one environment (a batch of one) speaking
  PettingZoo's ``ParallelEnv`` API: dicts keyed by agent name, ``agents`` empties
  when the episode ends, spaces are cached.
* :class:`CoreBatchedEnv` -- the batched twin ``Vec<Name>(num_envs, ..., seed=None)``,
  a :class:`BatchedEnv` (the one batched base class, which the MPE twins share):
  takes actions ``[B, N]`` and returns ``obs [B, N, obs_dim]`` (float32),
  ``rewards [B, N]`` (float32), ``terminations``/``truncations [B, N]`` (bool) and
  an ``info`` dict; finished episodes are reset in the same step (the returned obs
  is the new episode's first obs, the last one is in ``info["final_obs"]``).

Because both front ends drive the same core and draw random numbers in the same
order, ``Name(...)`` reset with seed ``s`` and ``VecName(1, ..., seed=s)`` produce
identical trajectories under the same actions (tests/envs check this).

Batched-twin ``info`` keys (arrays, one row per environment):

``done [B]``                 the episode of this env ended in this step
``final_obs [B, N, D]``      last obs of the finished episode (equals obs where not done)
``episode_return [B, N]``    each agent's return of the finished episode (NaN where not done)
``team_return [B]``          team return, summed over agents and steps (NaN where not done)
``episode_return_mean [B]``  return averaged over agents (= the shared return in
                             shared-reward tasks; NaN where not done)
``episode_length [B]``       steps in the finished episode (0 where not done)
task metrics [B]             e.g. ``success``, ``failure``, ``distinct_fraction``;
                             valid where ``done`` (False / NaN elsewhere)
per-agent extras [B, N]      e.g. ``target`` (levers), ``active`` (traffic junction),
                             describing the *returned* obs

Used in every notebook that trains on a course environment (02-08).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

__all__ = [
    "BatchCore",
    "CourseParallelEnv",
    "BatchedEnv",
    "CoreBatchedEnv",
    "make_rng",
    "validate_action",
    "validate_action_dict",
    "validate_batch_actions",
    "resolve_moves",
    "GRID_MOVES",
    "upscale",
]

# {stay, up, down, left, right} as (d_row, d_col); used by every grid task.
GRID_MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)
GRID_MOVE_NAMES = ("stay", "up", "down", "left", "right")


# --------------------------------------------------------------------------- seeding
def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from an int seed, an existing Generator, or fresh entropy."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    return np.random.default_rng(None if seed is None else int(seed))


# ------------------------------------------------------------------ action validation
def _describe_space(space: spaces.Space) -> str:
    if isinstance(space, spaces.Discrete):
        lo = int(space.start)
        return f"Discrete({int(space.n)}) (an integer in [{lo}, {lo + int(space.n) - 1}])"
    return repr(space)


def validate_action(agent: str, action: Any, space: spaces.Space) -> int:
    """Check one agent's action against its (Discrete) space and return it as an int.

    Raises ``ValueError`` naming the agent and the expected space for anything that is
    not a single integer in range: floats with a fraction, bools, arrays of the wrong
    shape, out-of-range values.
    """
    expected = _describe_space(space)
    arr = np.asarray(action) if not isinstance(action, (str, bytes)) else None
    bad_type = (
        arr is None
        or arr.dtype.kind not in "iuf"
        or arr.size != 1
        or arr.ndim > 1
    )
    if not bad_type and arr.dtype.kind == "f":
        value = float(arr.reshape(()))
        bad_type = not np.isfinite(value) or value != round(value)
    if bad_type:
        shape = "" if arr is None else f" with shape {arr.shape} and dtype {arr.dtype}"
        raise ValueError(
            f"invalid action for agent {agent!r}: got {action!r}{shape}; "
            f"expected a single integer from the action space {expected}"
        )
    value = int(arr.reshape(()))
    if not space.contains(np.int64(value)):
        raise ValueError(
            f"invalid action for agent {agent!r}: {value} is out of range; "
            f"expected an element of the action space {expected}"
        )
    return value


def validate_action_dict(
    actions: Any, agents: list[str], space_of: Callable[[str], spaces.Space]
) -> dict[str, int]:
    """Check a ParallelEnv action dict: every live agent once, no unknown names."""
    if not isinstance(actions, dict):
        raise ValueError(
            f"actions must be a dict keyed by agent name ({agents}), "
            f"got {type(actions).__name__}"
        )
    unknown = [a for a in actions if a not in agents]
    if unknown:
        raise ValueError(
            f"unknown agent {unknown[0]!r} in actions; the live agents are {agents} "
            f"and each expects an action from {_describe_space(space_of(agents[0])) if agents else 'no space (episode over)'}"
        )
    missing = [a for a in agents if a not in actions]
    if missing:
        raise ValueError(
            f"missing action for agent {missing[0]!r}; expected an action from "
            f"{_describe_space(space_of(missing[0]))} for every live agent {agents}"
        )
    return {a: validate_action(a, actions[a], space_of(a)) for a in agents}


def validate_batch_actions(
    actions: Any,
    num_envs: int,
    num_agents: int,
    n_actions: np.ndarray,
    agent_names: list[str],
    space: spaces.Space,
) -> np.ndarray:
    """Check a batched action array ``[B, N]`` (or ``[B, N, 1]``) and return int64.

    ``n_actions`` [N] is the number of actions of each agent.  The ValueError names the
    expected shape and space, and for an out-of-range value the agent and the env.
    """
    expected_shape = (num_envs, num_agents)
    try:
        arr = np.asarray(actions)
    except Exception as exc:  # noqa: BLE001 - e.g. a ragged list
        raise ValueError(
            f"actions must be an integer array of shape {expected_shape} "
            f"(num_envs, num_agents) with entries from {_describe_space(space)}; "
            f"could not convert {type(actions).__name__}: {exc}"
        ) from None
    if arr.shape == expected_shape + (1,):
        arr = arr[..., 0]
    if arr.shape != expected_shape:
        raise ValueError(
            f"actions must have shape {expected_shape} (num_envs, num_agents) with "
            f"entries from the action space {_describe_space(space)}; got shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise ValueError(
                f"actions must be integers from the action space {_describe_space(space)}; "
                f"got non-integer floats (shape {arr.shape})"
            )
    elif arr.dtype.kind not in "iu":
        raise ValueError(
            f"actions must be an integer array of shape {expected_shape} with entries "
            f"from the action space {_describe_space(space)}; got dtype {arr.dtype}"
        )
    arr = arr.astype(np.int64, copy=False)
    bad = (arr < 0) | (arr >= n_actions[None, :])
    if bad.any():
        env_i, agent_i = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"action {int(arr[env_i, agent_i])} of agent {agent_names[agent_i]!r} "
            f"(env {env_i}) is out of range; expected an integer in "
            f"[0, {int(n_actions[agent_i]) - 1}] from the action space "
            f"{_describe_space(space) if len(set(n_actions.tolist())) == 1 else f'Discrete({int(n_actions[agent_i])})'}"
        )
    return arr


# --------------------------------------------------------------------- grid helpers
def resolve_moves(
    current: np.ndarray, target: np.ndarray, active: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Resolve simultaneous moves on a grid: a move into a cell another agent also
    targets fails, and the agents involved stay where they are.

    ``current`` and ``target`` are integer cell ids ``[B, N]``; inactive agents
    (``active`` False) neither move nor block.  A staying agent "targets" its own
    cell, so moving into it fails too; failures cascade (iterated to a fixed point,
    at most N rounds).  Returns ``(final [B, N], failed [B, N] bool)`` where
    ``failed`` marks agents that tried to move and could not.
    """
    B, N = current.shape
    if active is None:
        active = np.ones((B, N), dtype=bool)
    tgt = np.where(active, target, current)
    moving = active & (tgt != current)
    failed = np.zeros((B, N), dtype=bool)
    eye = np.eye(N, dtype=bool)[None]
    for _ in range(N + 1):
        same = (tgt[:, :, None] == tgt[:, None, :]) & active[:, None, :] & ~eye
        clash = same.any(axis=2) & active & moving & ~failed
        if not clash.any():
            break
        failed |= clash
        tgt = np.where(failed, current, tgt)
    return tgt, failed


def upscale(cells: np.ndarray, px: int) -> np.ndarray:
    """Nearest-neighbour upscale of an ``[H, W, 3]`` uint8 image by ``px``, with grid lines."""
    img = np.repeat(np.repeat(cells, px, axis=0), px, axis=1)
    img[::px, :, :] = 200
    img[:, ::px, :] = 200
    return img


# ------------------------------------------------------------------------ the core
class BatchCore:
    """Vectorised dynamics of one task for ``num_envs`` environments.

    Subclasses set ``name``, ``num_agents``, ``n_actions`` ([N] int array),
    ``obs_dim``, ``obs_low``/``obs_high`` and implement ``_reset(idx)``,
    ``step(actions)`` and ``observe()``; optionally ``state()``, ``agent_info()``,
    ``render_text(b)``, ``render_rgb(b)``.
    """

    name = "core"
    agent_prefix = "agent"
    noop_action: int | None = None  # the do-nothing action, where one exists
    render_modes: tuple[str, ...] = ("ansi",)
    #: episode metrics returned by step(): name -> fill value where not done
    metric_fill: dict[str, Any] = {}

    num_agents: int
    n_actions: np.ndarray
    obs_dim: int
    obs_low: float = -np.inf
    obs_high: float = np.inf

    def __init__(self, num_envs: int, rng: np.random.Generator):
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.rng = rng

    # -- to implement ---------------------------------------------------------------
    def reset(self, mask: np.ndarray | None = None) -> None:
        """Start new episodes in the envs where ``mask`` [B] is True (all if None).

        Random draws are shaped by the number of reset envs, so a batch of one and a
        single env consume the generator identically.
        """
        if mask is None:
            idx = np.arange(self.num_envs)
        else:
            idx = np.flatnonzero(mask)
        if idx.size:
            self._reset(idx)

    def _reset(self, idx: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, actions: np.ndarray):  # pragma: no cover - abstract
        """Advance every env by one step with int actions ``[B, N]``.

        Returns ``(rewards [B, N] float32, terminated [B] bool, truncated [B] bool,
        metrics dict of [B] arrays valid where the episode ended)``.
        """
        raise NotImplementedError

    def observe(self) -> np.ndarray:  # pragma: no cover - abstract
        """Observations ``[B, N, obs_dim]`` float32."""
        raise NotImplementedError

    def state(self) -> np.ndarray:
        """Global state ``[B, state_dim]`` (default: all observations concatenated)."""
        return self.observe().reshape(self.num_envs, -1)

    @property
    def state_dim(self) -> int:
        return self.num_agents * self.obs_dim

    state_low: float = -np.inf
    state_high: float = np.inf

    def agent_info(self) -> dict[str, np.ndarray]:
        """Per-agent extras ``[B, N]`` describing the current obs (e.g. targets)."""
        return {}

    def render_text(self, b: int = 0) -> str:
        return f"{self.name} (env {b})"

    def render_rgb(self, b: int = 0) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no rgb_array rendering")


# ------------------------------------------------------------- shared space builders
class _SpacesMixin:
    core: BatchCore

    def _build_spaces(self) -> None:
        core = self.core
        self.possible_agents = [f"{core.agent_prefix}_{i}" for i in range(core.num_agents)]
        self._agent_index = {a: i for i, a in enumerate(self.possible_agents)}
        obs_space = spaces.Box(
            low=np.float32(core.obs_low),
            high=np.float32(core.obs_high),
            shape=(core.obs_dim,),
            dtype=np.float32,
        )
        self.state_space = spaces.Box(
            low=np.float32(core.state_low),
            high=np.float32(core.state_high),
            shape=(core.state_dim,),
            dtype=np.float32,
        )
        # one object per agent, built once (PettingZoo requires the same object back)
        self.observation_spaces = {
            a: spaces.Box(obs_space.low, obs_space.high, obs_space.shape, np.float32)
            for a in self.possible_agents
        }
        self.action_spaces = {
            a: spaces.Discrete(int(core.n_actions[i]))
            for i, a in enumerate(self.possible_agents)
        }

    def _agent_name(self, agent: str | int) -> str:
        if isinstance(agent, (int, np.integer)) and 0 <= agent < len(self.possible_agents):
            return self.possible_agents[int(agent)]
        return agent

    # PettingZoo: the exact same object for the same agent, every call.
    def observation_space(self, agent: str | int) -> spaces.Space:
        try:
            return self.observation_spaces[self._agent_name(agent)]
        except KeyError:
            raise ValueError(f"unknown agent {agent!r}; agents are {self.possible_agents}") from None

    def action_space(self, agent: str | int) -> spaces.Space:
        try:
            return self.action_spaces[self._agent_name(agent)]
        except KeyError:
            raise ValueError(f"unknown agent {agent!r}; agents are {self.possible_agents}") from None


# ------------------------------------------------------------------ single ParallelEnv
class CourseParallelEnv(_SpacesMixin, ParallelEnv):
    """PettingZoo ``ParallelEnv`` front end over a batch-of-one :class:`BatchCore`.

    Subclasses set ``core_cls`` and pass the task's keyword arguments through.
    ``render()`` returns text (``render_mode`` None or ``"ansi"``), prints it
    (``"human"``), or returns an ``[H, W, 3]`` uint8 picture (``"rgb_array"``, grid
    tasks only).
    """

    core_cls: type[BatchCore] = BatchCore
    metadata: dict[str, Any] = {"name": "course_env", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, **kwargs):
        self.core = self.core_cls(1, make_rng(None), **kwargs)
        self.config = dict(kwargs)
        modes = list(self.core.render_modes) + ["human"]
        self.metadata = {
            "name": self.core.name,
            "render_modes": modes,
            "is_parallelizable": True,
        }
        if render_mode is not None and render_mode not in modes:
            raise ValueError(f"render_mode must be one of {modes} or None, got {render_mode!r}")
        self.render_mode = render_mode
        self._build_spaces()
        self.agents: list[str] = []
        self._ep_return = np.zeros(self.core.num_agents)
        self._ep_len = 0
        self._needs_reset = True

    def _obs_dict(self) -> dict[str, np.ndarray]:
        obs = self.core.observe()[0]
        return {a: obs[i].copy() for i, a in enumerate(self.possible_agents)}

    def _agent_infos(self) -> dict[str, dict[str, Any]]:
        extras = self.core.agent_info()
        return {
            a: {k: v[0, i].item() for k, v in extras.items()}
            for i, a in enumerate(self.possible_agents)
        }

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.core.rng = make_rng(seed)
        self.core.reset()
        self.agents = list(self.possible_agents)
        self._ep_return = np.zeros(self.core.num_agents)
        self._ep_len = 0
        self._needs_reset = False
        return self._obs_dict(), self._agent_infos()

    def step(self, actions: dict[str, Any]):
        if self._needs_reset:
            raise RuntimeError(
                f"{self.core.name}: call reset() before step() (the episode is over or never started)"
            )
        checked = validate_action_dict(actions, self.agents, self.action_space)
        act = np.array([[checked[a] for a in self.possible_agents]], dtype=np.int64)
        rewards, terminated, truncated, metrics = self.core.step(act)
        self._ep_return += rewards[0]
        self._ep_len += 1
        obs = self._obs_dict()
        infos = self._agent_infos()
        term, trunc = bool(terminated[0]), bool(truncated[0])
        if term or trunc:
            ep = {k: v[0].item() for k, v in metrics.items()}
            ep["team_return"] = float(self._ep_return.sum())
            ep["episode_return_mean"] = float(self._ep_return.mean())
            ep["episode_length"] = self._ep_len
            for i, a in enumerate(self.possible_agents):
                if a in infos:
                    infos[a].update(ep, episode_return=float(self._ep_return[i]))
        rew = {a: float(rewards[0, i]) for i, a in enumerate(self.possible_agents)}
        terms = {a: term for a in self.possible_agents}
        truncs = {a: trunc for a in self.possible_agents}
        if term or trunc:
            self.agents = []
            self._needs_reset = True
        return obs, rew, terms, truncs, infos

    def state(self) -> np.ndarray:
        return self.core.state()[0].astype(np.float32)

    def render(self):
        if self.render_mode == "rgb_array":
            return self.core.render_rgb(0)
        text = self.core.render_text(0)
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self):
        pass


# --------------------------------------------------------------------- batched twin
class BatchedEnv:
    """The one batched base class of the course: ``B`` environments stepped together,
    finished episodes reset automatically in the same step.

    Every batched twin derives from it: the course tasks' ``Vec<Name>`` (a
    :class:`BatchCore` behind :class:`CoreBatchedEnv`) and the MPE twins
    (:mod:`course_lib.envs.mpe`).  It owns the episode bookkeeping shared by all of
    them -- ``steps [B]`` and ``episode_return [B, N]`` of the running episodes, the
    ``info`` dict of the module docstring, the automatic resets -- and a subclass
    provides the dynamics through four hooks:

    ``_check_actions(actions)``   validated actions (``ValueError`` naming agent and space)
    ``_advance(actions)``         one step: ``(rewards [B, N], terminated [B], truncated [B],
                                  metrics {name: [B]})``
    ``observe()``                 observations ``[B, N, D]`` float32
    ``_reset_where(mask)``        start new episodes where ``mask`` [B] (all if None)

    plus ``_seed(seed)`` (re-seed the dynamics and ``sample_actions``), and optionally
    ``agent_info()`` (per-agent extras ``[B, N]``) and ``_reset_info()``.
    """

    metric_fill: dict[str, Any] = {}  # episode metrics -> fill value where not done
    num_envs: int
    num_agents: int
    possible_agents: list[str]

    def _init_episodes(self) -> None:
        self.steps = np.zeros(self.num_envs, dtype=np.int64)
        self.episode_return = np.zeros((self.num_envs, self.num_agents))
        self._needs_reset = True

    # -- hooks -----------------------------------------------------------------------
    def _seed(self, seed: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_actions(self, actions: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _advance(self, actions: Any):  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _reset_where(self, mask: np.ndarray | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def agent_info(self) -> dict[str, np.ndarray]:
        return {}

    def _reset_info(self) -> dict[str, Any]:
        return dict(self.agent_info())

    # -- the shared API -----------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Reset every env; returns ``(obs [B, N, D] float32, info)``."""
        if seed is not None:
            self._seed(seed)
        self._reset_where(None)
        self.steps[:] = 0
        self.episode_return[:] = 0.0
        self._needs_reset = False
        return self.observe(), self._reset_info()

    def step(self, actions: Any):
        """Step every env; see the module docstring for what ``info`` holds."""
        if self._needs_reset:
            raise RuntimeError(f"{self.metadata['name']}: call reset() before the first step()")
        rewards, terminated, truncated, metrics = self._advance(self._check_actions(actions))
        done = terminated | truncated
        self.steps += 1
        self.episode_return += rewards
        obs = self.observe()
        info: dict[str, Any] = {"done": done.copy(), "final_obs": obs}
        any_done = done.any()
        if any_done:
            info["episode_return"] = np.where(done[:, None], self.episode_return, np.nan)
            info["team_return"] = np.where(done, self.episode_return.sum(axis=1), np.nan)
            info["episode_return_mean"] = np.where(done, self.episode_return.mean(axis=1), np.nan)
            info["episode_length"] = np.where(done, self.steps, 0)
        else:  # most steps: no episode ended, nothing to sum
            info["episode_return"] = np.full(self.episode_return.shape, np.nan)
            info["team_return"] = np.full(self.num_envs, np.nan)
            info["episode_return_mean"] = np.full(self.num_envs, np.nan)
            info["episode_length"] = np.zeros(self.num_envs, dtype=self.steps.dtype)
        for key, value in metrics.items():
            info[key] = np.where(done, value, self.metric_fill.get(key, np.nan))
        if any_done:
            self._reset_where(done)
            obs = self.observe()
            self.steps[done] = 0
            self.episode_return[done] = 0.0
        info.update(self.agent_info())
        terms = np.repeat(terminated[:, None], self.num_agents, axis=1)
        truncs = np.repeat(truncated[:, None], self.num_agents, axis=1)
        return obs, rewards.astype(np.float32, copy=False), terms, truncs, info

    def close(self):
        pass


class CoreBatchedEnv(_SpacesMixin, BatchedEnv):
    """The batched twin of a course task: :class:`BatchedEnv` over a :class:`BatchCore`.

    ``single_observation_space`` / ``single_action_space`` describe ONE agent
    (Gymnasium spaces, as in Gymnasium's vector envs); ``observation_space(agent)`` /
    ``action_space(agent)`` and the ``*_spaces`` dicts give every agent's space (they
    differ only in asymmetric matrix games).
    """

    core_cls: type[BatchCore] = BatchCore

    def __init__(self, num_envs: int, seed: int | None = None, **kwargs):
        self.core = self.core_cls(int(num_envs), make_rng(seed), **kwargs)
        self.config = dict(kwargs)
        self.num_envs = self.core.num_envs
        self.num_agents = self.core.num_agents
        self.metadata = {"name": self.core.name, "render_modes": list(self.core.render_modes)}
        self.metric_fill = self.core.metric_fill
        self._build_spaces()
        first = self.possible_agents[0]
        self.single_observation_space = self.observation_spaces[first]
        n = self.core.n_actions
        self.single_action_space = (
            self.action_spaces[first]
            if len(set(n.tolist())) == 1
            else spaces.Discrete(int(n.max()))
        )
        ss = np.random.SeedSequence(seed)
        self._sample_rng = np.random.default_rng(ss.spawn(1)[0]) if seed is not None else np.random.default_rng()
        self._init_episodes()

    @property
    def obs_dim(self) -> int:
        return self.core.obs_dim

    @property
    def n_actions(self) -> int:
        return int(self.core.n_actions.max())

    def _seed(self, seed: int) -> None:
        self.core.rng = make_rng(seed)
        self._sample_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])

    def _check_actions(self, actions: Any) -> np.ndarray:
        return validate_batch_actions(
            actions, self.num_envs, self.num_agents, self.core.n_actions,
            self.possible_agents, self.single_action_space,
        )

    def _advance(self, actions: np.ndarray):
        rewards, terminated, truncated, metrics = self.core.step(actions)
        return rewards.astype(np.float32, copy=False), terminated, truncated, metrics

    def observe(self) -> np.ndarray:
        return self.core.observe()

    def _reset_where(self, mask: np.ndarray | None) -> None:
        self.core.reset(mask)

    def agent_info(self) -> dict[str, np.ndarray]:
        return self.core.agent_info()

    def sample_actions(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """Uniformly random actions ``[B, N]`` (each agent within its own space)."""
        rng = self._sample_rng if rng is None else rng
        u = rng.random((self.num_envs, self.num_agents))
        return (u * self.core.n_actions[None, :]).astype(np.int64)

    def state(self) -> np.ndarray:
        """Global state ``[B, state_dim]`` float32 (for centralised critics and mixers)."""
        return self.core.state().astype(np.float32)

    def render(self, index: int = 0, mode: str = "ansi"):
        """Text (``mode="ansi"``) or an rgb picture of env ``index``."""
        if mode == "rgb_array":
            return self.core.render_rgb(index)
        return self.core.render_text(index)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_envs={self.num_envs}, num_agents={self.num_agents}, "
            f"obs_dim={self.core.obs_dim}, action_space={self.single_action_space})"
        )
