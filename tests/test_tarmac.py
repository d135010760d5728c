"""TarMAC (course_lib.algos.tarmac): masked soft attention, one round, the whole network, and
TarMAC trained by the REINFORCE learner with the student's attention_weights."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib.algos import reinforce, tarmac
from course_lib.tasks import task
from spies import Spy

TJ = reinforce.Config(model="tarmac", total_steps=3 * 8 * 20, hidden=16, num_envs=8, log_every=8 * 20)


def _alive():
    return torch.tensor([[True, True, False, True], [False, False, False, False], [True, False, False, False]])


def test_attention_weights_match_a_hand_computed_softmax_over_present_senders():
    torch.manual_seed(0)
    q, k = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    alive = _alive()
    w = tarmac.attention_weights(q, k, alive)
    assert w.shape == (3, 4, 4)
    # env 0, receiver 1: softmax over senders 0, 1, 3 (2 is absent)
    s = torch.stack([q[0, 1] @ k[0, i] for i in (0, 1, 3)]) / math.sqrt(5)
    want = torch.softmax(s, 0)
    assert torch.allclose(w[0, 1, [0, 1, 3]], want, atol=1e-6)
    assert w[0, 1, 2] == 0
    # rows of present receivers sum to 1, absent receivers' rows are zero
    sums = w.sum(-1)
    assert torch.allclose(sums, alive.float(), atol=1e-6)
    # a lone agent listens to itself
    assert w[2, 0, 0] == pytest.approx(1.0)


def test_attention_weights_have_finite_gradients_when_nobody_is_present():
    q = torch.randn(3, 4, 5, requires_grad=True)
    k = torch.randn(3, 4, 5, requires_grad=True)
    w = tarmac.attention_weights(q, k, _alive())
    (w * torch.randn_like(w)).sum().backward()
    assert torch.isfinite(q.grad).all() and torch.isfinite(k.grad).all()
    assert (q.grad[1] == 0).all(), "an env with nobody present gets no gradient"


def test_attention_weights_reject_bad_shapes():
    with pytest.raises(ValueError, match="alive must be"):
        tarmac.attention_weights(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.ones(2, 4))
    with pytest.raises(ValueError, match="queries and keys"):
        tarmac.attention_weights(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5), torch.ones(2, 3))


def test_round_messages_are_the_attention_weighted_values():
    torch.manual_seed(1)
    layer = tarmac.TarMACRound(hidden=8, key_dim=4, value_dim=6)
    h = torch.randn(3, 4, 8)
    messages, weights = layer(h, _alive())
    assert messages.shape == (3, 4, 6) and weights.shape == (3, 4, 4)
    assert torch.allclose(messages, weights @ layer.value(h), atol=1e-6)
    with pytest.raises(ValueError, match="hidden"):
        layer(torch.randn(3, 4, 7))


def test_absent_agents_cannot_influence_present_ones():
    torch.manual_seed(2)
    model = tarmac.TarMAC(obs_dim=6, n_actions=3, hidden=16, rounds=2)
    obs = torch.randn(2, 4, 6)
    alive = torch.tensor([[True, False, True, True], [True, True, True, True]])
    logits, values = model(obs, alive)
    assert logits.shape == (2, 4, 3) and values.shape == (2, 4)
    assert len(model.last_attention) == 2 and model.last_attention[0].shape == (2, 4, 4)
    changed = obs.clone()
    changed[0, 1] += 10.0                       # the absent agent of env 0 "sees" something else
    logits2, _ = model(changed, alive)
    present = alive[0]
    assert torch.allclose(logits[0, present], logits2[0, present], atol=1e-6)
    changed[1, 1] += 10.0                       # a present agent does change the others
    logits3, _ = model(changed, alive)
    assert not torch.allclose(logits[1, 0], logits3[1, 0], atol=1e-4)
    with pytest.raises(ValueError, match="obs"):
        model(torch.randn(2, 4, 5))


def test_tarmac_is_permutation_equivariant():
    torch.manual_seed(3)
    model = tarmac.TarMAC(obs_dim=5, n_actions=2, hidden=16, rounds=2)
    obs = torch.randn(1, 4, 5)
    perm = torch.tensor([2, 0, 3, 1])
    logits, values = model(obs)
    logits_p, values_p = model(obs[:, perm])
    assert torch.allclose(logits[:, perm], logits_p, atol=1e-5)
    assert torch.allclose(values[:, perm], values_p, atol=1e-5)


def test_junction_attention_tracks_cars_towards_the_crossing():
    env = task("traffic_junction_easy", arrival_prob=0.3).batched(8, seed=0)
    torch.manual_seed(0)
    model = tarmac.TarMAC(env.obs_dim, env.n_actions, hidden=16)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.copy_(torch.tensor([-20.0, 20.0]))    # always gas
        batch = reinforce.rollout(env, model, greedy=True, record_attention=True)
    df = tarmac.junction_attention(batch, env)
    assert set(df.relation) == {"itself", "same road", "crossing road"}
    assert sorted(df.receiver_dist.unique()) == list(range(-3, 4))
    # with gas every step, a car is one cell closer each step (until it leaves)
    me = df[(df.round == 1) & (df.sender == df.receiver)].set_index(["env", "receiver", "t"]).receiver_dist
    steps = me.groupby(level=[0, 1]).diff().dropna()
    assert ((steps == -1) | (steps == 6)).all()                 # 6: the slot's car left, a new one arrived
    totals = df.groupby(["t", "env", "round", "receiver"]).weight.sum()
    assert np.allclose(totals, 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="easy"):
        tarmac.junction_attention(batch, task("traffic_junction_medium").batched(1))


def _unscaled(queries, keys, alive):
    """A planted mistake: no 1 / sqrt(d)."""
    return tarmac.attention_weights(queries * math.sqrt(queries.shape[-1]), keys, alive)


def _unmasked(queries, keys, alive):
    """A planted mistake: absent senders are heard too."""
    return torch.softmax(queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1]), dim=-1)


def test_the_learner_runs_the_students_attention_and_a_wrong_one_shows():
    spy = Spy(tarmac.attention_weights)
    reference = reinforce.train("traffic_junction_easy", TJ, progress=False)
    spied = reinforce.train("traffic_junction_easy", TJ, parts={"attention_weights": spy}, progress=False)
    assert spy.calls >= 3 * 20 * TJ.comm_steps, "every round of every step of the rollouts"
    assert all(r.attention_weights is spy for r in spied.learner.model.comm)
    pd.testing.assert_frame_equal(spied.curve.drop(columns="sps"), reference.curve.drop(columns="sps"))
    for wrong in (_unscaled, _unmasked):
        planted = reinforce.train("traffic_junction_easy", TJ, parts={"attention_weights": wrong}, progress=False)
        assert not np.allclose(planted.curve["loss/reinforce"], reference.curve["loss/reinforce"]), wrong.__name__


def test_recurrent_tarmac_rounds_memory_and_masking():
    torch.manual_seed(4)
    model = tarmac.RecurrentTarMAC(obs_dim=6, n_actions=2, hidden=16, rounds=2)
    obs = torch.randn(2, 4, 6)
    alive = torch.tensor([[True, False, True, True], [True, True, True, True]])
    logits, values, state = model(obs, alive)
    assert logits.shape == (2, 4, 2) and values.shape == (2, 4) and state[0].shape == (2, 4, 16)
    assert len(model.last_attention) == 2 and model.last_attention[1].shape == (2, 4, 4)
    assert (model.last_attention[0][0, :, 1] == 0).all(), "the absent agent is not heard"
    changed = obs.clone()
    changed[0, 1] += 10.0
    assert torch.allclose(model(changed, alive)[0][0, alive[0]], logits[0, alive[0]], atol=1e-6)
    changed[1, 1] += 10.0                   # two rounds: a present agent is heard within the step
    assert not torch.allclose(model(changed, alive)[0][1, 0], logits[1, 0], atol=1e-4)
    one = tarmac.RecurrentTarMAC(obs_dim=6, n_actions=2, hidden=16, rounds=1)
    first = one(obs, alive)[0]               # one round: the first step hears the empty memories
    assert torch.allclose(one(changed, alive)[0][1, 0], first[1, 0], atol=1e-6)
    assert not torch.allclose(one(obs, alive, one(obs, alive)[2])[0], first, atol=1e-5), "memory"


def test_the_learner_runs_the_students_attention_in_recurrent_tarmac():
    cfg = reinforce.Config(model="tarmac_lstm", total_steps=3 * 8 * 20, hidden=16, num_envs=8, log_every=8 * 20)
    spy = Spy(tarmac.attention_weights)
    reference = reinforce.train("traffic_junction_easy", cfg, progress=False)
    spied = reinforce.train("traffic_junction_easy", cfg, parts={"attention_weights": spy}, progress=False)
    assert spy.calls >= 3 * 20 * cfg.comm_steps
    pd.testing.assert_frame_equal(spied.curve.drop(columns="sps"), reference.curve.drop(columns="sps"))
    planted = reinforce.train("traffic_junction_easy", cfg, parts={"attention_weights": _unmasked}, progress=False)
    assert not np.allclose(planted.curve["loss/reinforce"], reference.curve["loss/reinforce"])
