"""Graph attention (GAT, Velickovic et al. 2018) for message passing between agents on
a proximity graph, written to match torch_geometric's ``GATConv`` weight for weight.

For every head, with ``z_i = W x_i`` (``lin``, no bias):

    e_ij  = LeakyReLU(a_dst . z_i + a_src . z_j)           for j in N(i) and j = i
    alpha_ij = softmax_j(e_ij)
    out_i = concat_heads(sum_j alpha_ij z_j) + bias           (or the mean over heads)

Edges run from the sender ``j`` to the receiver ``i``; as in ``GATConv`` (its default
``add_self_loops=True``) every node also attends to itself.

* :func:`gat_forward` -- dense form on an adjacency matrix ``[B, N, N]``
  (students write it in notebooks/06_advanced, TODO 2).
* :func:`gat_forward_neighbours` -- the same layer on ``k`` neighbour indices per agent:
  cost grows with ``N k``, not ``N^2`` (how notebook 06 times the GNN of large teams).
* :func:`to_gatconv`, :func:`edge_index_from_adjacency` -- the same weights in
  ``torch_geometric.nn.GATConv`` and a batch of graphs as one ``edge_index``, to check
  against the library.
* :func:`knn_adjacency`, :func:`knn_neighbours` -- proximity graphs from positions.

Taught in notebooks/06_advanced.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GATLayer", "gat_forward", "gat_forward_neighbours", "to_gatconv",
           "edge_index_from_adjacency", "knn_adjacency", "knn_neighbours"]


class GATLayer(nn.Module):
    """The parameters of one GAT layer, named and shaped like ``GATConv``'s.

    ``lin``: ``Linear(in_dim, heads * out_dim, bias=False)``; ``att_src``, ``att_dst``:
    ``[heads, out_dim]``; ``bias``: ``[heads * out_dim]`` (concat) or ``[out_dim]``.
    """

    def __init__(self, in_dim: int, out_dim: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2):
        super().__init__()
        self.in_dim, self.out_dim, self.heads = int(in_dim), int(out_dim), int(heads)
        self.concat, self.negative_slope = bool(concat), float(negative_slope)
        self.lin = nn.Linear(self.in_dim, self.heads * self.out_dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(self.heads, self.out_dim))
        self.att_dst = nn.Parameter(torch.empty(self.heads, self.out_dim))
        self.bias = nn.Parameter(torch.zeros(self.heads * self.out_dim if self.concat else self.out_dim))
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"x should be [batch, agents, {self.in_dim}], got {tuple(x.shape)}")
        N = x.shape[1]
        adjacency = torch.as_tensor(adjacency)
        if adjacency.dim() not in (2, 3) or adjacency.shape[-2:] != (N, N):
            raise ValueError(f"adjacency should be [{N}, {N}] or [batch, {N}, {N}] (receiver i, sender j), "
                             f"got {tuple(adjacency.shape)}")
        return gat_forward(self, x, adjacency)


def _with_self_loops(adjacency: torch.Tensor, n: int) -> torch.Tensor:
    return torch.as_tensor(adjacency, dtype=torch.bool) | torch.eye(n, dtype=torch.bool)


def gat_forward(layer: GATLayer, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """GAT layer on dense graphs.

    Args:
        layer: a :class:`GATLayer`.
        x: ``[B, N, in_dim]`` node (agent) features.
        adjacency: ``[B, N, N]`` or ``[N, N]`` bool, ``adjacency[..., i, j]`` True when
            ``j`` sends to ``i``; self loops are added whatever the diagonal says.

    Returns ``[B, N, heads * out_dim]`` (``layer.concat``) or ``[B, N, out_dim]`` (mean of heads).
    Taught in notebooks/06_advanced.
    """
    B, N, _ = x.shape
    H, C = layer.heads, layer.out_dim
    z = layer.lin(x).view(B, N, H, C)
    score_src = (z * layer.att_src).sum(-1).transpose(1, 2)          # [B, H, N]
    score_dst = (z * layer.att_dst).sum(-1).transpose(1, 2)          # [B, H, N]
    e = F.leaky_relu(score_dst[..., :, None] + score_src[..., None, :], layer.negative_slope)
    edges = _with_self_loops(adjacency, N).view(-1, 1, N, N)
    alpha = torch.softmax(e.masked_fill(~edges, float("-inf")), dim=-1)  # [B, H, N(i), N(j)]
    out = (alpha @ z.transpose(1, 2)).transpose(1, 2)                # [B, N, H, C]
    out = out.reshape(B, N, H * C) if layer.concat else out.mean(dim=2)
    return out + layer.bias


def gat_forward_neighbours(layer: GATLayer, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """:func:`gat_forward` on neighbour lists: ``neighbours [B, N, k]`` (long) are the
    senders of each agent (itself excluded, no repeats); the agent itself is added.
    Equal to :func:`gat_forward` with the matching adjacency, at O(N k) cost."""
    B, N, _ = x.shape
    H, C = layer.heads, layer.out_dim
    own = torch.arange(N).view(1, N, 1).expand(B, N, 1)
    senders = torch.cat([own, neighbours.long()], dim=-1)            # [B, N, k + 1]
    z = layer.lin(x).view(B, N, H, C)
    score_src = (z * layer.att_src).sum(-1)                          # [B, N, H]
    score_dst = (z * layer.att_dst).sum(-1)
    flat = (torch.arange(B).view(B, 1, 1) * N + senders).reshape(-1)  # rows of the [B * N, ...] views
    K1 = senders.shape[-1]
    z_j = z.reshape(B * N, H * C).index_select(0, flat).view(B, N, K1, H, C)
    s_j = score_src.reshape(B * N, H).index_select(0, flat).view(B, N, K1, H)
    alpha = torch.softmax(F.leaky_relu(score_dst[:, :, None] + s_j, layer.negative_slope), dim=2)  # [B, N, k + 1, H]
    out = (alpha[..., None] * z_j).sum(dim=2)                        # [B, N, H, C]
    out = out.reshape(B, N, H * C) if layer.concat else out.mean(dim=2)
    return out + layer.bias


def edge_index_from_adjacency(adjacency: torch.Tensor) -> torch.Tensor:
    """A batch of dense graphs ``[B, N, N]`` as one PyG ``edge_index [2, E]`` over ``B * N``
    nodes (row 0: senders ``j``, row 1: receivers ``i``); self loops dropped (GATConv adds them)."""
    adjacency = torch.as_tensor(adjacency, dtype=torch.bool)
    if adjacency.dim() == 2:
        adjacency = adjacency[None]
    B, N, _ = adjacency.shape
    adjacency = adjacency & ~torch.eye(N, dtype=torch.bool)
    b, i, j = adjacency.nonzero(as_tuple=True)
    return torch.stack([b * N + j, b * N + i])


def to_gatconv(layer: GATLayer):
    """A ``torch_geometric.nn.GATConv`` holding ``layer``'s weights (a copy)."""
    from torch_geometric.nn import GATConv

    conv = GATConv(layer.in_dim, layer.out_dim, heads=layer.heads, concat=layer.concat,
                   negative_slope=layer.negative_slope, add_self_loops=True, bias=True)
    with torch.no_grad():
        conv.lin.weight.copy_(layer.lin.weight)
        conv.att_src.copy_(layer.att_src.view(1, layer.heads, layer.out_dim))
        conv.att_dst.copy_(layer.att_dst.view(1, layer.heads, layer.out_dim))
        conv.bias.copy_(layer.bias)
    return conv


def knn_neighbours(positions: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``[B, N, k]`` of each agent's ``k`` nearest other agents (positions ``[B, N, 2]``)."""
    if not 0 < int(k) < positions.shape[1]:
        raise ValueError(f"k must be between 1 and agents - 1 = {positions.shape[1] - 1}, got {k}")
    dist = torch.cdist(positions, positions)
    dist = dist + torch.eye(positions.shape[1]) * 1e9                 # never oneself
    return dist.topk(k, dim=-1, largest=False).indices


def knn_adjacency(positions: torch.Tensor, k: int) -> torch.Tensor:
    """Bool ``[B, N, N]``: ``[b, i, j]`` True when ``j`` is one of ``i``'s ``k`` nearest agents."""
    B, N, _ = positions.shape
    adjacency = torch.zeros(B, N, N, dtype=torch.bool)
    adjacency.scatter_(2, knn_neighbours(positions, k), True)
    return adjacency
