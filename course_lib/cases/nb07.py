"""Judge cases of notebooks/07_method_i: GAE, the clipped surrogate, the distillation
loss and the topology's pairs (see course_lib/judge.py)."""
from __future__ import annotations

import numpy as np
import torch

from course_lib.algos import la_ippo, ppo
from course_lib.judge import case


def _tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


@case(reference=ppo.gae, atol=1e-4, rtol=1e-4, forbid=[(ppo, ["gae"])])
def gae(rng: np.random.Generator):
    """Rollouts of several shapes, with episode ends anywhere, and a few (gamma, lambda)."""
    cases = []
    for shape, gamma, lam in [((5,), 0.9, 0.8), ((6, 4), 0.95, 0.95), ((25, 3, 2), 0.99, 1.0),
                              ((8, 2, 3), 0.5, 0.0), ((4, 1), 1.0, 0.9)]:
        rewards = _tensor(rng.normal(size=shape) * 2)
        values = _tensor(rng.normal(size=shape) * 5)
        dones = _tensor(rng.random(shape) < 0.25)
        last_values = _tensor(rng.normal(size=shape[1:]) * 5)
        cases.append((rewards, values, dones, last_values, gamma, lam))
    return cases


def _surrogate_and_grad(fn, args):
    new_log_prob, old_log_prob, advantages, clip = args
    new_log_prob = new_log_prob.clone().requires_grad_(True)
    loss = fn(new_log_prob, old_log_prob, advantages, clip)
    loss = torch.as_tensor(loss)
    grad = torch.autograd.grad(loss, new_log_prob, allow_unused=True)[0] if loss.requires_grad else None
    return loss.detach(), torch.zeros_like(new_log_prob) if grad is None else grad


@case(reference=ppo.clipped_surrogate, observe=_surrogate_and_grad, atol=1e-5, rtol=1e-4,
      forbid=[(ppo, ["clipped_surrogate"])])
def clipped_surrogate(rng: np.random.Generator):
    """Log-probabilities whose ratios fall inside and outside the clip range, advantages of both
    signs; the loss and its gradient with respect to the new log-probabilities are compared."""
    cases = []
    for size, clip in [(6, 0.2), (50, 0.1), (32, 0.3), (10, 0.2)]:
        old = _tensor(rng.normal(size=size) - 1.5)
        new = old + _tensor(rng.normal(size=size) * 0.4)
        adv = _tensor(rng.normal(size=size) * 2)
        cases.append((new, old, adv, clip))
    return cases


def _distill_and_grads(fn, args):
    student, teacher = (x.clone().requires_grad_(True) for x in args)
    loss = torch.as_tensor(fn(student, teacher))
    grads = torch.autograd.grad(loss, (student, teacher), allow_unused=True) if loss.requires_grad else (None, None)
    grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, (student, teacher))]
    return loss.detach(), grads[0], grads[1]


@case(reference=la_ippo.distillation_loss, observe=_distill_and_grads, atol=1e-4, rtol=1e-4,
      forbid=[(la_ippo, ["distillation_loss"])])
def distillation_loss(rng: np.random.Generator):
    """Latent batches of a few sizes; the loss, the student's gradient and the teacher's
    gradient (zero: the teacher is detached) are compared."""
    return [(_tensor(rng.normal(size=(b, m))), _tensor(rng.normal(size=(b, m)) * 0.5))
            for b, m in [(4, 3), (64, 16), (1, 8), (20, 64)]]


def _sorted_pairs(fn, args):
    try:
        pairs = fn(*args)
    except ValueError:
        return [[-1, -1]]  # the expected answer for an unknown topology or a single agent
    return sorted([int(p[0]), int(p[1])] for p in pairs)


@case(reference=la_ippo.topology_pairs, observe=_sorted_pairs, forbid=[(la_ippo, ["topology_pairs"])])
def topology_pairs(rng: np.random.Generator):
    """Every topology for 2 to 7 agents (compared as sorted lists), plus two invalid calls."""
    sizes = [2, 3] + [int(n) for n in rng.integers(4, 8, size=2)]
    cases = [(topology, n) for n in sizes for topology in la_ippo.TOPOLOGIES]
    cases += [("tree", 4), ("ring", 1)]
    return cases
