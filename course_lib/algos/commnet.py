"""CommNet: agents that learn what to say by backpropagation (Sukhbaatar et al. 2016).

Taught in notebooks/05_communication.  Read top to bottom:

1. :func:`comm_mean` -- one communication step: agent j hears the mean of the hidden
   states of the *other* agents that are present (and, with ``reach``, within range)
   (student TODO);
2. :func:`reach_within` -- range-limited communication from positions;
3. :class:`CommNet` -- the paper's network: encoder ``h0 = r(s)``, ``K`` modules ``f^k``
   (``c^0 = 0``: the first hears nothing, then ``K - 1`` messages), an optional skip
   connection from ``h0``, a decoder to action logits and a value head (the learned
   baseline).  ``comm=False`` is the NoComm baseline: the same network with every message
   zeroed.  The network calls ``self.comm_mean``, the reference unless a learner plugs in
   the student's (:func:`course_lib.algos.reinforce.plug_parts`); :class:`JunctionReach`
   limits its range on the traffic junction;
4. the CommNet paper's Table 2 baselines: :class:`FullyConnected` (a dense layer over the
   concatenated hidden states; with ``slot_heads``, a :class:`SlotLinear` head per slot, as
   the CommNet code has) and :class:`DiscreteCommNet` (one-hot symbols, REINFORCE);
5. :func:`lstm_present` (an LSTM cell step of the present agents only) and
   :class:`RecurrentCommNet` -- LSTM agents, IC3Net's recurrent CommNet (and NoComm);
6. :func:`lever_ids` -- the lever-pulling ids as a lookup table.

Trained by :mod:`course_lib.algos.reinforce` (REINFORCE with a learned baseline on the
traffic junction, predator-prey and navigation) and :mod:`course_lib.algos.levers`
(lever pulling, supervised or REINFORCE); TarMAC is :mod:`course_lib.algos.tarmac`.
The feed-forward networks share one interface,
``model(obs [B, N, D], alive [B, N]) -> (logits [B, N, A], values [B, N])``, the recurrent
ones take and return a ``state`` too.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["comm_mean", "reach_within", "CommNet", "JunctionReach", "FullyConnected", "DiscreteCommNet",
           "RecurrentCommNet", "lstm_present", "lever_ids"]


# ------------------------------------------------------------------ communication
def comm_mean(hidden: torch.Tensor, alive: torch.Tensor, reach: torch.Tensor | None = None) -> torch.Tensor:
    """CommNet's message: ``c_j = mean of h_i over the other present agents i != j``.

    ``hidden [B, N, H]``, ``alive [B, N]`` (bool or 0/1: which agents are present),
    optional ``reach [B, N, N]`` (``reach[b, j, i]``: j can hear i).  Returns ``[B, N, H]``;
    an agent with nobody to hear gets zeros.
    Taught in notebooks/05_communication.
    """
    B, N, _ = hidden.shape
    present = alive.to(hidden.dtype)
    hears = present[:, None, :] * (1.0 - torch.eye(N, dtype=hidden.dtype, device=hidden.device))
    if reach is not None:
        hears = hears * reach.to(hidden.dtype)
    count = hears.sum(dim=-1, keepdim=True)                 # [B, N, 1] speakers j hears
    return hears @ hidden / count.clamp(min=1.0)           # mean; zeros when nobody speaks


def reach_within(positions: torch.Tensor, radius: float) -> torch.Tensor:
    """``[B, N, N]`` bool: agents closer than ``radius`` can hear each other
    (range-limited communication).  ``positions [B, N, 2]``."""
    return torch.cdist(positions, positions) <= radius


# ------------------------------------------------------------------------ network
class CommNet(nn.Module):
    """Encoder, ``comm_steps`` modules ``f^k``, decoder (action logits) and a value head.

    The paper's CommNet (Sukhbaatar et al. 2016, section 2): ``h^0 = tanh(r(s))``,
    ``c^0 = 0``, then for ``k = 0 .. K-1``
    ``h^{k+1}_j = tanh(H^k h^k_j + C^k c^k_j + h^0_j)`` (the skip term only when ``skip``)
    with ``c^k = comm_mean(h^k)`` for ``k >= 1``: ``K`` modules, ``K - 1`` messages (IC3Net's
    ``CommNetMLP`` lets the first module hear too, ``c^0 = mean of h^0``).  One set of weights
    is shared by all agents, so the agents differ only through what they observe
    and hear.  With ``comm=False`` the messages are zeroed (NoComm).  ``reach`` (a callable
    ``obs -> [B, N, N]`` bool, e.g. :class:`JunctionReach`) limits who hears whom.
    Calling ``model(obs, alive, reach=None)`` returns ``(logits [B, N, A], values [B, N])``.
    """

    recurrent = False

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, comm_steps: int = 2,
                 comm: bool = True, skip: bool = True, reach=None):
        super().__init__()
        self.obs_dim, self.n_actions, self.hidden = int(obs_dim), int(n_actions), int(hidden)
        self.comm_steps, self.comm, self.skip = int(comm_steps), bool(comm), bool(skip)
        self.reach = reach
        self.encoder = nn.Linear(self.obs_dim, self.hidden)
        self.self_weights = nn.ModuleList(nn.Linear(self.hidden, self.hidden) for _ in range(self.comm_steps))
        self.comm_weights = nn.ModuleList(nn.Linear(self.hidden, self.hidden, bias=False)  # C^1 .. C^{K-1}
                                          for _ in range(1, self.comm_steps * self.comm))
        self.decoder = nn.Linear(self.hidden, self.n_actions)
        self.value_head = nn.Linear(self.hidden, 1)
        self.comm_mean = comm_mean  # a part: the learner plugs in the student's function

    def forward(self, obs: torch.Tensor, alive: torch.Tensor | None = None,
                reach: torch.Tensor | None = None):
        h0 = torch.tanh(self.encode(obs))
        alive = _present(alive, h0)
        if reach is None and self.reach is not None:
            reach = self.reach(obs)
        h = h0
        for k, f_self in enumerate(self.self_weights):
            heard = 0.0
            if k >= 1 and self.comm:  # c^0 = 0: the first module hears nothing
                heard = self.comm_weights[k - 1]((self.comm_mean or comm_mean)(h, alive, reach))
            h = torch.tanh(f_self(h) + heard + (h0 if self.skip else 0.0))
        return self.decoder(h), self.value_head(h).squeeze(-1)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """The encoder's input to the tanh.  Integer ``obs [B, N]`` are the indices of one-hot
        observations (a lookup table, as CommNet uses for the lever ids): same result, faster."""
        if not obs.is_floating_point() and obs.dim() == 2:
            return self.encoder.weight.T[obs] + self.encoder.bias
        if obs.dim() != 3 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"{type(self).__name__} expects obs [B, N, {self.obs_dim}] (or integer one-hot "
                             f"indices [B, N]), got {tuple(obs.shape)} {obs.dtype}")
        return self.encoder(obs)

    def extra_repr(self) -> str:
        return f"comm={self.comm}, comm_steps={self.comm_steps}, skip={self.skip}, reach={self.reach}"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["comm_mean"] = None  # a student's function is not saved; the learner plugs it in again
        return state


def _present(alive: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """``alive`` as given, or every slot present."""
    return torch.ones(h.shape[:2], dtype=torch.bool, device=h.device) if alive is None else alive


class JunctionReach:
    """Range-limited communication on the traffic junction: ``reach(obs) [B, N, N]``, cars
    within ``radius`` cells of each other (straight-line distance) hear each other.  Reads
    the position from the observation (``row / (S - 1)`` and ``col / (S - 1)`` at 1 and 2)."""

    def __init__(self, size: int, radius: float):
        self.size, self.radius = int(size), float(radius)

    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        return reach_within(obs[..., 1:3] * (self.size - 1), self.radius + 1e-6)

    def __repr__(self) -> str:
        return f"JunctionReach(size={self.size}, radius={self.radius})"


class SlotLinear(nn.Module):
    """``N`` linear layers side by side: slot ``j`` of ``x [B, N, in]`` through its own
    ``W_j x_j + b_j``."""

    def __init__(self, num_slots: int, in_features: int, out_features: int):
        super().__init__()
        one = [nn.Linear(in_features, out_features) for _ in range(num_slots)]  # nn.Linear's initialisation
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in one]))  # [N, out, in]
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in one]))      # [N, out]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bni,noi->bno", x, self.weight) + self.bias


class FullyConnected(CommNet):
    """CommNet paper's *fully-connected* baseline (Table 2): module ``f^k`` is one dense layer
    on the concatenated hidden states of all ``N`` slots (absent slots zeroed), so every agent
    has its own weights on every other slot -- no averaging, no weight sharing between
    slots.  ``h^{k+1}_j = tanh([W^k (h^k_1, ..., h^k_N)]_j + h^0_j)``.  ``comm_mean`` is not used.
    ``slot_heads``: every slot has its own action and value heads too (:class:`SlotLinear`),
    as in the CommNet code (``--fully_connected`` gives each agent its own parameters but
    the encoder); default: the heads are shared, like CommNet's."""

    def __init__(self, obs_dim: int, n_actions: int, num_agents: int, hidden: int = 64, comm_steps: int = 2,
                 skip: bool = True, slot_heads: bool = False):
        super().__init__(obs_dim, n_actions, hidden, comm_steps=0, comm=False, skip=skip)
        self.num_agents, self.comm_steps = int(num_agents), int(comm_steps)
        width = self.num_agents * self.hidden
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(self.comm_steps))
        self.comm_mean = None
        self.slot_heads = bool(slot_heads)
        if self.slot_heads:
            self.decoder = SlotLinear(self.num_agents, self.hidden, self.n_actions)
            self.value_head = SlotLinear(self.num_agents, self.hidden, 1)

    def forward(self, obs: torch.Tensor, alive: torch.Tensor | None = None, reach=None):
        h0 = torch.tanh(self.encode(obs))
        present = _present(alive, h0).to(h0.dtype)[..., None]
        B, N, H = h0.shape
        h = h0
        for layer in self.layers:
            h = torch.tanh(layer((h * present).reshape(B, N * H)).reshape(B, N, H) + (h0 if self.skip else 0.0))
        return self.decoder(h), self.value_head(h).squeeze(-1)


class DiscreteCommNet(CommNet):
    """CommNet paper's *discrete communication* baseline (Table 2): instead of its hidden
    state, agent j says one of ``vocab`` symbols, ``w^k_j ~ softmax(S^k h^k_j)``, and hears
    ``c^k_j = comm_mean(one_hot(w^k))`` (the share of each symbol among the others).  The
    symbols are not differentiable: they are trained with REINFORCE, their log-probabilities
    added to the action's (``symbol_log_prob`` and ``symbol_entropy`` ``[B, N]`` after each
    call).  ``greedy=True`` says the most likely symbol; ``generator`` draws the others."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, comm_steps: int = 2, vocab: int = 8,
                 skip: bool = True, reach=None):
        super().__init__(obs_dim, n_actions, hidden, comm_steps, skip=skip, reach=reach)
        self.vocab = int(vocab)
        self.comm_weights = nn.ModuleList(nn.Linear(self.vocab, self.hidden, bias=False)
                                          for _ in range(1, self.comm_steps))
        self.speakers = nn.ModuleList(nn.Linear(self.hidden, self.vocab) for _ in range(1, self.comm_steps))
        self.symbol_log_prob = self.symbol_entropy = None

    def forward(self, obs: torch.Tensor, alive: torch.Tensor | None = None, reach=None, greedy: bool = False,
                generator: torch.Generator | None = None):
        h0 = torch.tanh(self.encode(obs))
        alive = _present(alive, h0)
        if reach is None and self.reach is not None:
            reach = self.reach(obs)
        h, log_prob, entropy = h0, torch.zeros(h0.shape[:2]), torch.zeros(h0.shape[:2])
        for k, f_self in enumerate(self.self_weights):
            heard = 0.0
            if k >= 1:
                symbols, lp, ent = self.speak(self.speakers[k - 1](h), greedy, generator)
                log_prob, entropy = log_prob + lp, entropy + ent
                heard = self.comm_weights[k - 1]((self.comm_mean or comm_mean)(symbols, alive, reach))
            h = torch.tanh(f_self(h) + heard + (h0 if self.skip else 0.0))
        present = alive.to(h.dtype)
        self.symbol_log_prob, self.symbol_entropy = log_prob * present, entropy * present
        return self.decoder(h), self.value_head(h).squeeze(-1)

    def speak(self, logits: torch.Tensor, greedy: bool, generator: torch.Generator | None):
        """One-hot symbols ``[B, N, vocab]``, their log-probabilities and entropies ``[B, N]``."""
        dist = torch.distributions.Categorical(logits=logits)
        if greedy:
            w = logits.argmax(-1)
        else:
            w = torch.multinomial(dist.probs.reshape(-1, self.vocab), 1, generator=generator).reshape(logits.shape[:-1])
        return F.one_hot(w, self.vocab).to(logits.dtype), dist.log_prob(w), dist.entropy()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", vocab={self.vocab}"


# ------------------------------------------------------------------- recurrent agents
def lstm_present(cell: nn.LSTMCell, inp: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor],
                 alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``cell`` step of the present agents: ``inp [B, N, H_in]``, ``state = (h, m)``, each
    ``[B, N, H]``, ``alive [B, N]``.  Returns the new ``(h, m)``; an absent slot's are zeros
    (it keeps no memory).  Only the present rows go through the cell: on the junction most
    of the slots are empty most of the time (about 20-50% present on the hard one)."""
    B, N = alive.shape
    rows = alive.reshape(-1).nonzero().squeeze(1)
    h, m = (s.reshape(B * N, -1) for s in state)
    new_h, new_m = cell(inp.reshape(B * N, -1)[rows], (h[rows], m[rows]))
    zeros = inp.new_zeros(B * N, cell.hidden_size)
    return (zeros.index_copy(0, rows, new_h).reshape(B, N, -1),
            zeros.index_copy(0, rows, new_m).reshape(B, N, -1))


class RecurrentCommNet(nn.Module):
    """CommNet with LSTM agents, as IC3Net's code runs it on the traffic junction
    (``--recurrent --rnn_type LSTM``; the CommNet paper's LSTM module): at every env step
    ``x_j = r(s_j)`` and, ``comm_steps`` times, ``c_j = comm_mean(h)`` (the others' states,
    from the previous step at first) and ``(h_j, m_j) = LSTMCell(x_j + C^k c_j, (h_j, m_j))``.
    ``model(obs, alive, state) -> (logits, values, state)``; ``state = (h, m)``, each
    ``[B, N, H]`` (``None``: zeros, a new episode); absent slots keep no memory.
    ``comm=False``: NoComm, the same LSTM agents with the messages zeroed."""

    recurrent = True

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 128, comm_steps: int = 1, comm: bool = True,
                 reach=None):
        super().__init__()
        self.obs_dim, self.n_actions, self.hidden = int(obs_dim), int(n_actions), int(hidden)
        self.comm_steps, self.comm, self.reach = int(comm_steps), bool(comm), reach
        self.encoder = nn.Linear(self.obs_dim, self.hidden)
        self.cell = nn.LSTMCell(self.hidden, self.hidden)
        self.comm_weights = nn.ModuleList(nn.Linear(self.hidden, self.hidden) for _ in range(self.comm_steps * comm))
        self.decoder = nn.Linear(self.hidden, self.n_actions)
        self.value_head = nn.Linear(self.hidden, 1)
        self.comm_mean = comm_mean  # a part: the learner plugs in the student's function

    def initial_state(self, B: int, N: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(B, N, self.hidden), torch.zeros(B, N, self.hidden)

    def message(self, k: int, h: torch.Tensor, alive: torch.Tensor, reach) -> torch.Tensor:
        """What the LSTM of every agent hears in pass ``k``: ``C^k comm_mean(h)``."""
        return self.comm_weights[k]((self.comm_mean or comm_mean)(h, alive, reach))

    def forward(self, obs: torch.Tensor, alive: torch.Tensor | None = None, state=None):
        if obs.dim() != 3 or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"{type(self).__name__} expects obs [B, N, {self.obs_dim}], got {tuple(obs.shape)}")
        B, N, _ = obs.shape
        x = self.encoder(obs)
        alive = _present(alive, x)
        reach = self.reach(obs) if self.reach is not None else None
        h, m = self.initial_state(B, N) if state is None else state
        for k in range(self.comm_steps):
            inp = x + self.message(k, h, alive, reach) if self.comm else x
            h, m = lstm_present(self.cell, inp, (h, m), alive)
        return self.decoder(h), self.value_head(h).squeeze(-1), (h, m)

    def extra_repr(self) -> str:
        return f"comm={self.comm}, comm_steps={self.comm_steps}, reach={self.reach}"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["comm_mean"] = None  # a student's function is not saved; the learner plugs it in again
        return state


def lever_ids(obs: np.ndarray, pool_size: int) -> torch.Tensor:
    """Agent ids ``[B, N]`` (int64) from the levers' ``obs_type="index"`` observations: the
    indices of the one-hot ids, which :class:`CommNet` reads as a lookup table."""
    return torch.as_tensor(np.rint(obs[..., 0] * (pool_size - 1)).astype(np.int64))


