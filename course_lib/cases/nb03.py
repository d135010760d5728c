"""Judge cases of notebooks/03_value_decomposition (see course_lib/judge.py)."""
from __future__ import annotations

import torch

from course_lib.algos import iql, qmix
from course_lib.judge import case


def _tensor(array) -> torch.Tensor:
    return torch.tensor(array, dtype=torch.float32)


@case(reference=qmix.vdn_mix, atol=1e-5, rtol=1e-5, forbid=[(qmix, ["vdn_mix"])])
def vdn_mix(rng):
    """(agent_qs,): 2 to 4 dimensions, 2 to 6 agents."""
    return [(_tensor(rng.normal(size=shape) * 5),) for shape in [(1, 2), (7, 3), (5, 4, 2), (2, 3, 5, 6)]]


def _observe_qmix_forward(fn, args):
    with torch.no_grad():
        return fn(*args)


@case(reference=qmix.qmix_forward, atol=1e-4, rtol=1e-5, observe=_observe_qmix_forward,
      forbid=[(qmix, ["qmix_forward"])])
def qmix_forward(rng):
    """(mixer, agent_qs, states): QMixers with 2 to 5 agents, embed_dim 1 to 32, one- and two-layer
    hypernetworks, a batch of 37."""
    inputs = []
    for n_agents, state_dim, embed_dim, layers in [(2, 3, 4, 1), (3, 5, 8, 2), (5, 7, 32, 2), (4, 2, 16, 1),
                                                   (2, 6, 1, 2)]:
        torch.manual_seed(int(rng.integers(2**31)))
        mixer = qmix.QMixer(n_agents, state_dim, embed_dim=embed_dim, hypernet_layers=layers)
        inputs.append((mixer, _tensor(rng.normal(size=(37, n_agents)) * 3), _tensor(rng.normal(size=(37, state_dim)))))
    return inputs


def _square_minus_cross(q, s):
    return (q ** 2).sum(-1, keepdim=True) - q[:, :1] * s[:, 1:2]


def _tanh_mixer(q, s):
    return torch.tanh(q @ torch.tensor([[1.0], [-3.0]]) + s[:, :1])


@case(reference=qmix.monotonicity_check, atol=1e-4, rtol=1e-5, forbid=[(qmix, ["monotonicity_check"])])
def monotonicity_check(rng):
    """(mixer, agent_qs, states): QMixers with 2, 3 and 5 agents, and two non-monotonic mixers
    (plain functions) whose gradients depend on the sample and have both signs."""
    inputs = []
    for n_agents, state_dim in [(2, 3), (3, 5), (5, 2)]:
        torch.manual_seed(int(rng.integers(2**31)))
        mixer = qmix.QMixer(n_agents, state_dim, embed_dim=8)
        inputs.append((mixer, _tensor(rng.normal(size=(20, n_agents)) * 4), _tensor(rng.normal(size=(20, state_dim)))))
    inputs.append((_square_minus_cross, _tensor(rng.normal(size=(9, 3))), _tensor(rng.normal(size=(9, 2)))))
    inputs.append((_tanh_mixer, _tensor(rng.normal(size=(7, 2))), _tensor(rng.normal(size=(7, 4)))))
    return inputs


@case(reference=qmix.joint_td_target, atol=1e-4, rtol=1e-5,
      forbid=[(qmix, ["joint_td_target"]), (iql, ["dqn_td_target"])])
def joint_td_target(rng):
    """(rewards, target_q_tot_next, dones, gamma): [B, 1], [B] and [B, T, 1] tensors, about 40% terminal,
    gamma in {0.99, 0.5, 0, 1}."""
    inputs = []
    for shape, gamma in [((8, 1), 0.99), ((5,), 0.5), ((4, 3, 1), 0.0), ((16, 1), 1.0)]:
        rewards = _tensor(rng.normal(size=shape) * 3)
        q_next = _tensor(rng.normal(size=shape) * 10)
        dones = _tensor(rng.random(shape) < 0.4)
        inputs.append((rewards, q_next, dones, gamma))
    return inputs
