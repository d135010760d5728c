"""Judge cases of notebooks/06_advanced (see course_lib/judge.py)."""
from __future__ import annotations

import numpy as np
import torch

from course_lib.advanced import attention, curiosity, drqn, gat
from course_lib.judge import case


def _tensor(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float32)


def _seed_torch(rng) -> None:
    torch.manual_seed(int(rng.integers(2**31)))


def _random_mask(rng, shape, n) -> torch.Tensor:
    """Random bool masks with at least one True per row (the diagonal, sometimes)."""
    mask = rng.random(shape) < 0.5
    rows = ~mask.any(-1)
    mask[..., np.arange(n), np.arange(n)] |= rows | (rng.random(shape[:-1]) < 0.5)
    return torch.tensor(mask)


# ------------------------------------------------------------------ TODO 1: gated attention
def _observe_attention(fn, args):
    with torch.no_grad():
        new_hidden, weights = fn(*args)
    return {"hidden": new_hidden, "weights": weights}


@case(reference=attention.gated_attention, atol=1e-5, rtol=1e-4, observe=_observe_attention,
      forbid=[(attention, ["gated_attention"])])
def gated_attention(rng):
    """(layer, hidden, mask): 1 to 4 heads, masks None, [N, N] and [B, N, N] (with and without
    self loops); gate biases shifted so some gates are nearly shut and some nearly open."""
    inputs = []
    for hidden_dim, heads, head_dim, B, N, kind in [(8, 1, 4, 2, 3, None), (6, 2, 3, 3, 4, "shared"),
                                                    (10, 3, 5, 2, 5, "batch"), (4, 4, 2, 1, 6, "no_self"),
                                                    (5, 2, 4, 4, 2, "batch")]:
        _seed_torch(rng)
        layer = attention.MultiHeadGatedAttention(hidden_dim, num_heads=heads, head_dim=head_dim)
        with torch.no_grad():
            layer.gate.bias.copy_(_tensor(rng.normal(size=hidden_dim) * 3))
        hidden = _tensor(rng.normal(size=(B, N, hidden_dim)))
        mask = {None: None, "shared": _random_mask(rng, (N, N), N), "batch": _random_mask(rng, (B, N, N), N),
                "no_self": attention.all_to_all_mask(N, self_loops=False)}[kind]
        inputs.append((layer, hidden, mask))
    return inputs


# ------------------------------------------------------------------------ TODO 2: GAT layer
def _observe_gat(fn, args):
    with torch.no_grad():
        return fn(*args)


@case(reference=gat.gat_forward, atol=1e-5, rtol=1e-4, observe=_observe_gat,
      forbid=[(gat, ["gat_forward", "gat_forward_neighbours", "to_gatconv"])])
def gat_forward(rng):
    """(layer, x, adjacency): 1 to 3 heads, concatenated or averaged, LeakyReLU slopes 0.2 and
    0.05, non-zero biases, adjacency [N, N] or [B, N, N] with and without a diagonal, an
    isolated agent (it attends only to itself)."""
    inputs = []
    for in_dim, out_dim, heads, concat, slope, B, N, shared in [
            (5, 4, 1, True, 0.2, 2, 4, False), (3, 2, 3, True, 0.2, 3, 5, True),
            (6, 3, 2, False, 0.05, 2, 6, False), (4, 4, 2, True, 0.2, 1, 3, True)]:
        _seed_torch(rng)
        layer = gat.GATLayer(in_dim, out_dim, heads=heads, concat=concat, negative_slope=slope)
        with torch.no_grad():
            layer.bias.copy_(_tensor(rng.normal(size=layer.bias.shape)))
            layer.att_src.mul_(3.0)  # larger scores: the LeakyReLU's negative side matters
            layer.att_dst.mul_(3.0)
        x = _tensor(rng.normal(size=(B, N, in_dim)))
        adjacency = rng.random((N, N) if shared else (B, N, N)) < 0.45
        adjacency[..., 0, :] = False                    # agent 0 hears nobody but itself
        inputs.append((layer, x, torch.tensor(adjacency)))
    return inputs


# -------------------------------------------------------------------- TODO 3: DRQN loss
def _grad_norms(module) -> list[float]:
    return [float(p.grad.norm()) if p.grad is not None else 0.0 for p in module.parameters()]


def _observe_drqn(fn, args):
    q_net, target_net, batch, gamma = args
    for p in (*q_net.parameters(), *target_net.parameters()):
        p.grad = None
    loss = fn(q_net, target_net, batch, gamma)
    if not (isinstance(loss, torch.Tensor) and loss.dim() == 0):
        raise AssertionError(f"drqn_loss should return a scalar tensor, got "
                             f"{getattr(loss, 'shape', type(loss).__name__)}")
    if loss.requires_grad:
        loss.backward()
    return {"loss": loss.detach(), "q_grad_norms": _grad_norms(q_net),
            "target_grad_norms": _grad_norms(target_net)}


def _drqn_batch(rng, B, T, D, A):
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T                                      # one full-length sequence
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)
    terminal = rng.random(B) < 0.6                      # some sequences end in a terminal step, some are cut
    dones = np.zeros((B, T), np.float32)
    dones[np.arange(B), lengths - 1] = terminal
    obs = rng.normal(size=(B, T + 1, D)).astype(np.float32)
    obs[np.arange(T + 1)[None, :] > lengths[:, None]] = 0.0  # padding after the last real observation
    return {"obs": _tensor(obs), "actions": torch.tensor(rng.integers(0, A, size=(B, T)) * mask.astype(np.int64)),
            "rewards": _tensor(rng.normal(size=(B, T)) * mask), "dones": _tensor(dones), "mask": _tensor(mask)}


@case(reference=drqn.drqn_loss, atol=1e-5, rtol=1e-4, observe=_observe_drqn,
      forbid=[(drqn, ["drqn_loss"])])
def drqn_loss(rng):
    """(q_net, target_net, batch, gamma): LSTM Q-networks (and one feed-forward pair) with
    different online and target weights, padded sequences of different lengths, terminal and
    cut-off ends, gamma in {0.9, 0.5, 0.99}; the loss, and the gradient norms it sends to both
    networks (none may reach the target network)."""
    inputs = []
    for B, T, D, A, hidden, recurrent, gamma in [(3, 5, 4, 5, 8, True, 0.9), (5, 4, 3, 3, 6, True, 0.5),
                                                 (4, 6, 4, 5, 8, False, 0.99), (2, 3, 2, 4, 5, True, 0.9)]:
        cls = drqn.RecurrentQNetwork if recurrent else drqn.FeedForwardQNetwork
        _seed_torch(rng)
        q_net = cls(D, A, hidden)
        target_net = cls(D, A, hidden)                  # different weights, as after some updates
        inputs.append((q_net, target_net, _drqn_batch(rng, B, T, D, A), gamma))
    return inputs


# -------------------------------------------------------------------- TODO 4: ICM losses
def _observe_icm(fn, args):
    icm = args[0]
    for p in icm.parameters():
        p.grad = None
    inverse_loss, forward_loss, intrinsic = fn(*args)

    def norms(loss, module):
        params = list(module.parameters())
        if not (isinstance(loss, torch.Tensor) and loss.requires_grad):
            return [0.0] * len(params)
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return [float(g.norm()) if g is not None else 0.0 for g in grads]

    return {"inverse_loss": inverse_loss, "forward_loss": forward_loss, "intrinsic": intrinsic,
            "intrinsic_requires_grad": float(bool(getattr(intrinsic, "requires_grad", False))),
            "encoder_grads_from_inverse": norms(inverse_loss, icm.encoder),
            "inverse_grads": norms(inverse_loss, icm.inverse),
            "encoder_grads_from_forward": norms(forward_loss, icm.encoder),
            "forward_model_grads": norms(forward_loss, icm.forward_model)}


@case(reference=curiosity.icm_losses, atol=1e-5, rtol=1e-4, observe=_observe_icm,
      forbid=[(curiosity, ["icm_losses"])])
def icm_losses(rng):
    """(icm, obs, next_obs, actions): ICMs of different sizes on one-hot grid observations and
    on Gaussian ones, 3 to 5 actions; the two losses, the intrinsic reward, and which
    parameters each loss trains (the forward loss must not reach the encoder)."""
    inputs = []
    for obs_dim, A, feature_dim, hidden, B, one_hot in [(9, 5, 4, 8, 12, True), (6, 3, 5, 7, 9, False),
                                                         (17, 5, 8, 16, 20, True), (4, 4, 3, 5, 6, False)]:
        _seed_torch(rng)
        icm = curiosity.ICM(obs_dim, A, feature_dim=feature_dim, hidden=hidden)
        if one_hot:
            obs, next_obs = (np.eye(obs_dim, dtype=np.float32)[rng.integers(0, obs_dim, B)] for _ in range(2))
        else:
            obs, next_obs = rng.normal(size=(B, obs_dim)), rng.normal(size=(B, obs_dim))
        inputs.append((icm, _tensor(obs), _tensor(next_obs), torch.tensor(rng.integers(0, A, B))))
    return inputs
