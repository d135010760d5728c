"""Judge cases of notebooks/02_independent_learners (see course_lib/judge.py).

Exploration is random, so ``epsilon_greedy`` is judged on action frequencies over many
draws: a frequency within ``FREQ_TOL`` of the exact probability is recorded as that
probability, any other as measured. Whether equally seeded generators give equal actions
is recorded as 1.0 or 0.0. ``update_target`` works in place, so what is recorded is the
target's parameters afterwards and, as 1.0 or 0.0, the properties an in-place update
must have.
"""
from __future__ import annotations

import numpy as np
import torch

from course_lib.algos import iql
from course_lib.judge import case
from course_lib.nets import mlp

IQL = (iql, ("epsilon_greedy", "boltzmann", "stateless_q_update", "hysteretic_q_update",
             "dqn_td_target", "update_target"))
FREQ_REPS = 10_000  # draws per row of Q-values
FREQ_TOL = 0.03     # > 6 standard deviations of a frequency estimated from FREQ_REPS draws
SAME_SEED = "same actions from generators seeded alike (1 yes, 0 no)"


def _actions(value, shape: tuple, n_actions: int, name: str) -> np.ndarray:
    """``value`` as an int array of ``shape`` with entries in [0, n_actions), or an AssertionError."""
    try:
        acts = np.array(value, dtype=float)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{name} should return an array of integer actions; "
                             f"got {type(value).__name__}: {exc}") from None
    if acts.shape != shape:
        raise AssertionError(f"{name} on q_values of shape {shape + (n_actions,)} should return actions of "
                             f"shape {shape}; got shape {acts.shape}")
    if not (np.all(acts == np.round(acts)) and acts.min() >= 0 and acts.max() < n_actions):
        raise AssertionError(f"{name}'s actions must be integers in [0, {n_actions - 1}]; "
                             f"got values from {acts.min()} to {acts.max()}")
    return acts.astype(np.int64)


def _epsilon_greedy_probs(q: np.ndarray, epsilon: float) -> np.ndarray:
    best = q >= q.max(axis=-1, keepdims=True)
    return epsilon / q.shape[-1] + (1 - epsilon) * best / best.sum(axis=-1, keepdims=True)


def _observe_epsilon_greedy(fn, args):
    kind, q, epsilon, seed = args
    if kind == "same_seed":  # two equally seeded generators must give the same actions
        first = _actions(fn(q.copy(), epsilon, np.random.default_rng(seed)), q.shape[:-1], q.shape[-1],
                         "epsilon_greedy")
        again = _actions(fn(q.copy(), epsilon, np.random.default_rng(seed)), q.shape[:-1], q.shape[-1],
                         "epsilon_greedy")
        return {SAME_SEED: float(np.array_equal(first, again))}
    rows, n_actions = q.shape
    draws = np.broadcast_to(q, (FREQ_REPS, rows, n_actions)).copy()
    acts = _actions(fn(draws, epsilon, np.random.default_rng(seed)), (FREQ_REPS, rows), n_actions,
                    "epsilon_greedy")
    freq = np.stack([np.bincount(acts[:, r], minlength=n_actions) / FREQ_REPS for r in range(rows)])
    probs = _epsilon_greedy_probs(q, epsilon)
    return np.where(np.abs(freq - probs) < FREQ_TOL, probs, freq)


def _describe_epsilon_greedy(args) -> str:
    kind, q, epsilon, _ = args
    if kind == "same_seed":
        return (f"two calls with generators seeded alike, Q-values of shape {q.shape}, epsilon {epsilon}: "
                "the actions must depend only on the generator")
    return f"the share of each action over {FREQ_REPS:,} draws, Q-values {q.tolist()}, epsilon {epsilon}"


@case(reference=iql.epsilon_greedy, observe=_observe_epsilon_greedy, forbid=[IQL],
      describe=_describe_epsilon_greedy)
def epsilon_greedy(rng):
    """Action frequencies for epsilon in {0, 0.05, 0.2, 0.5, 1} and 2, 3 or 5 actions, on three rows of
    small-integer Q-values (many ties), drawn as a [draws, rows, actions] batch; then whether the
    actions depend only on the rng given (a [50, 2, 4] batch drawn twice with equal seeds)."""
    inputs = []
    for epsilon in [0.0, 0.05, 0.2, 0.5, 1.0]:
        for n_actions in [2, 3, 5]:
            q = rng.integers(-2, 3, size=(3, n_actions)).astype(float)
            inputs.append(("frequencies", q, epsilon, int(rng.integers(2**31))))
    inputs.append(("same_seed", rng.normal(size=(50, 2, 4)), 0.5, int(rng.integers(2**31))))
    return inputs


@case(reference=iql.stateless_q_update, forbid=[IQL],
      describe=lambda args: f"q of shape {args[0].shape}, alpha {args[3]}")
def stateless_q_update(rng):
    """(q, action, reward, alpha): q of 2 to 4 dimensions, alpha in {0.01, 0.3, 1}."""
    inputs = []
    for shape in [(5, 2), (4, 3, 3), (7, 2, 4), (2, 3, 2, 5), (1, 1, 6)]:
        for alpha in [0.01, 0.3, 1.0]:
            q = rng.normal(size=shape) * 3
            action = rng.integers(0, shape[-1], size=shape[:-1])
            reward = rng.normal(size=shape[:-1]) * 5
            inputs.append((q, action, reward, alpha))
    return inputs


@case(reference=iql.dqn_td_target, atol=1e-5, rtol=1e-5, forbid=[IQL],
      describe=lambda args: f"rewards of shape {tuple(args[0].shape)}, next_q of shape {tuple(args[1].shape)}, "
                            f"gamma {args[3]}")
def dqn_td_target(rng):
    """(rewards, next_q, dones, gamma): tensors of 1 to 3 dimensions, 2 to 6 actions, about 40%
    terminal transitions, gamma in {0.99, 0.9, 0, 0.5, 1}."""
    inputs = []
    for shape, gamma in [((8,), 0.99), ((16, 2), 0.9), ((5, 3), 0.0), ((4, 2, 3), 0.5), ((32, 4), 1.0)]:
        n_actions = int(rng.integers(2, 7))
        rewards = torch.tensor(rng.normal(size=shape) * 3, dtype=torch.float32)
        next_q = torch.tensor(rng.normal(size=shape + (n_actions,)) * 5, dtype=torch.float32)
        dones = torch.tensor(rng.random(shape) < 0.4, dtype=torch.float32)
        inputs.append((rewards, next_q, dones, gamma))
    return inputs


def _params(net) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def _flat(params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in params]) if params else torch.zeros(0)


def _observe_update_target(fn, args):
    """The target's parameters after the update, and 1.0/0.0 for: the online network is unchanged,
    the target's parameters were updated in place, the target does not follow later changes of the
    online network."""
    target, online, tau = args
    online_before = _params(online)
    target_ids = [id(p) for p in target.parameters()]
    fn(target, online, tau)
    after = _params(target)
    online_unchanged = all(torch.equal(p, o) for p, o in zip(_params(online), online_before))
    in_place = [id(p) for p in target.parameters()] == target_ids
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    independent = all(torch.equal(p, a) for p, a in zip(_params(target), after)) and len(after) == len(target_ids)
    return {"target_parameters": _flat(after), "online_unchanged": float(online_unchanged),
            "updated_in_place": float(in_place), "target_independent_of_online": float(independent)}


@case(reference=iql.update_target, atol=1e-6, rtol=0.0, observe=_observe_update_target, forbid=[IQL],
      describe=lambda args: f"an MLP of {sum(p.numel() for p in args[0].parameters())} parameters, tau {args[2]}")
def update_target(rng):
    """(target, online, tau): MLPs with 0 to 2 hidden layers, tau in {1, 0.005, 0.5, 0.9, 1}."""
    inputs = []
    for sizes, tau in [((4, [8], 3), 1.0), ((6, [16, 16], 5), 0.005), ((3, [7, 5], 2), 0.5),
                       ((5, [], 4), 0.9), ((2, [32], 2), 1.0)]:
        torch.manual_seed(int(rng.integers(2**31)))
        online, target = mlp(*sizes), mlp(*sizes)
        inputs.append((target, online, tau))
    return inputs
