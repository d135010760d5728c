"""TarMAC: targeted multi-agent communication with soft attention (Das et al. 2019).

Taught in notebooks/05_communication.  Read top to bottom:

1. :func:`attention_weights` -- scaled dot-product attention of every receiver's query
   over the signatures (keys) of the present senders, itself included (student TODO);
2. :class:`TarMACRound` -- one round of communication: every agent emits a signature
   ``k_i`` and a value ``v_i`` from its hidden state, every receiver forms a query
   ``q_j`` and reads ``c_j = sum_i a_ji v_i``.  ``round(hidden, alive)`` returns
   ``(messages [B, N, V], weights [B, N, N])``.  It calls ``self.attention_weights``, the
   reference unless a learner plugs in the student's
   (:func:`course_lib.algos.reinforce.plug_parts`);
3. :class:`TarMAC` -- encoder, ``rounds`` communication rounds (each with its own
   :class:`TarMACRound` and state update), decoder (action logits) and value head.
   ``model(obs, alive)`` returns ``(logits, values)`` like
   :class:`~course_lib.algos.commnet.CommNet`; the attention of the last forward pass
   is kept in ``model.last_attention`` (one ``[B, N, N]`` tensor per round) for plots;
4. :class:`RecurrentTarMAC` -- LSTM agents on IC3Net's recurrent loop, ``rounds`` rounds
   per env step (the paper's multi-round TarMAC: 2 rounds on the hard junction).

:func:`junction_attention` tabulates the weights of a recorded traffic-junction episode
(who listens to whom as the cars approach the crossing).

Trained by :func:`course_lib.algos.reinforce.train` with ``Config(model="tarmac")``
(feed-forward per step, like the CommNet paper's MLP modules) or ``"tarmac_lstm"`` (the
paper's recurrent agents).  Notebook 06 builds multi-head gated attention on :class:`TarMACRound`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from course_lib.algos.commnet import lstm_present

__all__ = ["attention_weights", "TarMACRound", "TarMAC", "RecurrentTarMAC", "junction_attention"]


def attention_weights(queries: torch.Tensor, keys: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
    """``[B, N, N]`` weights ``a[b, j, i]``: how much receiver j listens to sender i.

    ``a_ji = softmax_i(q_j . k_i / sqrt(d))`` over the senders i that are present (j
    itself included); ``queries``/``keys [B, N, d]``, ``alive [B, N]`` (bool or 0/1).
    Absent senders get weight 0, and the rows of absent receivers are all zeros.
    Taught in notebooks/05_communication.
    """
    if queries.dim() != 3 or keys.shape != queries.shape:
        raise ValueError(f"queries and keys must both be [B, N, d]; got {tuple(queries.shape)} "
                         f"and {tuple(keys.shape)}")
    if tuple(alive.shape) != tuple(queries.shape[:2]):
        raise ValueError(f"alive must be [B, N] = {tuple(queries.shape[:2])}, got {tuple(alive.shape)}")
    present = alive.to(torch.bool)
    pair = present[:, :, None] & present[:, None, :]               # receiver j and sender i present
    scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])
    # a large negative number, not -inf: a row with nobody present stays finite (no NaN
    # gradients) and is zeroed below
    weights = torch.softmax(scores.masked_fill(~pair, -1e9), dim=-1)
    return weights * pair.to(weights.dtype)


class TarMACRound(nn.Module):
    """One round of targeted communication: signatures (keys), values and queries.

    ``forward(hidden [B, N, H], alive [B, N] or None) -> (messages [B, N, value_dim],
    weights [B, N, N])`` with ``messages[:, j] = sum_i weights[:, j, i] * v_i``.
    """

    def __init__(self, hidden: int, key_dim: int = 16, value_dim: int | None = None):
        super().__init__()
        self.hidden, self.key_dim = int(hidden), int(key_dim)
        self.value_dim = self.hidden if value_dim is None else int(value_dim)
        self.key = nn.Linear(self.hidden, self.key_dim)      # the sender's signature
        self.value = nn.Linear(self.hidden, self.value_dim)  # what the sender says
        self.query = nn.Linear(self.hidden, self.key_dim)    # what the receiver looks for
        self.attention_weights = attention_weights  # a part: the learner plugs in the student's function

    def forward(self, hidden: torch.Tensor, alive: torch.Tensor | None = None):
        if hidden.dim() != 3 or hidden.shape[-1] != self.hidden:
            raise ValueError(f"TarMACRound expects hidden [B, N, {self.hidden}], got {tuple(hidden.shape)}")
        if alive is None:
            alive = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
        weights = (self.attention_weights or attention_weights)(self.query(hidden), self.key(hidden), alive)
        return weights @ self.value(hidden), weights

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["attention_weights"] = None  # a student's function is not saved; the learner plugs it in again
        return state


class TarMAC(nn.Module):
    """Encoder, ``rounds`` TarMAC communication rounds, decoder and value head.

    ``h^{r+1}_j = tanh(U^r [h^r_j ; c^r_j] + h^0_j)``, ``c^r = TarMACRound^r(h^r)``.
    One set of weights for all agents.  ``model(obs [B, N, D], alive [B, N])`` returns
    ``(logits [B, N, A], values [B, N])``; ``model.last_attention`` holds the weights.
    """

    recurrent = False

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, key_dim: int = 16,
                 rounds: int = 2):
        super().__init__()
        self.obs_dim, self.n_actions, self.hidden = int(obs_dim), int(n_actions), int(hidden)
        self.key_dim, self.rounds = int(key_dim), int(rounds)
        self.encoder = nn.Linear(self.obs_dim, self.hidden)
        self.comm = nn.ModuleList(TarMACRound(self.hidden, self.key_dim) for _ in range(self.rounds))
        self.update = nn.ModuleList(nn.Linear(2 * self.hidden, self.hidden) for _ in range(self.rounds))
        self.decoder = nn.Linear(self.hidden, self.n_actions)
        self.value_head = nn.Linear(self.hidden, 1)
        self.last_attention: list[torch.Tensor] = []

    def communicate(self, h0: torch.Tensor, alive: torch.Tensor):
        """The rounds: ``(final hidden [B, N, H], [weights [B, N, N] per round])``."""
        h, attention = h0, []
        for comm, update in zip(self.comm, self.update):
            message, weights = comm(h, alive)
            h = torch.tanh(update(torch.cat([h, message], dim=-1)) + h0)
            attention.append(weights)
        return h, attention

    def forward(self, obs: torch.Tensor, alive: torch.Tensor | None = None):
        if obs.dim() != 3 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"TarMAC expects obs [B, N, {self.obs_dim}], got {tuple(obs.shape)}")
        if alive is None:
            alive = torch.ones(obs.shape[:2], dtype=torch.bool, device=obs.device)
        h, attention = self.communicate(torch.tanh(self.encoder(obs)), alive)
        self.last_attention = [w.detach() for w in attention]
        return self.decoder(h), self.value_head(h).squeeze(-1)

    def extra_repr(self) -> str:
        return f"rounds={self.rounds}, key_dim={self.key_dim}"


class RecurrentTarMAC(nn.Module):
    """TarMAC with LSTM agents, on IC3Net's recurrent loop (the TarMAC paper's traffic junction
    runs on IC3Net's code): at every env step ``x_j = r(s_j)`` and, for each of ``rounds``
    rounds, ``c = TarMACRound^r(h)`` (attention over the present agents' current states,
    from the previous step at first) and ``(h_j, m_j) = LSTMCell(x_j + C^r c_j, (h_j, m_j))``:
    the multi-round TarMAC of the paper (2 rounds on the hard junction).
    ``model(obs, alive, state) -> (logits, values, state)`` like
    :class:`~course_lib.algos.commnet.RecurrentCommNet`; ``last_attention`` as :class:`TarMAC`."""

    recurrent = True

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 128, key_dim: int = 16, rounds: int = 1):
        super().__init__()
        self.obs_dim, self.n_actions, self.hidden = int(obs_dim), int(n_actions), int(hidden)
        self.key_dim, self.rounds = int(key_dim), int(rounds)
        self.encoder = nn.Linear(self.obs_dim, self.hidden)
        self.cell = nn.LSTMCell(self.hidden, self.hidden)
        self.comm = nn.ModuleList(TarMACRound(self.hidden, self.key_dim) for _ in range(self.rounds))
        self.comm_weights = nn.ModuleList(nn.Linear(self.hidden, self.hidden) for _ in range(self.rounds))
        self.decoder = nn.Linear(self.hidden, self.n_actions)
        self.value_head = nn.Linear(self.hidden, 1)
        self.last_attention: list[torch.Tensor] = []

    def initial_state(self, B: int, N: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(B, N, self.hidden), torch.zeros(B, N, self.hidden)

    def forward(self, obs: torch.Tensor, alive: torch.Tensor | None = None, state=None):
        if obs.dim() != 3 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"RecurrentTarMAC expects obs [B, N, {self.obs_dim}], got {tuple(obs.shape)}")
        B, N, _ = obs.shape
        if alive is None:
            alive = torch.ones(B, N, dtype=torch.bool)
        x = self.encoder(obs)
        h, m = self.initial_state(B, N) if state is None else state
        attention = []
        for comm, weights in zip(self.comm, self.comm_weights):
            message, a = comm(h, alive)
            h, m = lstm_present(self.cell, x + weights(message), (h, m), alive)
            attention.append(a.detach())
        self.last_attention = attention
        return self.decoder(h), self.value_head(h).squeeze(-1), (h, m)

    def extra_repr(self) -> str:
        return f"rounds={self.rounds}, key_dim={self.key_dim}"


def junction_attention(batch: dict, env):
    """TarMAC's attention on the easy traffic junction as a long ``pandas.DataFrame``.

    ``batch`` is ``reinforce.rollout(env, model, record_attention=True)``.  One row per
    step ``t``, env ``env``, communication ``round`` (1, 2, ...), present ``receiver`` and
    present ``sender``: the ``weight``, each car's ``*_dist`` (cells to go to the crossing:
    3 at the entry, 0 on the crossing, negative once past it), the ``relation`` of the
    sender to the receiver ("itself", "same road", "crossing road") and ``present``
    (cars on the grid).  Read from the observations (position along the route, entry).
    """
    import numpy as np
    import pandas as pd

    core = env.core
    if getattr(core, "version", None) != "easy":
        raise ValueError("junction_attention reads the easy traffic junction (two straight one-way roads); "
                         f"got {getattr(core, 'name', type(core).__name__)}")
    if not batch.get("attention") or batch["attention"][0] is None:
        raise ValueError("record the episode with reinforce.rollout(env, model, record_attention=True) "
                         "and a model that keeps last_attention (TarMAC)")
    obs, alive = np.asarray(batch["obs"]), np.asarray(batch["alive"], dtype=bool)       # [T, B, N, D], [T, B, N]
    E = core.num_entries
    road = obs[..., 6: 6 + E].argmax(-1)                                                # entry = road in easy
    progress = np.rint(obs[..., 3] * (core.route_len[road] - 1))
    dist = core.size // 2 - progress
    weights = np.stack([np.stack([w.cpu().numpy() for w in step]) for step in batch["attention"]])  # [T, R, B, N, N]
    pair = alive[:, None, :, :, None] & alive[:, None, :, None, :]
    pair = np.broadcast_to(pair, weights.shape)
    t, r, b, j, i = np.nonzero(pair)
    same = road[t, b, j] == road[t, b, i]
    relation = np.where(i == j, "itself", np.where(same, "same road", "crossing road"))
    return pd.DataFrame({"t": t, "round": r + 1, "env": b, "receiver": j, "sender": i,
                         "weight": weights[t, r, b, j, i], "receiver_dist": dist[t, b, j].astype(int),
                         "sender_dist": dist[t, b, i].astype(int), "relation": relation,
                         "present": alive[t, b].sum(-1)})
