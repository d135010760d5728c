"""CPU speed tricks of IPPO and Method I, kept apart from the readable loop in :mod:`course_lib.algos.ppo`.

The loop reads like notebooks/07_method_i; these few functions are why it runs about
twice as fast on one CPU thread as the plain version (``bench/method_i.py``'s throughput
part measures it):

* **agent-major layout**: training tensors are ``[n agents, M samples, ...]``, each
  agent's samples contiguous, so every layer of all agents is one batched matmul
  (``baddbmm``), forward and backward (:func:`encode_major`, :func:`agent_major`);
* **fused heads**: the policy and value heads in one matmul (a skinny matmul costs mostly
  its fixed overhead on a CPU) (:func:`act_value`);
* **closed forms** instead of ``torch.distributions``: Gumbel-max sampling of a
  categorical, the Gaussian log-density and entropy in a few tensor ops;
* Adam's fused CPU kernel (:func:`adam`).

``tests/test_ppo.py`` checks that they agree with the plain version
(:meth:`course_lib.algos.ppo.ActorCritic.distribution`, ``torch.distributions`` on the
``[..., n, d]`` layout).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from course_lib.nets import AgentLinear, from_major, to_major

__all__ = ["encode_major", "act_value", "gaussian_log_prob", "agent_major", "adam"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def encode_major(net, obs: torch.Tensor) -> torch.Tensor:
    """``net``'s encoder on agent-major observations ``[n, M, obs_size] -> [n, M, latent_dim]``."""
    x = obs
    if net.agent_id:
        ids = torch.eye(net.num_agents)[:, None, :].expand(net.num_agents, x.shape[1], net.num_agents)
        x = torch.cat([x, ids], dim=-1)
    for layer in net.encoder:
        x = layer.major(x) if isinstance(layer, AgentLinear) else layer(x)
    return x


def act_value(net, latent: torch.Tensor, action: torch.Tensor | None = None, *, deterministic: bool = False,
              major: bool = False, generator: torch.Generator | None = None):
    """``(action, log_prob, entropy, value)`` per agent from the latents, both heads in one matmul.

    ``latent``: ``[..., n, m]`` (``major``: ``[n, M, m]``, and the outputs ``[n, M, ...]``).
    ``action=None`` draws one: discrete ints (Gumbel-max; ``deterministic``: argmax),
    continuous raw Gaussian samples (``deterministic``: the mean), from ``generator``
    (None: torch's global generator); otherwise ``log_prob`` is that of ``action``.
    """
    w = torch.cat([net.policy_head.weight, net.value_head.weight], dim=-1)
    bias = torch.cat([net.policy_head.bias, net.value_head.bias], dim=-1)
    if major and w.shape[0] > 1:
        both = torch.baddbmm(bias[:, None, :], latent, w)
    elif w.shape[0] == 1:
        both = latent @ w[0] + bias[0]
    else:
        both = from_major(torch.baddbmm(bias[:, None, :], to_major(latent), w), latent.shape[:-2])
    out, value = both[..., :-1], both[..., -1]
    if not net.continuous:
        logp_all = out.log_softmax(-1)
        if action is None:
            if deterministic:
                action = out.argmax(-1)
            else:  # Gumbel-max: argmax(logits + Gumbel noise) is a sample of softmax(logits)
                u = torch.rand_like(out) if generator is None else torch.rand(out.shape, generator=generator)
                action = (out - u.clamp_min_(1e-20).log_().neg_().log_()).argmax(-1)
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        return action, logp_all.gather(-1, action.long()[..., None]).squeeze(-1), entropy, value
    log_std = net.current_log_std()  # [n, A]
    if major:
        log_std = log_std[:, None, :]
    if action is None:
        if deterministic:
            action = out
        else:
            noise = torch.randn_like(out) if generator is None else torch.randn(out.shape, generator=generator)
            action = out + log_std.exp() * noise
    entropy = (log_std + 0.5 + _HALF_LOG_2PI).sum(-1).expand(out.shape[:-1])
    return action, gaussian_log_prob(out, log_std, action), entropy, value


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Log-density of a diagonal Gaussian, summed over the action's entries."""
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - _HALF_LOG_2PI).sum(-1)


def agent_major(x: torch.Tensor) -> torch.Tensor:
    """A rollout tensor ``[T, B, n, ...]`` as ``[n, T * B, ...]``, each agent's samples contiguous."""
    T, B, n = x.shape[:3]
    return x.reshape(T * B, n, *x.shape[3:]).transpose(0, 1).contiguous()


def adam(params: Sequence[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam (eps 1e-5, CleanRL's PPO setting); the fused CPU kernel where torch has one."""
    try:
        return torch.optim.Adam(params, lr=lr, eps=1e-5, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - older torch or unusual devices
        return torch.optim.Adam(params, lr=lr, eps=1e-5)
