"""Batched NumPy twins of mpe2's ``simple_spread_v3`` and ``simple_tag_v3``.

Taught in: notebooks/04_maddpg (and used by 06_advanced, 07_method_i).

mpe2 (the maintained home of the Multi-Agent Particle Environments) is the
reference: its ``parallel_env`` is what a student sees in the PettingZoo API.
It steps one world at a time in Python (about 1,650 joint steps/s).  The classes
here step ``num_envs`` worlds at once with array operations and reproduce mpe2's
physics, rewards and observations to floating-point accuracy (checked to 1e-5
over whole episodes in ``tests/envs/test_mpe.py``):

* physics (``mpe2._mpe_utils.core.World.step``): action force ``u * accel``
  (``accel`` None means sensitivity 5), soft contact forces between colliding
  entities ``contact_force * delta / dist * logaddexp(0, -(dist - dist_min)/k) * k``,
  then ``pos += vel * dt``; ``vel *= 1 - damping``; ``vel += force / mass * dt``;
  speed clipped to ``max_speed``.  No motor noise (mpe2's ``u_noise`` is None).
* discrete actions ``[no_action, move_left, move_right, move_down, move_up]``;
  continuous actions ``Box(0, 1, (5,))`` with ``u = (a[2] - a[1], a[4] - a[3])``.
* rewards and observations exactly as the mpe2 scenarios compute them.

Conventions shared by every batched twin in ``course_lib.envs``:

* ``reset(seed=None) -> (obs, info)`` with ``obs`` float32 ``[B, N, obs_dim]``;
* ``step(actions) -> (obs, rewards[B, N], terminations[B, N], truncations[B, N], info)``;
* finished episodes reset in the same step: ``obs`` is already the new episode's
  first observation and the last one is in ``info["final_obs"]`` (equal to
  ``obs`` where not done).  ``info["done"]`` ``[B]`` bool;
  ``info["episode_return"]`` ``[B, N]`` per-agent return of the finished episode, ``info["team_return"]`` ``[B]`` their sum
  and ``info["episode_return_mean"]`` ``[B]`` its mean over agents (NaN where not
  done); ``info["episode_length"]`` ``[B]`` (0 where not done);
* a wrong action raises ``ValueError`` naming the agent and the expected space.

simple_tag's agents have different observation sizes (adversaries 16, the good
agent 14 with the defaults).  ``SimpleTagVec`` pads every observation with zeros
at the end to ``obs_dim`` (the largest size); ``obs_sizes[i]`` is agent ``i``'s
true size, ``observation_space(agent)`` is its true (unpadded) mpe2 space, and
``obs[:, i, :obs_sizes[i]]`` is exactly mpe2's observation.

Seeding: ``reset(seed=s)`` on a batch of one draws the same initial state as
mpe2's ``reset(seed=s)`` (same generator, same order of draws), and later
automatic resets follow mpe2's later ``reset()`` calls.  Larger batches draw all
environments from one generator.

``reset_from_seeds(seeds)`` starts slot ``i`` from mpe2's ``reset(seed=seeds[i])``
(evaluate on exactly mpe2's episodes).  To compare against mpe2 from an
arbitrary state, copy an mpe2 world into a slot with :func:`load_mpe2_state`
(or build a batch from a list of mpe2 environments with :func:`from_mpe2`).

Attributes: ``num_envs``, ``num_agents``, ``agent_names`` (= ``possible_agents``,
mpe2's order), ``obs_dim``, ``obs_sizes``, ``n_actions`` (5), ``max_cycles``,
``continuous_actions``; cached Gymnasium spaces per agent in
``observation_spaces`` / ``action_spaces`` and through ``observation_space(agent)``
/ ``action_space(agent)`` (name or index); ``state()`` ``[B, state_dim]`` is
mpe2's global state (all agents' observations concatenated); ``pos`` / ``vel``
``[B, nA, 2]`` and ``landmark_pos`` ``[B, nL, 2]`` are writable views of the
world; ``get_state()`` / ``set_state()`` copy it; ``sample_actions()`` draws
uniform random actions.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from gymnasium import spaces

from .base import BatchedEnv

__all__ = [
    "SimpleSpreadVec",
    "SimpleTagVec",
    "make_simple_spread_vec",
    "make_simple_tag_vec",
    "make_mpe2_simple_spread",
    "make_mpe2_simple_tag",
    "load_mpe2_state",
    "from_mpe2",
    "mpe_registry",
    "DISCRETE_MOVES",
]

# Discrete action -> unit direction, mpe2's order (SimpleEnv._set_action).
DISCRETE_MOVES = np.array(
    [[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]], dtype=np.float64
)
NUM_ACTIONS = 5
_MOVES_X = np.ascontiguousarray(DISCRETE_MOVES[:, 0])
_MOVES_Y = np.ascontiguousarray(DISCRETE_MOVES[:, 1])


class _MPEVec(BatchedEnv):
    """Shared batched particle world (a :class:`~course_lib.envs.base.BatchedEnv`, which
    keeps the episodes' ``steps`` and ``episode_return``).  Subclasses define the scenario."""

    # world constants (mpe2 core.World)
    dt = 0.1
    damping = 0.25
    contact_force = 1e2
    contact_margin = 1e-3
    dim_p = 2

    # set by subclasses
    agent_names: list[str]
    agent_size: np.ndarray  # [nA]
    agent_accel: np.ndarray  # [nA] (5.0 where mpe2's accel is None)
    agent_max_speed: np.ndarray | None  # [nA] or None
    landmark_size: np.ndarray  # [nL]
    landmarks_collide: bool
    landmark_spawn: float  # landmarks spawn uniform(-landmark_spawn, +landmark_spawn)
    obs_sizes: np.ndarray  # [nA] true observation sizes

    def __init__(self, num_envs: int, *, continuous_actions: bool, max_cycles: int,
                 seed: int | None) -> None:
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if int(max_cycles) != max_cycles or max_cycles < 1:
            raise ValueError(f"max_cycles must be a positive integer, got {max_cycles!r}")
        self.num_envs = int(num_envs)
        self.continuous_actions = bool(continuous_actions)
        self.max_cycles = int(max_cycles)
        self.num_agents = len(self.agent_names)
        self.possible_agents = list(self.agent_names)
        self.agents = list(self.agent_names)
        self.num_landmarks = len(self.landmark_size)
        self.obs_dim = int(np.max(self.obs_sizes))
        self.state_dim = int(np.sum(self.obs_sizes))
        self.n_actions = NUM_ACTIONS
        self.metadata = {"name": self.name}
        self._rng = np.random.default_rng(seed)
        self._sample_rng = np.random.default_rng(None if seed is None else np.random.SeedSequence(seed).spawn(1)[0])

        B, nA, nL = self.num_envs, self.num_agents, self.num_landmarks
        # state, component-major ([2, B, n]: x rows then y rows) so that the hot
        # loops work on contiguous [B, n] planes; ``pos``/``vel``/``landmark_pos``
        # are [B, n, 2] views of these
        self._p = np.zeros((2, B, nA))
        self._v = np.zeros((2, B, nA))
        self._lm = np.zeros((2, B, nL))
        self._init_episodes()

        # colliding entities: all agents, plus landmarks when they collide
        sizes = [self.agent_size] + ([self.landmark_size] if self.landmarks_collide else [])
        coll_size = np.concatenate(sizes)
        self._coll_dist_min = coll_size[:, None] + coll_size[None, :]
        E = len(coll_size)
        self._diag_inf = np.where(np.eye(E, dtype=bool), np.inf, 0.0)
        self._agent_dist_min = self.agent_size[:, None] + self.agent_size[None, :]
        self._others = np.array(
            [[j for j in range(nA) if j != i] for i in range(nA)], dtype=np.int64
        ).reshape(nA, nA - 1)
        self._arange_agents = np.arange(nA)[:, None]

        # cached Gymnasium spaces (mpe2's, per agent)
        if self.continuous_actions:
            act = lambda: spaces.Box(low=0.0, high=1.0, shape=(NUM_ACTIONS,), dtype=np.float32)  # noqa: E731
        else:
            act = lambda: spaces.Discrete(NUM_ACTIONS)  # noqa: E731
        self.action_spaces = {name: act() for name in self.agent_names}
        self.observation_spaces = {
            name: spaces.Box(-np.float32(np.inf), np.float32(np.inf),
                             shape=(int(d),), dtype=np.float32)
            for name, d in zip(self.agent_names, self.obs_sizes)
        }

        self.state_space = spaces.Box(-np.float32(np.inf), np.float32(np.inf),
                                      shape=(self.state_dim,), dtype=np.float32)
        # One agent's spaces, as in Gymnasium's vector envs, where all agents share them.
        if len(set(self.obs_sizes.tolist() if hasattr(self.obs_sizes, "tolist") else self.obs_sizes)) == 1:
            self.single_observation_space = self.observation_spaces[self.agent_names[0]]
            self.single_action_space = self.action_spaces[self.agent_names[0]]

    # ------------------------------------------------------------------- views
    @property
    def pos(self) -> np.ndarray:
        """Agent positions ``[B, nA, 2]`` (a writable view of the state)."""
        return np.moveaxis(self._p, 0, -1)

    @pos.setter
    def pos(self, value: np.ndarray) -> None:
        self.pos[...] = value

    @property
    def vel(self) -> np.ndarray:
        """Agent velocities ``[B, nA, 2]`` (a writable view of the state)."""
        return np.moveaxis(self._v, 0, -1)

    @vel.setter
    def vel(self, value: np.ndarray) -> None:
        self.vel[...] = value

    @property
    def landmark_pos(self) -> np.ndarray:
        """Landmark (obstacle) positions ``[B, nL, 2]`` (a writable view of the state)."""
        return np.moveaxis(self._lm, 0, -1)

    @landmark_pos.setter
    def landmark_pos(self, value: np.ndarray) -> None:
        self.landmark_pos[...] = value

    # ------------------------------------------------------------------ spaces
    def _agent_name(self, agent: int | str) -> str:
        if isinstance(agent, (int, np.integer)):
            return self.agent_names[int(agent)]
        return agent

    def observation_space(self, agent: int | str) -> spaces.Box:
        """mpe2's (unpadded) observation space of ``agent`` (name or index)."""
        return self.observation_spaces[self._agent_name(agent)]

    def action_space(self, agent: int | str) -> spaces.Space:
        """The action space of ``agent`` (name or index): Discrete(5) or Box(0, 1, (5,))."""
        return self.action_spaces[self._agent_name(agent)]

    def sample_actions(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """Uniformly random actions: ints ``[B, N]``, or float32 ``[B, N, 5]`` in [0, 1)."""
        rng = self._sample_rng if rng is None else rng
        if self.continuous_actions:
            return rng.random((self.num_envs, self.num_agents, NUM_ACTIONS), dtype=np.float32)
        return rng.integers(0, NUM_ACTIONS, size=(self.num_envs, self.num_agents))

    # ------------------------------------------------------------------- state
    def state(self) -> np.ndarray:
        """Global state ``[B, state_dim]`` float32, mpe2's ``state()``: every agent's
        (unpadded) observation, concatenated in agent order (54 for spread, 62 for tag)."""
        obs = self.observe()
        return np.concatenate([obs[:, i, :d] for i, d in enumerate(self.obs_sizes)], axis=1)

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of the world state: agent ``pos``/``vel`` ``[B, nA, 2]``,
        ``landmark_pos`` ``[B, nL, 2]``, ``steps`` ``[B]``, ``episode_return`` ``[B, nA]``."""
        return {
            "pos": self.pos.copy(),
            "vel": self.vel.copy(),
            "landmark_pos": self.landmark_pos.copy(),
            "steps": self.steps.copy(),
            "episode_return": self.episode_return.copy(),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> np.ndarray:
        """Overwrite the world state (any subset of :meth:`get_state`'s keys).
        Returns the observation of the new state."""
        for key in ("pos", "vel", "landmark_pos", "steps", "episode_return"):
            if key in state:
                target = getattr(self, key)
                value = np.asarray(state[key], dtype=target.dtype)
                if value.shape != target.shape:
                    raise ValueError(f"state[{key!r}] has shape {value.shape}, expected {target.shape}")
                target[...] = value  # views: writes through to the state
        self._needs_reset = False
        return self.observe()

    # ------------------------------------------------------------------- reset
    def _spawn(self, idx: np.ndarray | slice, k: int) -> None:
        # same draws, in the same order, as the mpe2 scenarios' reset_world
        self._p[:, idx] = np.moveaxis(self._rng.uniform(-1.0, 1.0, (k, self.num_agents, 2)), -1, 0)
        self._v[:, idx] = 0.0
        lo = self.landmark_spawn
        self._lm[:, idx] = np.moveaxis(self._rng.uniform(-lo, +lo, (k, self.num_landmarks, 2)), -1, 0)
        self.steps[idx] = 0
        self.episode_return[idx] = 0.0

    def _seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._sample_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])

    def _reset_where(self, mask: np.ndarray | None) -> None:
        if mask is None or mask.all():
            self._spawn(slice(None), self.num_envs)
        else:
            idx = np.flatnonzero(mask)
            self._spawn(idx, len(idx))

    def _reset_info(self) -> dict[str, Any]:
        return {"obs_sizes": self.obs_sizes}

    def reset_from_seeds(self, seeds: Sequence[int]) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset slot ``i`` to the state mpe2's ``reset(seed=seeds[i])`` draws
        (one generator per slot; for evaluating on exactly mpe2's episodes).
        Later automatic resets continue from the batch generator."""
        seeds = list(seeds)
        if len(seeds) != self.num_envs:
            raise ValueError(f"need {self.num_envs} seeds (one per env), got {len(seeds)}")
        lo = self.landmark_spawn
        for i, s in enumerate(seeds):  # reset only; step has no per-env loop
            rng = np.random.default_rng(s)
            self._p[:, i] = rng.uniform(-1.0, 1.0, (self.num_agents, 2)).T
            self._lm[:, i] = rng.uniform(-lo, +lo, (self.num_landmarks, 2)).T
        self._v[...] = 0.0
        self.steps[:] = 0
        self.episode_return[:] = 0.0
        self._needs_reset = False
        return self.observe(), {"obs_sizes": self.obs_sizes}

    # ------------------------------------------------------------------ action
    def _action_force(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate actions; return the force direction (x, y), each ``[B, nA]``, before accel."""
        B, nA = self.num_envs, self.num_agents
        a = np.asarray(actions)
        if self.continuous_actions:
            if a.shape != (B, nA, NUM_ACTIONS):
                raise ValueError(
                    f"continuous actions must have shape [num_envs, num_agents, 5] = "
                    f"{(B, nA, NUM_ACTIONS)}, got {a.shape}; each agent's action space is "
                    f"Box(0.0, 1.0, (5,), float32)"
                )
            if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
                raise ValueError(f"continuous actions must be floats, got dtype {a.dtype}")
            if not np.issubdtype(a.dtype, np.floating):
                a = a.astype(np.float64)
            ok = (a >= 0.0) & (a <= 1.0)  # False for NaN too
            if not ok.all():
                b, i, _ = np.argwhere(~ok)[0]
                raise ValueError(
                    f"agent {i} ({self.agent_names[i]}) in env {b}: action {a[b, i].tolist()} "
                    f"is outside its action space Box(0.0, 1.0, (5,), float32)"
                )
            # differences in the action's own dtype, as mpe2 does, then float64
            ux = (a[..., 2] - a[..., 1]).astype(np.float64)
            uy = (a[..., 4] - a[..., 3]).astype(np.float64)
            return ux, uy
        if a.shape != (B, nA):
            raise ValueError(
                f"discrete actions must have shape [num_envs, num_agents] = {(B, nA)}, got "
                f"{a.shape}; each agent's action space is Discrete(5)"
            )
        if not np.issubdtype(a.dtype, np.integer):
            if not np.issubdtype(a.dtype, np.floating):
                raise ValueError(
                    f"agent 0 ({self.agent_names[0]}): discrete actions must be integers in "
                    f"Discrete(5), got dtype {a.dtype}"
                )
            integral = a == np.round(a)  # float actions are accepted when whole numbers
            if not integral.all():
                b, i = np.argwhere(~integral)[0]
                raise ValueError(
                    f"agent {i} ({self.agent_names[i]}) in env {b}: action {a[b, i]!r} is not "
                    f"an integer; its action space is Discrete(5)"
                )
            a = a.astype(np.int64)
        ok = (a >= 0) & (a < NUM_ACTIONS)
        if not ok.all():
            b, i = np.argwhere(~ok)[0]
            raise ValueError(
                f"agent {i} ({self.agent_names[i]}) in env {b}: action {a[b, i]} is outside "
                f"its action space Discrete(5) (0 no-op, 1 left, 2 right, 3 down, 4 up)"
            )
        return _MOVES_X[a], _MOVES_Y[a]

    # ----------------------------------------------------------------- physics
    def _physics(self, u: tuple[np.ndarray, np.ndarray]) -> None:
        nA = self.num_agents
        accel = self.agent_accel
        fx, fy = u[0] * accel, u[1] * accel  # agent.action.u *= sensitivity
        # contact forces between colliding entities (mpe2 get_collision_force):
        # on i from j: contact_force * (p_i - p_j) / dist * softplus-penetration
        if self.landmarks_collide:
            px = np.concatenate([self._p[0], self._lm[0]], axis=1)
            py = np.concatenate([self._p[1], self._lm[1]], axis=1)
        else:
            px, py = self._p[0], self._p[1]
        dx = px[:, :nA, None] - px[:, None, :]  # [B, nA, E]
        dy = py[:, :nA, None] - py[:, None, :]
        dist = np.sqrt(dx * dx + dy * dy) + self._diag_inf[:nA]
        k = self.contact_margin
        penetration = np.logaddexp(0, -(dist - self._coll_dist_min[:nA]) / k) * k
        fx = fx + (self.contact_force * dx / dist * penetration).sum(axis=2)
        fy = fy + (self.contact_force * dy / dist * penetration).sum(axis=2)
        # integrate_state (mass 1): position with the old velocity, then velocity
        self._p += self._v * self.dt
        v = self._v * (1 - self.damping)
        v[0] += fx * self.dt
        v[1] += fy * self.dt
        if self.agent_max_speed is not None:
            speed = np.sqrt(v[0] * v[0] + v[1] * v[1])
            over = speed > self.agent_max_speed
            if over.any():
                safe = np.where(over, speed, 1.0)  # no 0/0 where not clipped
                v = np.where(over, v / safe * self.agent_max_speed, v)
        self._v = v

    # -------------------------------------------------------------------- step
    def _check_actions(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._action_force(actions)

    def _advance(self, u: tuple[np.ndarray, np.ndarray]):
        """Physics and rewards (float64, as mpe2); episodes end by truncation only."""
        self._physics(u)
        B = self.num_envs
        return self._rewards(), np.zeros(B, dtype=bool), self.steps + 1 >= self.max_cycles, {}

    # ------------------------------------------------------- scenario-specific
    def _rewards(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        space = "continuous" if self.continuous_actions else "discrete"
        return f"{type(self).__name__}(num_envs={self.num_envs}, {space}, max_cycles={self.max_cycles})"


class SimpleSpreadVec(_MPEVec):
    """Batched ``mpe2.simple_spread_v3``: N agents cover N landmarks.

    Reward of agent i: ``(1 - local_ratio) * global + local_ratio * local_i`` with
    ``global = -sum_landmarks min_agents dist`` and ``local_i = -(number of other
    agents within 0.3)``.  Observation (18 with N=3): own vel, own pos, landmark
    positions relative to the agent, other agents' relative positions, and the
    other agents' (always zero, agents are silent) 2-d communication.
    """

    name = "simple_spread_v3"

    def __init__(self, num_envs: int, *, continuous_actions: bool = False, max_cycles: int = 25,
                 local_ratio: float = 0.5, N: int = 3, seed: int | None = None) -> None:
        if not 0.0 <= local_ratio <= 1.0:
            raise ValueError("local_ratio is a proportion. Must be between 0 and 1.")
        if int(N) != N or N < 2:
            raise ValueError(f"N must be an integer >= 2, got {N!r}")
        self.N = N = int(N)
        self.local_ratio = float(local_ratio)
        self.agent_names = [f"agent_{i}" for i in range(N)]
        self.agent_size = np.full(N, 0.15)
        self.agent_accel = np.full(N, 5.0)
        self.agent_max_speed = None
        self.landmark_size = np.full(N, 0.05)
        self.landmarks_collide = False
        self.landmark_spawn = 1.0
        self.dim_c = 2
        self.obs_sizes = np.full(N, 4 + 2 * N + 2 * (N - 1) + 2 * (N - 1), dtype=np.int64)
        super().__init__(num_envs, continuous_actions=continuous_actions,
                         max_cycles=max_cycles, seed=seed)
        self._agent_dist_min_noself = self._agent_dist_min + np.where(np.eye(N, dtype=bool), -np.inf, 0.0)

    def _rewards(self) -> np.ndarray:
        (px, py), (lx, ly) = self._p, self._lm
        dx = px[:, :, None] - lx[:, None, :]  # [B, nA, nL]
        dy = py[:, :, None] - ly[:, None, :]
        d_al = np.sqrt(dx * dx + dy * dy)
        global_rew = -np.min(d_al, axis=1).sum(axis=1)  # [B]
        dx = px[:, :, None] - px[:, None, :]
        dy = py[:, :, None] - py[:, None, :]
        d_aa = np.sqrt(dx * dx + dy * dy)
        collisions = (d_aa < self._agent_dist_min_noself).sum(axis=2)  # [B, nA], self excluded
        local = -1.0 * collisions
        return global_rew[:, None] * (1 - self.local_ratio) + local * self.local_ratio

    def observe(self) -> np.ndarray:
        """Observations of the current state, float32 ``[B, N, 18]`` (N=3)."""
        B, N = self.num_envs, self.N
        obs = np.zeros((B, N, self.obs_dim), dtype=np.float32)
        _write_common(obs, self._p, self._v, self._lm, self._arange_agents, self._others)
        # communication of the other (silent) agents stays zero
        return obs


def _write_common(obs, p, v, lm, arange_agents, others) -> int:
    """Write own vel, own pos, landmarks relative, other agents relative into ``obs``
    (mpe2's order, x/y interleaved); return the next free column."""
    nL, nO = lm.shape[2], others.shape[1]
    obs[:, :, 0] = v[0]
    obs[:, :, 1] = v[1]
    obs[:, :, 2] = p[0]
    obs[:, :, 3] = p[1]
    s = 4
    if nL:
        obs[:, :, s:s + 2 * nL:2] = lm[0][:, None, :] - p[0][:, :, None]  # [B, i, l]
        obs[:, :, s + 1:s + 2 * nL:2] = lm[1][:, None, :] - p[1][:, :, None]
        s += 2 * nL
    for c in (0, 1):
        rel = p[c][:, None, :] - p[c][:, :, None]  # [B, i, j] = p_j - p_i
        obs[:, :, s + c:s + 2 * nO:2] = rel[:, arange_agents, others]
    return s + 2 * nO


class SimpleTagVec(_MPEVec):
    """Batched ``mpe2.simple_tag_v3``: adversaries (predators) chase good agents (prey).

    Agents in mpe2's order: ``adversary_0..`` then ``agent_0..``.  Adversaries
    (size 0.075, accel 3, max speed 1.0) get +10 for every adversary/good-agent
    collision (shared); good agents (size 0.05, accel 4, max speed 1.3) get -10 per
    adversary touching them and a boundary penalty per coordinate.  Obstacles
    (size 0.2) block everyone.  Observations are zero-padded to ``obs_dim``;
    ``obs_sizes`` holds the true sizes (16 for adversaries, 14 for the good agent
    with the defaults).
    """

    name = "simple_tag_v3"

    def __init__(self, num_envs: int, *, num_good: int = 1, num_adversaries: int = 3,
                 num_obstacles: int = 2, continuous_actions: bool = False, max_cycles: int = 25,
                 seed: int | None = None) -> None:
        if num_good < 1 or num_adversaries < 1 or num_obstacles < 0:
            raise ValueError("need num_good >= 1, num_adversaries >= 1, num_obstacles >= 0")
        self.num_good = nG = int(num_good)
        self.num_adversaries = nAdv = int(num_adversaries)
        self.num_obstacles = nO = int(num_obstacles)
        nA = nG + nAdv
        self.agent_names = [f"adversary_{i}" for i in range(nAdv)] + [f"agent_{i}" for i in range(nG)]
        self.is_adversary = np.arange(nA) < nAdv
        self.agent_size = np.where(self.is_adversary, 0.075, 0.05)
        self.agent_accel = np.where(self.is_adversary, 3.0, 4.0)
        self.agent_max_speed = np.where(self.is_adversary, 1.0, 1.3)
        self.landmark_size = np.full(nO, 0.2)
        self.landmarks_collide = True
        self.landmark_spawn = 0.9
        base = 4 + 2 * nO + 2 * (nA - 1)
        self.obs_sizes = np.where(self.is_adversary, base + 2 * nG, base + 2 * (nG - 1)).astype(np.int64)
        super().__init__(num_envs, continuous_actions=continuous_actions,
                         max_cycles=max_cycles, seed=seed)
        self._good_others = np.array(
            [[j for j in range(nG) if j != i] for i in range(nG)], dtype=np.int64
        ).reshape(nG, nG - 1)

    def _rewards(self) -> np.ndarray:
        nAdv = self.num_adversaries
        px, py = self._p
        dx = px[:, nAdv:, None] - px[:, None, :nAdv]  # [B, nG, nAdv]
        dy = py[:, nAdv:, None] - py[:, None, :nAdv]
        coll = np.sqrt(dx * dx + dy * dy) < (0.05 + 0.075)
        bound = 0.0
        for c in (px, py):  # mpe2's bound(x) on each coordinate of every good agent
            x = np.abs(c[:, nAdv:])
            bound = bound + np.where(
                x < 0.9, 0.0,
                np.where(x < 1.0, (x - 0.9) * 10, np.minimum(np.exp(np.minimum(2 * x - 2, 3.0)), 10.0)),
            )
        good_rew = -10.0 * coll.sum(axis=2) - bound  # [B, nG]
        adv_rew = 10.0 * coll.sum(axis=(1, 2)).astype(np.float64)  # [B]
        return np.concatenate([np.repeat(adv_rew[:, None], nAdv, axis=1), good_rew], axis=1)

    def observe(self) -> np.ndarray:
        """Observations, float32 ``[B, nA, obs_dim]``; row i valid up to ``obs_sizes[i]``."""
        B, nA, nAdv, nG = self.num_envs, self.num_agents, self.num_adversaries, self.num_good
        obs = np.zeros((B, nA, self.obs_dim), dtype=np.float32)
        s = _write_common(obs, self._p, self._v, self._lm, self._arange_agents, self._others)
        for c in (0, 1):  # velocities of the good agents (other good agents, for a good agent)
            gv = self._v[c][:, nAdv:]  # [B, nG]
            obs[:, :nAdv, s + c:s + 2 * nG:2] = gv[:, None, :]
            if nG > 1:
                obs[:, nAdv:, s + c:s + 2 * (nG - 1):2] = gv[:, self._good_others]
        return obs


# ---------------------------------------------------------------------- helpers
def make_simple_spread_vec(num_envs: int, **kwargs: Any) -> SimpleSpreadVec:
    """``SimpleSpreadVec(num_envs, **kwargs)``; the batched entry of the registry."""
    return SimpleSpreadVec(num_envs, **kwargs)


def make_simple_tag_vec(num_envs: int, **kwargs: Any) -> SimpleTagVec:
    """``SimpleTagVec(num_envs, **kwargs)``; the batched entry of the registry."""
    return SimpleTagVec(num_envs, **kwargs)


def make_mpe2_simple_spread(**kwargs: Any):
    """mpe2's ``simple_spread_v3.parallel_env(**kwargs)`` (the single reference env)."""
    from mpe2 import simple_spread_v3

    return simple_spread_v3.parallel_env(**kwargs)


def make_mpe2_simple_tag(**kwargs: Any):
    """mpe2's ``simple_tag_v3.parallel_env(**kwargs)`` (the single reference env)."""
    from mpe2 import simple_tag_v3

    return simple_tag_v3.parallel_env(**kwargs)


def _mpe2_world(env: Any):
    raw = getattr(env, "unwrapped", env)
    world = getattr(raw, "world", None)
    if world is None:
        raise TypeError(f"{env!r} is not an mpe2 environment (no .unwrapped.world)")
    return raw, world


def load_mpe2_state(vec: _MPEVec, env: Any, index: int = 0) -> None:
    """Copy the state of mpe2 environment ``env`` (parallel or AEC) into slot ``index`` of ``vec``.

    Copies agent positions and velocities, landmark positions and the step
    counter; the slot's running episode return restarts at zero.  Call
    ``vec.observe()`` afterwards for the observations of the copied state.
    """
    raw, world = _mpe2_world(env)
    names = [a.name for a in world.agents]
    if names != vec.agent_names or len(world.landmarks) != vec.num_landmarks:
        raise ValueError(
            f"mpe2 world has agents {names} and {len(world.landmarks)} landmarks; "
            f"{type(vec).__name__} has {vec.agent_names} and {vec.num_landmarks}"
        )
    vec.pos[index] = np.array([a.state.p_pos for a in world.agents], dtype=np.float64)
    vec.vel[index] = np.array([a.state.p_vel for a in world.agents], dtype=np.float64)
    if vec.num_landmarks:
        vec.landmark_pos[index] = np.array([lm.state.p_pos for lm in world.landmarks], dtype=np.float64)
    vec.steps[index] = int(getattr(raw, "steps", 0))
    vec.episode_return[index] = 0.0
    vec._needs_reset = False


def from_mpe2(envs: Sequence[Any], **kwargs: Any) -> _MPEVec:
    """Build a batched twin with one slot per mpe2 environment in ``envs``, state copied in.

    The task and its settings (N, local_ratio, numbers of agents/obstacles,
    max_cycles, continuous_actions) are read from the first environment; extra
    ``kwargs`` (e.g. ``seed``) go to the constructor.
    """
    envs = list(envs)
    if not envs:
        raise ValueError("from_mpe2 needs at least one mpe2 environment")
    raw, world = _mpe2_world(envs[0])
    task = raw.metadata.get("name")
    common = dict(continuous_actions=raw.continuous_actions, max_cycles=raw.max_cycles)
    common.update(kwargs)
    if task == "simple_spread_v3":
        vec: _MPEVec = SimpleSpreadVec(len(envs), N=len(world.agents), local_ratio=raw.local_ratio, **common)
    elif task == "simple_tag_v3":
        n_adv = sum(bool(getattr(a, "adversary", False)) for a in world.agents)
        vec = SimpleTagVec(len(envs), num_good=len(world.agents) - n_adv, num_adversaries=n_adv,
                           num_obstacles=len(world.landmarks), **common)
    else:
        raise ValueError(f"no batched twin for mpe2 task {task!r}")
    for i, env in enumerate(envs):
        load_mpe2_state(vec, env, i)
    return vec


def mpe_registry() -> dict[str, tuple]:
    """``{task_name: (make_single, make_batched)}`` for the two MPE tasks:
    single = mpe2's parallel env, batched = the twin here (``make_batched(num_envs)``)."""
    return {
        "simple_spread_v3": (make_mpe2_simple_spread, make_simple_spread_vec),
        "simple_tag_v3": (make_mpe2_simple_tag, make_simple_tag_vec),
    }
