"""Multi-head attention over the agents' messages with a gated integration: an extension of
TarMAC (Das et al. 2019) as taught in notebooks/05_communication
(:class:`course_lib.algos.tarmac.TarMACRound`: one head, ``softmax_j(q_i . k_j / sqrt(d))``).
Taught in notebooks/06_advanced.

Every agent ``i`` holds a hidden state ``h_i``.  Per head ``k`` it broadcasts a key
``k_j = W_K h_j`` (TarMAC's "signature") and a value ``v_j = W_V h_j`` and asks with a
query ``q_i = W_Q h_i``; the weights ``a_ij = softmax_j(q_i . k_j / sqrt(d))`` (over the
senders ``j`` that ``i`` may hear) mix the values into an incoming message per head.
What is new compared with notebook 05: several heads (each can look for something else),
concatenated and projected back (``W_O``), and a learned gate that decides, per feature,
how much of the message replaces the old state (as in a GRU's update gate):

    c_i  = W_O [sum_j a_ij^(1) v_j^(1); ...; sum_j a_ij^(K) v_j^(K)]
    g_i  = sigmoid(W_G [h_i; c_i] + b_G)
    h_i' = g_i * c_i + (1 - g_i) * h_i

With one head and an all-true mask the weights and the incoming message are exactly those
of a ``TarMACRound`` with the same query, key and value layers (tests/test_advanced.py
checks it).  The heads are computed together, as one ``[B, heads, N, N]`` batch of scores,
not in a loop over ``TarMACRound`` modules.  Students write :func:`gated_attention` (TODO 1).
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MultiHeadGatedAttention", "gated_attention", "all_to_all_mask"]


class MultiHeadGatedAttention(nn.Module):
    """Holds the projections; :meth:`forward` is :func:`gated_attention`.

    ``query``, ``key``, ``value``: ``Linear(hidden_dim, num_heads * head_dim)``;
    ``out``: ``Linear(num_heads * head_dim, hidden_dim)``; ``gate``: ``Linear(2 * hidden_dim, hidden_dim)``.
    Head ``k`` uses the columns ``k * head_dim : (k + 1) * head_dim`` of the query, key and value.
    """

    def __init__(self, hidden_dim: int, num_heads: int = 4, head_dim: int = 16):
        super().__init__()
        if min(int(hidden_dim), int(num_heads), int(head_dim)) < 1:
            raise ValueError(f"hidden_dim, num_heads and head_dim must be >= 1, got "
                             f"{hidden_dim}, {num_heads}, {head_dim}")
        self.hidden_dim, self.num_heads, self.head_dim = int(hidden_dim), int(num_heads), int(head_dim)
        width = self.num_heads * self.head_dim
        self.query = nn.Linear(self.hidden_dim, width)
        self.key = nn.Linear(self.hidden_dim, width)
        self.value = nn.Linear(self.hidden_dim, width)
        self.out = nn.Linear(width, self.hidden_dim)
        self.gate = nn.Linear(2 * self.hidden_dim, self.hidden_dim)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None):
        if hidden.dim() != 3 or hidden.shape[-1] != self.hidden_dim:
            raise ValueError(f"hidden should be [batch, agents, {self.hidden_dim}], got {tuple(hidden.shape)}")
        if mask is not None:
            mask = torch.as_tensor(mask, dtype=torch.bool)
            N = hidden.shape[1]
            if mask.shape[-2:] != (N, N) or mask.dim() not in (2, 3):
                raise ValueError(f"mask should be [{N}, {N}] or [batch, {N}, {N}] (receiver i, sender j), "
                                 f"got {tuple(mask.shape)}")
            if not mask.any(-1).all():
                raise ValueError("every receiver must hear at least one sender: a row of the mask is all False "
                                 "(add self loops)")
        return gated_attention(self, hidden, mask)


def all_to_all_mask(num_agents: int, self_loops: bool = True) -> torch.Tensor:
    """``[N, N]`` bool: every agent hears every agent (and itself unless ``self_loops=False``)."""
    mask = torch.ones(num_agents, num_agents, dtype=torch.bool)
    if not self_loops:
        mask &= ~torch.eye(num_agents, dtype=torch.bool)
    return mask


def gated_attention(layer: MultiHeadGatedAttention, hidden: torch.Tensor,
                    mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One round of multi-head attention communication with gated integration.

    Args:
        layer: a :class:`MultiHeadGatedAttention` (its five Linear layers).
        hidden: ``[B, N, H]`` the agents' hidden states.
        mask: ``[N, N]`` or ``[B, N, N]`` bool, ``mask[..., i, j]`` True when agent ``i``
            hears agent ``j``; None means everyone hears everyone (itself included).
            Every row must allow at least one sender.

    Returns:
        ``(new_hidden [B, N, H], weights [B, heads, N, N])``; ``weights[b, k, i]`` is a
        distribution over the senders ``j`` (0 where the mask forbids).
    Taught in notebooks/06_advanced.
    """
    B, N, _ = hidden.shape
    K, d = layer.num_heads, layer.head_dim

    def heads(x):  # [B, N, K * d] -> [B, K, N, d]
        return x.view(B, N, K, d).transpose(1, 2)

    q, k, v = heads(layer.query(hidden)), heads(layer.key(hidden)), heads(layer.value(hidden))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)                # [B, K, N(receivers), N(senders)]
    if mask is not None:
        mask = torch.as_tensor(mask, dtype=torch.bool)
        scores = scores.masked_fill(~mask.view(-1, 1, N, N), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    incoming = (weights @ v).transpose(1, 2).reshape(B, N, K * d)  # heads side by side
    message = layer.out(incoming)
    gate = torch.sigmoid(layer.gate(torch.cat([hidden, message], dim=-1)))
    return gate * message + (1.0 - gate) * hidden, weights
