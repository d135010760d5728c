"""Judge cases of notebooks/04_maddpg (see course_lib/judge.py).

Each case builds its inputs from the seeded ``rng`` only: small actors and critics of
:mod:`course_lib.algos.maddpg` (torch seeded from ``rng``), random batches.  The
stochastic Gumbel-softmax sampler is judged on deterministic properties: with given
noise, the forward value and the gradient; with its own noise, that every sample is
one-hot and that the sampled actions follow ``softmax(logits)``.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from course_lib.algos import iql, maddpg
from course_lib.judge import case

SAMPLES = 20_000  # draws per row when the answer samples its own noise
FREQUENCY_TOL = 0.02  # > 5 standard errors of a frequency estimated from SAMPLES draws


def _seed_torch(rng: np.random.Generator) -> None:
    torch.manual_seed(int(rng.integers(2**31)))


def _tensor(rng: np.random.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.normal(size=shape) * scale, dtype=torch.float32)


# --------------------------------------------------------------- Gumbel-softmax
def _observe_gumbel(fn, args):
    logits, temperature, noise, weights = args
    if noise is not None:  # deterministic: forward value and straight-through gradient
        x = logits.clone().requires_grad_(True)
        y = fn(x, temperature, noise.clone())
        y = torch.as_tensor(y)
        if y.requires_grad:
            (grad,) = torch.autograd.grad((y * weights).sum(), x, allow_unused=True)
            grad = torch.zeros_like(x) if grad is None else grad
        else:
            grad = torch.zeros_like(x)
        return y.detach(), grad
    # the answer's own noise: one-hot samples distributed as softmax(logits)
    torch.manual_seed(0)
    big = logits.repeat(SAMPLES, 1)
    y = torch.as_tensor(fn(big, temperature)).detach().to(torch.float64)
    hard = y.round()  # y_hard - y_soft + y_soft is one-hot up to rounding
    one_hot = bool(y.shape == big.shape and torch.all((y - hard).abs() < 1e-5)
                   and torch.all((hard == 0) | (hard == 1)) and torch.all(hard.sum(-1) == 1))
    if not one_hot:
        return [0.0, 0.0]
    freq = hard.view(SAMPLES, *logits.shape).mean(0)
    probs = torch.softmax(logits.to(torch.float64), -1)
    return [1.0, float(torch.all((freq - probs).abs() < FREQUENCY_TOL))]


@case(reference=maddpg.gumbel_softmax_st, atol=1e-5, observe=_observe_gumbel,
      forbid=[(maddpg, ["gumbel_softmax_st"])])
def gumbel_softmax_st(rng: np.random.Generator):
    """Given noise (forward value and gradient) for several shapes and temperatures,
    then the answer's own noise on two rows of logits."""
    cases = []
    for shape, temperature in [((6, 5), 1.0), ((4, 3, 5), 0.5), ((2, 7), 2.0), ((3, 2, 4), 1.3)]:
        logits = _tensor(rng, *shape, scale=2.0)
        u = np.clip(rng.random(shape), 1e-6, 1 - 1e-6)
        noise = torch.as_tensor(-np.log(-np.log(u)), dtype=torch.float32)
        cases.append((logits, temperature, noise, _tensor(rng, *shape)))
    for temperature in (1.0, 0.5):
        cases.append((_tensor(rng, 2, 5), temperature, None, None))
    return cases


# --------------------------------------------------------------- critic target
def _networks(rng: np.random.Generator, n: int, d: int, a: int, *, shared: bool, centralised: bool,
              continuous: bool = False):
    _seed_torch(rng)
    actor = maddpg.Actor(n, d, a, hidden=(16,), shared=shared, continuous=continuous)
    critic = maddpg.Critic(n, d, a, hidden=(16, 16), shared=shared, centralised=centralised)
    return actor, critic


@case(reference=maddpg.critic_td_target, atol=1e-5, forbid=[(maddpg, ["critic_td_target"])])
def critic_td_target(rng: np.random.Generator):
    """Random batches, target actors and target critics (centralised or not, shared or
    not, discrete or continuous actions); some transitions terminal."""
    cases = []
    for b, n, d, a, shared, centralised, continuous, gamma in [
        (8, 3, 6, 5, True, True, False, 0.95), (5, 2, 4, 3, False, True, False, 0.9),
        (6, 4, 3, 5, True, False, True, 0.99), (7, 3, 5, 2, False, False, False, 0.5),
    ]:
        actor, critic = _networks(rng, n, d, a, shared=shared, centralised=centralised, continuous=continuous)
        rewards = _tensor(rng, b, n)
        next_obs = _tensor(rng, b, n, d)
        dones = torch.as_tensor(rng.random((b, n)) < 0.3, dtype=torch.float32)
        cases.append((rewards, next_obs, dones, functools.partial(maddpg.greedy_actions, actor), critic, gamma))
    return cases


# ------------------------------------------------------------------ actor loss
def _observe_actor_loss(fn, args):
    critic, obs, actions, new_actions = args
    x = new_actions.clone().requires_grad_(True)
    loss = torch.as_tensor(fn(critic, obs, actions, x))
    if loss.requires_grad:
        (grad,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
        grad = torch.zeros_like(x) if grad is None else grad
    else:
        grad = torch.zeros_like(x)
    return loss.detach(), grad


@case(reference=maddpg.actor_loss, atol=1e-5, observe=_observe_actor_loss,
      forbid=[(maddpg, ["actor_loss"]), (maddpg.Critic, ["own_action_values"])])
def actor_loss(rng: np.random.Generator):
    """Centralised and independent critics; buffer actions one-hot, new actions soft
    (the loss value and its gradient with respect to the new actions)."""
    cases = []
    for b, n, d, a, shared, centralised in [(9, 3, 6, 5, True, True), (4, 2, 5, 3, False, True),
                                            (6, 4, 3, 4, True, True), (5, 3, 4, 5, True, False)]:
        _, critic = _networks(rng, n, d, a, shared=shared, centralised=centralised)
        obs = _tensor(rng, b, n, d)
        actions = torch.as_tensor(np.eye(a)[rng.integers(0, a, size=(b, n))], dtype=torch.float32)
        new_actions = torch.softmax(_tensor(rng, b, n, a), -1)
        cases.append((critic, obs, actions, new_actions))
    return cases


# ----------------------------------------------------------------- soft update
def _observe_soft_update(fn, args):
    target, source, _ = args
    fn(*args)
    return ([p.detach().clone() for p in target.parameters()],
            [p.detach().clone() for p in source.parameters()])


@case(reference=maddpg.soft_update, atol=1e-6, observe=_observe_soft_update,
      forbid=[(maddpg, ["soft_update"]), (iql, ["update_target"])])
def soft_update(rng: np.random.Generator):
    """Actors and critics (shared or per-agent layers) with different weights; tau from
    a tiny step to a full copy."""
    cases = []
    for n, d, a, shared, tau in [(3, 6, 5, True, 0.01), (2, 4, 3, False, 0.3), (3, 5, 5, True, 1.0),
                                 (4, 3, 2, False, 0.0), (2, 3, 4, True, 0.5)]:
        target_actor, target_critic = _networks(rng, n, d, a, shared=shared, centralised=True)
        source_actor, source_critic = _networks(rng, n, d, a, shared=shared, centralised=True)
        if tau in (0.01, 1.0, 0.5):
            cases.append((target_critic, source_critic, tau))
        else:
            cases.append((target_actor, source_actor, tau))
    return cases
