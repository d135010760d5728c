"""course_lib.advanced (notebooks/06_advanced): attention, GAT, DRQN, ICM/RND, scaling."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib.advanced import attention, curiosity, drqn, experiments, gat, scaling

torch.set_num_threads(1)


# --------------------------------------------------------------------------- attention
def _layer(hidden=8, heads=2, head_dim=4, seed=0):
    torch.manual_seed(seed)
    return attention.MultiHeadGatedAttention(hidden, num_heads=heads, head_dim=head_dim)


def test_attention_weights_are_distributions_over_the_allowed_senders():
    layer, h = _layer(), torch.randn(3, 5, 8)
    mask = torch.rand(3, 5, 5) < 0.5
    mask |= torch.eye(5, dtype=torch.bool)
    new, w = layer(h, mask)
    assert new.shape == (3, 5, 8) and w.shape == (3, 2, 5, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 5))
    assert (w[~mask[:, None].expand_as(w)] == 0).all()


def test_attention_by_hand_one_head():
    layer = _layer(hidden=3, heads=1, head_dim=2, seed=1)
    h = torch.randn(2, 4, 3)
    q, k, v = layer.query(h), layer.key(h), layer.value(h)
    a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(2), -1)
    c = layer.out(a @ v)
    g = torch.sigmoid(layer.gate(torch.cat([h, c], -1)))
    new, w = layer(h)
    torch.testing.assert_close(w[:, 0], a)
    torch.testing.assert_close(new, g * c + (1 - g) * h)


def test_gate_shut_keeps_the_state_and_gate_open_takes_the_message():
    layer, h = _layer(), torch.randn(2, 4, 8)
    with torch.no_grad():
        layer.gate.weight.zero_()
        layer.gate.bias.fill_(-50.0)
    torch.testing.assert_close(layer(h)[0], h)
    with torch.no_grad():
        layer.gate.bias.fill_(50.0)
        incoming = (layer(h)[1] @ layer.value(h).view(2, 4, 2, 4).transpose(1, 2)).transpose(1, 2).reshape(2, 4, 8)
    torch.testing.assert_close(layer(h)[0], layer.out(incoming))


def test_attention_and_gat_are_permutation_equivariant():
    layer, h, perm = _layer(), torch.randn(2, 6, 8), torch.randperm(6)
    new, w = layer(h)
    new_p, w_p = layer(h[:, perm])
    torch.testing.assert_close(new_p, new[:, perm])
    torch.testing.assert_close(w_p, w[:, :, perm][:, :, :, perm])
    g = gat.GATLayer(8, 3, heads=2)
    adj = torch.rand(2, 6, 6) < 0.5
    torch.testing.assert_close(g(h[:, perm], adj[:, perm][:, :, perm]), g(h, adj)[:, perm])


def test_one_head_reduces_to_a_tarmac_round():
    tarmac = pytest.importorskip("course_lib.algos.tarmac")
    if not hasattr(tarmac, "TarMACRound"):
        pytest.skip("course_lib.algos.tarmac has no TarMACRound")
    layer, h = _layer(hidden=6, heads=1, head_dim=4), torch.randn(3, 4, 6)
    round_ = tarmac.TarMACRound(6, key_dim=4, value_dim=4)
    round_.query.load_state_dict(layer.query.state_dict())
    round_.key.load_state_dict(layer.key.state_dict())
    round_.value.load_state_dict(layer.value.state_dict())
    messages, weights = round_(h)
    _, w = layer(h)
    torch.testing.assert_close(w[:, 0], weights)
    torch.testing.assert_close(w[:, 0] @ layer.value(h), messages)


def test_attention_rejects_bad_input():
    layer = _layer()
    with pytest.raises(ValueError, match=r"\[batch, agents, 8\]"):
        layer(torch.randn(4, 8))
    with pytest.raises(ValueError, match="mask"):
        layer(torch.randn(1, 3, 8), torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one sender"):
        layer(torch.randn(1, 3, 8), torch.zeros(3, 3, dtype=torch.bool))


# --------------------------------------------------------------------------------- GAT
@pytest.mark.parametrize("heads,concat,slope", [(1, True, 0.2), (3, True, 0.2), (2, False, 0.1)])
def test_gat_matches_torch_geometric_gatconv(heads, concat, slope):
    pytest.importorskip("torch_geometric")
    torch.manual_seed(heads)
    layer = gat.GATLayer(5, 4, heads=heads, concat=concat, negative_slope=slope)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(3, 7, 5)
    adj = torch.rand(3, 7, 7) < 0.4
    adj[:, 2] = False  # an agent that hears nobody: GATConv's self loop is all it has
    ours = layer(x, adj)
    conv = gat.to_gatconv(layer)
    ref = conv(x.reshape(21, 5), gat.edge_index_from_adjacency(adj)).view(3, 7, -1)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def test_gat_neighbour_lists_match_the_dense_layer():
    torch.manual_seed(0)
    layer = gat.GATLayer(6, 3, heads=2)
    x, pos = torch.randn(4, 9, 6), torch.rand(4, 9, 2)
    nb = gat.knn_neighbours(pos, 3)
    torch.testing.assert_close(gat.gat_forward_neighbours(layer, x, nb), layer(x, gat.knn_adjacency(pos, 3)))
    d = torch.cdist(pos, pos) + torch.eye(9) * 10
    assert (d.gather(2, nb).max(-1).values <= d.sort(-1).values[..., 2] + 1e-6).all()  # really the 3 nearest


def test_gat_rejects_bad_input():
    layer = gat.GATLayer(4, 2)
    with pytest.raises(ValueError, match="adjacency"):
        layer(torch.randn(1, 3, 4), torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[batch, agents, 4\]"):
        layer(torch.randn(1, 3, 5), torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="k must be"):
        gat.knn_neighbours(torch.rand(1, 3, 2), 3)


# -------------------------------------------------------------------------------- DRQN
def _batch(B=4, T=5, D=4, A=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([T, 2, 3, 1])[:B]
    mask = (torch.arange(T)[None] < lengths[:, None]).float()
    return {"obs": torch.randn(B, T + 1, D, generator=g), "actions": torch.randint(0, A, (B, T), generator=g),
            "rewards": torch.randn(B, T, generator=g) * mask, "dones": torch.zeros(B, T), "mask": mask}


def test_drqn_loss_ignores_padding_and_sends_no_gradient_to_the_target():
    torch.manual_seed(0)
    q, target = drqn.RecurrentQNetwork(4, 5, 8), drqn.RecurrentQNetwork(4, 5, 8)
    batch = _batch()
    loss = drqn.drqn_loss(q, target, batch, 0.9)
    loss.backward()
    assert loss.dim() == 0 and all(p.grad is None for p in target.parameters())
    padded = {**batch, "obs": batch["obs"].clone(), "actions": batch["actions"].clone()}
    padded["obs"][1, 3:] = 100.0  # after the end of sequence 1 (length 2: obs 0..2 are real)
    padded["actions"][1, 2:] = 0
    torch.testing.assert_close(drqn.drqn_loss(q, target, padded, 0.9), loss.detach())


def test_drqn_loss_by_hand_for_a_feed_forward_network():
    torch.manual_seed(1)
    q, target = drqn.FeedForwardQNetwork(4, 3, 6), drqn.FeedForwardQNetwork(4, 3, 6)
    b = _batch(A=3)
    b["dones"][0, -1] = 1.0
    qa = q(b["obs"])[0][:, :-1].gather(-1, b["actions"][..., None])[..., 0]
    y = b["rewards"] + 0.5 * (1 - b["dones"]) * target(b["obs"])[0][:, 1:].max(-1).values
    want = (((qa - y) ** 2) * b["mask"]).sum() / b["mask"].sum()
    torch.testing.assert_close(drqn.drqn_loss(q, target, b, 0.5), want)


def test_lstm_remembers_and_the_feed_forward_network_cannot():
    """A short T-maze: DRQN takes the cued arm, the feed-forward network stays at chance."""
    settings = dict(length=2, max_steps=8, episodes=1600, eval_episodes=64, progress=False, log_every=100)
    results = {}
    for recurrent in (True, False):
        _, net = drqn.train(drqn.DRQNConfig(recurrent=recurrent, **settings), return_model=True)
        results[recurrent] = drqn.evaluate(net, drqn.DRQNConfig(**settings), episodes=400)["correct_fraction"]
    assert results[True] >= 0.9, results
    assert results[False] <= 0.65, results


def test_drqn_train_logs_the_fixed_columns():
    df = drqn.train(episodes=64, num_envs=16, log_every=2, eval_episodes=8, progress=False)
    assert {"episodes", "step", "loss/q", "eval_success", "eval_correct", "eval_return", "sps", "method"} <= set(df)
    assert len(df) == 2 and df.step.is_monotonic_increasing


# -------------------------------------------------------------------------- ICM and RND
def test_icm_forward_loss_does_not_train_the_encoder():
    torch.manual_seed(0)
    icm = curiosity.ICM(9, 5, feature_dim=4, hidden=8)
    obs, nxt = torch.eye(9)[torch.randint(0, 9, (16,))], torch.eye(9)[torch.randint(0, 9, (16,))]
    actions = torch.randint(0, 5, (16,))
    inv, fwd, r_int = curiosity.icm_losses(icm, obs, nxt, actions)
    assert inv.dim() == 0 and fwd.dim() == 0 and r_int.shape == (16,) and not r_int.requires_grad
    enc = torch.autograd.grad(fwd, list(icm.encoder.parameters()), allow_unused=True, retain_graph=True)
    assert all(g is None or float(g.abs().sum()) == 0 for g in enc)
    assert all(g is not None for g in torch.autograd.grad(inv, list(icm.encoder.parameters()), retain_graph=True))
    phi, phi_next = icm.encoder(obs), icm.encoder(nxt)
    pred = icm.forward_model(torch.cat([phi, torch.nn.functional.one_hot(actions, 5).float()], -1))
    torch.testing.assert_close(r_int, 0.5 * ((pred - phi_next) ** 2).sum(-1))
    torch.testing.assert_close(fwd, r_int.mean())


def test_rnd_bonus_shrinks_where_the_agent_has_been():
    torch.manual_seed(0)
    rnd = curiosity.RND(20)
    opt = torch.optim.Adam(rnd.parameters(), lr=1e-2)
    seen, unseen = torch.eye(20)[:10], torch.eye(20)[10:]
    before = curiosity.rnd_bonus(rnd, unseen)[1].mean()
    for _ in range(200):
        loss, _ = curiosity.rnd_bonus(rnd, seen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert curiosity.rnd_bonus(rnd, seen)[1].mean() < 0.1 * curiosity.rnd_bonus(rnd, unseen)[1].mean()
    assert all(not p.requires_grad for p in rnd.target.parameters()) and before > 0


def test_explorer_runs_logs_and_rejects_unknown_bonuses():
    for bonus in curiosity.BONUSES:
        df = curiosity.train(bonus=bonus, total_steps=60, learning_starts=10, batch_size=16, log_every=30,
                             progress=False)
        assert {"step", "first_goal_step", "train_success", "eval_success", "visited_fraction", "intrinsic",
                "loss/q", "loss/bonus", "epsilon", "sps"} <= set(df) and len(df) == 2
        assert (df.intrinsic == 0).all() == (bonus == "none")
    with pytest.raises(ValueError, match="bonus"):
        curiosity.train(bonus="count", total_steps=1, progress=False)


# ----------------------------------------------------------------------------- scaling
def test_neighbourhood_majority_targets_by_brute_force():
    game = scaling.NeighbourMajority(7, k=4)
    data = game.sample(50, torch.Generator().manual_seed(0))
    d = torch.cdist(data["positions"], data["positions"])
    for b in range(50):
        for i in range(7):
            voters = d[b, i].argsort()[:5]  # itself (distance 0) and its 4 nearest
            assert int(data["target"][b, i]) == int(data["bits"][b, voters].sum() >= 3)
    own = scaling.evaluate_comm(scaling.CommPolicy("none"), scaling.NeighbourMajority(10), instances=4000)
    assert abs(own["own_bit_return"] - 11 / 16) < 0.03  # P(own bit is the majority of 5)
    assert abs(own["random_return"] - 0.5) < 0.03
    with pytest.raises(ValueError, match="even"):
        scaling.NeighbourMajority(10, k=3)


def test_comm_policies_timing_and_messages():
    game = scaling.NeighbourMajority(10)
    data = game.sample(8, torch.Generator().manual_seed(0))
    for comm in ("gnn", "attention", "none"):
        policy = scaling.CommPolicy(comm)
        assert policy(data["obs"], data["neighbours"]).shape == (8, 10, 2)
        t = scaling.time_per_step(policy, game, batch=8, repeats=2)
        assert t["cpu_s"] > 0 and t["wall_s"] > 0
    assert scaling.messages_per_step("gnn", 30, 4) == 150 and scaling.messages_per_step("attention", 30, 4) == 900
    info = scaling.neighbourhood_attention(scaling.CommPolicy("attention"), game, instances=16)
    assert 0 < info["on_neighbourhood"] < 1 and info["weights"].shape == (2, 10, 10)
    with pytest.raises(ValueError, match="comm"):
        scaling.CommPolicy("broadcast")


def test_gnn_learns_neighbourhood_majority():
    df = scaling.train(comm="gnn", num_agents=10, updates=150, progress=False)
    assert df.eval_return.iloc[-1] > 0.9


# ------------------------------------------------------------------------ comparison table
def test_comparison_table_aggregates_runs_and_keeps_references():
    rows = [{"task": "t", "method": "m", "seed": s, "success": s, "return": 2.0 * s, "parameters": 10,
             "steps": 1000, "cpu_s": 1.0 + s, "wall_s": 2.0} for s in (0, 1)]
    rows.append({"task": "t", "method": "random policy", "success": 0.1, "return": 0.2, "parameters": 0})
    table = experiments.comparison_table(rows)
    m = table.set_index("method")
    assert m.loc["m", "success"] == 0.5 and m.loc["m", "seeds"] == 2
    assert m.loc["m", "cpu s / 1k steps"] == pytest.approx(1.5) and m.loc["m", "wall s / 1k steps"] == 2.0
    assert pd.isna(m.loc["random policy", "cpu s / 1k steps"]) and m.loc["random policy", "parameters"] == 0
    assert experiments.count_parameters(torch.nn.Linear(3, 2)) == 8
