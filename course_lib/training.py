"""Exploration schedules shared by the value-based learners.

Taught in notebooks/02_independent_learners; used by IDQN, the stateless Q-learners,
VDN/QMIX, DRQN and the curiosity learners.  (The target-network updates and TD
targets are the notebooks' own TODO functions: ``iql.dqn_td_target``,
``iql.update_target``, ``qmix.joint_td_target``, ``maddpg.soft_update``.)
"""
from __future__ import annotations

__all__ = ["linear_schedule"]


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
