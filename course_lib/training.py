"""Training helpers shared by the learning algorithms: exploration schedules,
target-network updates, the one-step TD target, seeding and logging.

Taught in notebooks/02_independent_learners (where students write
``dqn_td_target`` and ``update_target`` themselves; their references are in
:mod:`course_lib.algos.iql`); reused by notebooks/03-08.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np

__all__ = [
    "linear_schedule",
    "LinearSchedule",
    "hard_update",
    "soft_update",
    "td_target",
    "seed_everything",
    "MetricLogger",
]


# ------------------------------------------------------------------- schedules
def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    """Value at step ``t`` of a linear ramp from ``start`` to ``end`` over ``duration``
    steps, constant at ``end`` afterwards (CleanRL's epsilon schedule).

    >>> linear_schedule(1.0, 0.05, 100, 50)
    0.525
    """
    if duration <= 0:
        return float(end)
    frac = min(max(float(t) / float(duration), 0.0), 1.0)
    return float(start + frac * (end - start))


class LinearSchedule:
    """Callable form of :func:`linear_schedule`: ``LinearSchedule(1.0, 0.05, 1000)(t)``."""

    def __init__(self, start: float, end: float, duration: int):
        self.start, self.end, self.duration = float(start), float(end), int(duration)

    def __call__(self, t: int) -> float:
        return linear_schedule(self.start, self.end, self.duration, t)

    def __repr__(self) -> str:
        return f"LinearSchedule({self.start}, {self.end}, {self.duration})"


# ------------------------------------------------------------- target networks
def hard_update(target, source) -> None:
    """Copy every parameter and buffer of ``source`` into ``target`` (in place)."""
    target.load_state_dict(source.state_dict())


def soft_update(target, source, tau: float) -> None:
    """Polyak averaging in place: ``target <- tau * source + (1 - tau) * target``."""
    import torch

    with torch.no_grad():
        for t_param, s_param in zip(target.parameters(), source.parameters()):
            t_param.mul_(1.0 - tau).add_(s_param, alpha=tau)
        for t_buf, s_buf in zip(target.buffers(), source.buffers()):
            t_buf.copy_(s_buf)


# ------------------------------------------------------------------ TD target
def td_target(rewards, next_q_max, dones, gamma: float):
    """One-step TD target ``r + gamma * (1 - done) * max_a' Q_target(s', a')``.

    Works on NumPy arrays and torch tensors alike (shapes broadcast); ``dones`` marks
    terminal transitions (1/True: no bootstrap; truncation is not terminal).
    """
    try:
        import torch

        if isinstance(rewards, torch.Tensor) or isinstance(next_q_max, torch.Tensor):
            rewards = torch.as_tensor(rewards, dtype=torch.float32)
            next_q_max = torch.as_tensor(next_q_max, dtype=torch.float32)
            dones = torch.as_tensor(dones, dtype=torch.float32)
            return rewards + gamma * (1.0 - dones) * next_q_max
    except ImportError:  # pragma: no cover
        pass
    rewards = np.asarray(rewards, dtype=float)
    next_q_max = np.asarray(next_q_max, dtype=float)
    dones = np.asarray(dones, dtype=float)
    return rewards + gamma * (1.0 - dones) * next_q_max


# -------------------------------------------------------------------- seeding
def seed_everything(seed: int, torch_threads: int | None = None) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch (imported here); optionally set torch's thread
    count (the course machines have 2 cores: ``torch_threads=1`` keeps runs polite).
    Returns a NumPy Generator seeded with ``seed``."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch_threads is not None:
        torch.set_num_threads(int(torch_threads))
    return np.random.default_rng(seed)


# -------------------------------------------------------------------- logging
class MetricLogger:
    """Collect one row of metrics per logged step; ``to_frame()`` gives the DataFrame
    that ``train(...)`` returns and the plotting helpers take.

    >>> log = MetricLogger(seed=0)           # constant columns on every row
    >>> log.log(step=100, episode_return=1.2, **{"loss/q": 0.3})
    >>> df = log.to_frame()

    ``sps`` (environment steps per second since the logger started) is filled in by
    :meth:`log` when ``step`` is given.
    """

    def __init__(self, **constants: Any):
        self.constants = dict(constants)
        self.rows: list[dict[str, Any]] = []
        self.start = time.perf_counter()

    def log(self, step: int | None = None, **metrics: Any) -> dict[str, Any]:
        row: dict[str, Any] = dict(self.constants)
        if step is not None:
            row["step"] = int(step)
            elapsed = max(time.perf_counter() - self.start, 1e-9)
            row.setdefault("sps", step / elapsed)
        for k, v in metrics.items():
            row[k] = v.item() if hasattr(v, "item") and np.ndim(v) == 0 else v
        if step is not None and "sps" in metrics:
            row["sps"] = metrics["sps"]
        self.rows.append(row)
        return row

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for r in rows:
            self.rows.append({**self.constants, **r})

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)
