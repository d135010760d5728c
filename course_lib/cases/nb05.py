"""Judge cases of notebooks/05_communication (see course_lib/judge.py).

``reinforce_loss`` is judged on its value and on its gradients with respect to the
log-probabilities, the baseline values and the entropies, so an advantage that is not
treated as a constant (no ``detach``) fails although the loss value is right.
"""
from __future__ import annotations

import torch

from course_lib.algos import commnet, reinforce, tarmac
from course_lib.judge import case

COMMNET = (commnet, ["comm_mean"])
REINFORCE = (reinforce, ["reinforce_loss"])
TARMAC = (tarmac, ["attention_weights"])


def _tensor(array) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float32)


def _alive(rng, shape, p=0.7):
    """Presence masks with some lone agents and some empty envs among the rows."""
    alive = rng.random(shape) < p
    alive[0] = True                       # everybody present
    if shape[0] > 2:
        alive[1] = False                  # nobody present
        alive[2] = False
        alive[2, 0] = True                # one agent alone
    return torch.tensor(alive)


def _observe_no_grad(fn, args):
    with torch.no_grad():
        return fn(*args)


@case(reference=commnet.comm_mean, atol=1e-5, rtol=1e-5, observe=_observe_no_grad, forbid=[COMMNET])
def comm_mean(rng):
    """(hidden, alive[, reach]): 1 to 10 agents, hidden 1 to 16, bool and 0/1 float presence
    masks with full, empty and single-agent envs, and random reach matrices."""
    inputs = []
    for B, N, H in [(4, 5, 8), (6, 3, 16), (3, 1, 4), (5, 10, 1), (7, 2, 3)]:
        hidden = _tensor(rng.normal(size=(B, N, H)) * 2)
        alive = _alive(rng, (B, N))
        inputs.append((hidden, alive))
        inputs.append((hidden, alive.float()))
    for B, N, H in [(4, 4, 6), (5, 6, 3)]:
        reach = torch.tensor(rng.random((B, N, N)) < 0.6)
        inputs.append((_tensor(rng.normal(size=(B, N, H))), _alive(rng, (B, N)), reach))
    return inputs


def _observe_loss(fn, args):
    log_probs, values, returns, entropy, mask, *coefs = args
    log_probs, values, entropy = (t.clone().requires_grad_(True) for t in (log_probs, values, entropy))
    loss = fn(log_probs, values, returns, entropy, mask, *coefs)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise AssertionError(f"reinforce_loss should return a scalar tensor; got {type(loss).__name__}"
                             f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}")
    if not loss.requires_grad:
        raise AssertionError("reinforce_loss's result carries no gradient: build it from the given tensors")
    grads = torch.autograd.grad(loss.reshape(()), [log_probs, values, entropy], allow_unused=True)
    names = ["d_log_probs", "d_values", "d_entropy"]
    out = {"loss": loss.detach().reshape(())}
    for name, grad, like in zip(names, grads, (log_probs, values, entropy)):
        out[name] = torch.zeros_like(like) if grad is None else grad
    return out


@case(reference=reinforce.reinforce_loss, atol=1e-5, rtol=1e-4, observe=_observe_loss, forbid=[REINFORCE])
def reinforce_loss(rng):
    """(log_probs, values, returns, entropy, mask, value_coef, entropy_coef): [T, B, N] and [B, N]
    tensors, about 30% of the mask zero (one all-zero mask), several coefficient pairs."""
    inputs = []
    shapes = [((6, 4, 3), 0.03, 0.01), ((5, 2), 0.5, 0.0), ((3, 2, 5), 0.0, 0.1), ((8, 1, 2), 1.0, 0.05),
              ((4, 3), 0.03, 0.01)]
    for i, (shape, value_coef, entropy_coef) in enumerate(shapes):
        mask = rng.random(shape) < 0.7
        if i == len(shapes) - 1:
            mask[:] = False                          # nothing counts: the loss is 0
        inputs.append((_tensor(-rng.random(shape) * 2), _tensor(rng.normal(size=shape)),
                       _tensor(rng.normal(size=shape) * 3), _tensor(rng.random(shape)),
                       _tensor(mask), value_coef, entropy_coef))
    return inputs


@case(reference=tarmac.attention_weights, atol=1e-5, rtol=1e-5, observe=_observe_no_grad, forbid=[TARMAC])
def attention_weights(rng):
    """(queries, keys, alive): key sizes 1 to 16, 1 to 8 agents, bool and 0/1 float masks with
    full, empty and single-agent envs, scores up to a few tens (large keys)."""
    inputs = []
    for B, N, d, scale in [(4, 5, 8, 1.0), (5, 3, 16, 3.0), (3, 1, 4, 1.0), (6, 8, 1, 2.0), (4, 4, 2, 5.0)]:
        q = _tensor(rng.normal(size=(B, N, d)) * scale)
        k = _tensor(rng.normal(size=(B, N, d)) * scale)
        alive = _alive(rng, (B, N))
        inputs.append((q, k, alive))
        inputs.append((q, k, alive.float()))
    return inputs
