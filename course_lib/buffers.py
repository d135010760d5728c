"""Replay buffers over NumPy arrays for multi-agent transitions.

A transition is one joint step of ``N`` agents: ``obs [N, obs_dim]``,
``actions [N]``, ``rewards [N]``, ``next_obs [N, obs_dim]``, ``dones [N]`` (terminal,
*not* truncated: a truncated episode still bootstraps), plus optional extras such as
the global ``state [state_dim]`` for mixers.  :meth:`ReplayBuffer.add` takes one
transition or a batch of them from a batched twin (leading dim ``B``), so a
``Vec*`` env step goes in with a single call.  Actions are integer indices, or float
vectors ``[N, action_dim]`` (one-hot or continuous actions, as MADDPG's critics read
them).  :meth:`ReplayBuffer.sample` draws with a NumPy generator (arrays back) or a
torch generator (tensors back).

Taught in notebooks/02_independent_learners (independent DQN); reused by
notebooks/03_value_decomposition (VDN, QMIX), notebooks/04_maddpg and notebooks/06_advanced.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Circular buffer of multi-agent transitions with uniform sampling.

    >>> buf = ReplayBuffer(10_000, num_agents=2, obs_dim=14)
    >>> buf.add(obs, actions, rewards, next_obs, dones)      # arrays [B, N, ...] or [N, ...]
    >>> batch = buf.sample(64, rng)                          # dict of arrays [64, N, ...]
    >>> batch = buf.sample(64, torch.Generator())            # dict of torch tensors

    ``extra`` declares further fields as ``{name: (shape, dtype)}`` (shape of ONE
    transition, e.g. ``{"state": ((12,), np.float32)}``); pass them to :meth:`add` as
    keyword arguments.  Shapes of one transition:

    ===========  ======================  =========
    field        shape                   dtype
    ===========  ======================  =========
    obs          ``[N, obs_dim]``        float32
    actions      ``[N]``                 int64 (``[N, action_dim]`` float32 with ``action_dim``)
    rewards      ``[N]``                 float32
    next_obs     ``[N, obs_dim]``        float32
    dones        ``[N]``                 float32 (1.0 = terminal, no bootstrap)
    ===========  ======================  =========

    Taught in notebooks/02_independent_learners.
    """

    def __init__(self, capacity: int, num_agents: int, obs_dim: int,
                 extra: dict[str, tuple[tuple[int, ...], Any]] | None = None, action_dim: int | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.num_agents = int(num_agents)
        self.obs_dim = int(obs_dim)
        N, D = self.num_agents, self.obs_dim
        self.specs: dict[str, tuple[tuple[int, ...], Any]] = {
            "obs": ((N, D), np.float32),
            "actions": ((N,), np.int64) if action_dim is None else ((N, int(action_dim)), np.float32),
            "rewards": ((N,), np.float32),
            "next_obs": ((N, D), np.float32),
            "dones": ((N,), np.float32),
        }
        for name, (shape, dtype) in (extra or {}).items():
            self.specs[name] = (tuple(int(s) for s in shape), dtype)
        self.data = {
            name: np.zeros((self.capacity,) + shape, dtype=dtype)
            for name, (shape, dtype) in self.specs.items()
        }
        self.pos = 0      # next slot to write
        self.size = 0     # number of stored transitions

    def __len__(self) -> int:
        return self.size

    def _as_batch(self, name: str, value: Any) -> np.ndarray:
        shape, dtype = self.specs[name]
        arr = np.asarray(value)
        if arr.dtype == bool or dtype is np.float32:
            arr = arr.astype(dtype)
        if name in ("rewards", "dones") and arr.shape[-1:] != (self.num_agents,):
            # a shared (team) reward or done per env [B] -> broadcast to every agent
            arr = np.repeat(np.asarray(arr)[..., None], self.num_agents, axis=-1)
        if arr.shape == shape:
            arr = arr[None]
        if arr.shape[1:] != shape:
            raise ValueError(
                f"ReplayBuffer.add: {name} should have shape {shape} for one transition "
                f"or (B,) + {shape} for a batch; got {arr.shape}"
            )
        return arr.astype(dtype, copy=False)

    def add(self, obs, actions, rewards, next_obs, dones, **extra) -> None:
        """Store one transition (``[N, ...]``) or a batch (``[B, N, ...]``).

        ``rewards`` and ``dones`` may also be per env (``[B]``): they are copied to every
        agent.  Pass ``info["final_obs"]`` of a batched twin as ``next_obs`` (the obs
        it returns after an automatic reset belongs to the next episode).
        """
        missing = set(self.specs) - {"obs", "actions", "rewards", "next_obs", "dones"} - set(extra)
        unknown = set(extra) - set(self.specs)
        if missing or unknown:
            raise ValueError(f"ReplayBuffer.add: missing fields {sorted(missing)}, unknown {sorted(unknown)}")
        fields = {"obs": obs, "actions": actions, "rewards": rewards,
                  "next_obs": next_obs, "dones": dones, **extra}
        batch = {k: self._as_batch(k, v) for k, v in fields.items()}
        sizes = {v.shape[0] for v in batch.values()}
        if len(sizes) != 1:
            raise ValueError(f"ReplayBuffer.add: fields have different batch sizes {sorted(sizes)}")
        n = sizes.pop()
        if n > self.capacity:  # keep only the newest
            batch = {k: v[-self.capacity:] for k, v in batch.items()}
            n = self.capacity
        idx = (self.pos + np.arange(n)) % self.capacity
        for k, v in batch.items():
            self.data[k][idx] = v
        self.pos = int((self.pos + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample(self, batch_size: int, rng: Any = None) -> dict[str, Any]:
        """``batch_size`` transitions drawn uniformly with replacement: a dict of arrays, or of
        torch tensors when ``rng`` is a ``torch.Generator`` (indices from ``torch.randint``)."""
        if self.size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty")
        if rng is not None and not isinstance(rng, np.random.Generator):  # a torch.Generator
            import torch

            idx = torch.randint(0, self.size, (int(batch_size),), generator=rng).numpy()
            return {k: torch.from_numpy(v[idx]) for k, v in self.data.items()}
        rng = np.random.default_rng() if rng is None else rng
        idx = rng.integers(0, self.size, size=int(batch_size))
        return {k: v[idx] for k, v in self.data.items()}

    # A checkpoint keeps only the stored rows: a run saved early does not write the whole
    # preallocated capacity (100k-200k transitions) to disk.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["data"] = {k: v[:self.size] for k, v in self.data.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        stored = state.pop("data")
        self.__dict__.update(state)
        self.data = {}
        for name, (shape, dtype) in self.specs.items():
            self.data[name] = np.zeros((self.capacity,) + shape, dtype=dtype)
            self.data[name][:self.size] = stored[name]

    def __repr__(self) -> str:
        return (f"ReplayBuffer(size={self.size}/{self.capacity}, num_agents={self.num_agents}, "
                f"obs_dim={self.obs_dim}, fields={list(self.specs)})")
