"""course_lib.advanced (notebooks/06_advanced): attention, GAT, DRQN, ICM/RND, scaling; their
learners (the student's parts drive them, a Ctrl-C resumes exactly), the neighbourhood
majority task and the notebook's experiments."""
from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from pettingzoo.test import parallel_api_test, parallel_seed_test

from course_lib.advanced import attention, curiosity, drqn, experiments, gat, scaling
from course_lib.envs import NeighbourMajority, VecNeighbourMajority, registry
from course_lib.evaluation import evaluate
from course_lib.tasks import task
from spies import Spy

torch.set_num_threads(1)


def _wrong_answers() -> dict:
    """The grader tests' plausible wrong answers of notebook 06, as functions."""
    path = Path(__file__).parent / "fixtures" / "wrong_answers" / "06_advanced.py"
    spec = importlib.util.spec_from_file_location("wrong_06", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = {}
    for grade_id, source in module.WRONG.items():
        namespace = {"torch": torch, "F": F, "math": math, "np": np}
        exec(source, namespace)
        out[grade_id] = namespace[grade_id.replace("-", "_")]
    return out


def _weights(run) -> dict:
    learner = run.learner
    nets = {"q": getattr(learner, "q_net", None), "actor": getattr(learner, "actor", None),
            "bonus": getattr(learner, "bonus_model", None)}
    return {f"{n}.{k}": v for n, net in nets.items() if net is not None for k, v in net.state_dict().items()}


def _resumes_exactly(module, task_, config, part: str, k: int, out: Path) -> None:
    """Run A straight; run B interrupted at the k-th call of ``part`` (saved on Ctrl-C) and
    resumed: same curve (without sps) and the same weights, bit for bit."""
    straight = module.train(task_, config, progress=False)
    with pytest.raises(KeyboardInterrupt):
        module.train(task_, config, parts={part: Spy(getattr(module.Parts(), part), stop=k)}, out=out,
                     progress=False)
    resumed = module.train(task_, config, resume=out, progress=False)
    pd.testing.assert_frame_equal(resumed.curve.drop(columns="sps"), straight.curve.drop(columns="sps"))
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


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


MAZE = task("cue_corridor", length=2, max_steps=8)  # a short T-maze: quick to learn


def test_lstm_remembers_and_the_feed_forward_network_cannot():
    """A short T-maze: DRQN takes the cued arm, the feed-forward network stays at chance."""
    results = {}
    for recurrent in (True, False):
        run = drqn.train(MAZE, drqn.Config(recurrent=recurrent, total_steps=4000, log_every=1000, eval_episodes=8),
                         progress=False)
        ev = evaluate(run.policy, MAZE, episodes=400, seed=1, num_envs=400)
        results[recurrent] = ev.summary()["correct_fraction"]
    assert results[True] >= 0.9, results
    assert results[False] <= 0.65, results


def test_drqn_calls_your_loss_in_the_loop_and_logs_the_fixed_columns():
    spy = Spy(drqn.drqn_loss)
    run = drqn.train(MAZE, drqn.Config(total_steps=600, log_every=2, eval_episodes=8), parts=drqn.Parts(drqn_loss=spy),
                     progress=False)
    df = run.curve
    assert spy.calls == run.learner.updates == 8 * run.learner.rounds > 0
    assert list(df.columns[:4]) == ["step", "episode", "train_return", "eval_return"]
    assert {"loss/q", "train_success", "eval_success", "eval_correct", "epsilon", "sps"} <= set(df)
    assert df.step.is_monotonic_increasing and df.step.iloc[-1] >= 600 and (df.episode % 16 == 0).all()
    single = evaluate(run.policy, MAZE, episodes=2, on="single")  # the PettingZoo dict API
    assert single.returns.shape == (2, 2)


def test_drqn_loss_without_the_done_mask_changes_the_run():
    config = drqn.Config(total_steps=600, log_every=1, eval_episodes=8)

    def no_done_mask(q_net, target_net, batch, gamma):
        return drqn.drqn_loss(q_net, target_net, {**batch, "dones": torch.zeros_like(batch["dones"])}, gamma)

    right = drqn.train(MAZE, config, progress=False).curve
    wrong = drqn.train(MAZE, config, parts=drqn.Parts(drqn_loss=no_done_mask), progress=False).curve
    pd.testing.assert_series_equal(right.step, wrong.step)  # the first round is the same ...
    assert not np.allclose(right["loss/q"], wrong["loss/q"])  # ... then the loss tells them apart


def test_drqn_resumes_exactly_after_a_ctrl_c_in_the_middle_of_a_round(tmp_path):
    _resumes_exactly(drqn, MAZE, drqn.Config(total_steps=700, log_every=2, eval_episodes=8), "drqn_loss", k=19,
                     out=tmp_path)


def test_recurrent_policy_forgets_at_a_new_episode():
    torch.manual_seed(0)
    net = drqn.RecurrentQNetwork(4, 5, 8)
    policy = drqn.RecurrentQPolicy(net, ["a", "b"], 4)
    obs = np.random.default_rng(0).normal(size=(3, 2, 4)).astype(np.float32)
    policy.reset(3)
    policy.act(obs)
    policy.act(obs, {"done": np.array([False, True, False])})
    h = policy.state[0].view(3, 2, -1)
    policy.reset(3)
    fresh = (policy.act(obs), policy.state[0].view(3, 2, -1))[1]
    torch.testing.assert_close(h[1], fresh[1])  # env 1 started over: as from a zero state
    assert not torch.allclose(h[0], fresh[0])   # env 0 remembers its first step


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


GRID = task("sparse_goal_grid")
QUICK_EXPLORER = dict(total_steps=480, learning_starts=80, batch_size=16, log_every=240)


@pytest.mark.parametrize("bonus", curiosity.BONUSES)
def test_explorer_calls_your_icm_losses_and_logs(bonus):
    spy = Spy(curiosity.icm_losses)
    run = curiosity.train(GRID, curiosity.Config(bonus=bonus, **QUICK_EXPLORER), parts=curiosity.Parts(icm_losses=spy),
                          progress=False)
    df = run.curve
    assert spy.calls == (run.learner.updates if bonus == "icm" else 0) and run.learner.updates > 0
    assert list(df.columns[:4]) == ["step", "episode", "train_return", "eval_return"] and len(df) == 2
    assert {"first_goal_step", "train_success", "eval_success", "visited_fraction", "intrinsic", "loss/q",
            "loss/bonus", "epsilon", "sps"} <= set(df)
    assert df.intrinsic.isna().all() == (bonus == "none")
    assert evaluate(run.policy, GRID, episodes=1, on="single").returns.shape == (1, 2)


def test_explorer_and_scaling_reject_bad_configs():
    with pytest.raises(ValueError, match="bonus"):
        curiosity.train(GRID, curiosity.Config(bonus="count", total_steps=8), progress=False)
    with pytest.raises(ValueError, match="multiple of num_envs"):
        curiosity.train(GRID, curiosity.Config(log_every=100), progress=False)
    with pytest.raises(ValueError, match="multiple of batch_size"):
        scaling.train("neighbour_majority", scaling.Config(log_every=100), progress=False)
    with pytest.raises(ValueError, match="comm"):
        scaling.train("neighbour_majority", scaling.Config(comm="broadcast"), progress=False)


def test_icm_losses_that_train_the_encoder_change_the_run():
    config = curiosity.Config(bonus="icm", **QUICK_EXPLORER)
    right = curiosity.train(GRID, config, progress=False)
    wrong = curiosity.train(GRID, config, parts=curiosity.Parts(icm_losses=_wrong_answers()["icm-losses"]),
                            progress=False)
    assert not np.allclose(right.curve.intrinsic, wrong.curve.intrinsic)
    encoder = [run.learner.bonus_model.encoder[0][0].weight for run in (right, wrong)]
    assert not torch.equal(*encoder)  # the forward loss reached the encoder


def test_explorer_resumes_exactly_after_a_ctrl_c_in_an_update(tmp_path):
    _resumes_exactly(curiosity, GRID, curiosity.Config(bonus="icm", **QUICK_EXPLORER), "icm_losses", k=7, out=tmp_path)


# ----------------------------------------------------------------------------- scaling
def test_neighbourhood_majority_targets_by_brute_force():
    env = VecNeighbourMajority(50, num_agents=7, k=4, seed=0)
    obs, _ = env.reset(seed=0)
    pos = torch.as_tensor(obs[..., 1:])
    d = torch.cdist(pos, pos)
    bits = (obs[..., 0] > 0).astype(int)
    for b in range(50):
        for i in range(7):
            voters = d[b, i].argsort()[:5].numpy()  # itself (distance 0) and its 4 nearest
            assert int(env.core.target[b, i]) == int(bits[b, voters].sum() >= 3)
    own = evaluate("random", task("neighbour_majority", num_agents=10), episodes=4000, seed=0, num_envs=1000)
    assert abs(own.summary()["own_bit_right"] - 11 / 16) < 0.03  # P(own bit is the majority of 5)
    assert abs(own.summary()["return_per_agent"] - 0.5) < 0.03
    with pytest.raises(ValueError, match="even"):
        VecNeighbourMajority(2, num_agents=10, k=3)


def test_neighbourhood_majority_speaks_pettingzoo_and_its_twin_replays_it():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(NeighbourMajority(num_agents=5), num_cycles=50)
        parallel_seed_test(lambda: NeighbourMajority(num_agents=3), num_cycles=50)
    env, vec = NeighbourMajority(num_agents=5), VecNeighbourMajority(1, num_agents=5, seed=5)
    obs, _ = env.reset(seed=5)
    vobs, _ = vec.reset(seed=5)
    for _ in range(5):
        np.testing.assert_array_equal(np.stack([obs[a] for a in env.possible_agents]), vobs[0])
        acts = np.array([[0, 1, 1, 0, 1]])
        obs, rew, *_ = env.step({a: int(acts[0, i]) for i, a in enumerate(env.possible_agents)})
        vobs, vrew, _, _, info = vec.step(acts)
        np.testing.assert_array_equal([rew[a] for a in env.possible_agents], vrew[0])
        assert info["done"][0] and not env.agents
        obs, _ = env.reset()
    assert isinstance(registry()["neighbour_majority"][1](2, seed=0), VecNeighbourMajority)


def test_comm_actors_timing_messages_and_the_neighbour_list_form():
    majority = task("neighbour_majority", num_agents=10)
    obs = torch.as_tensor(majority.batched(8, seed=0).reset(seed=0)[0])
    for comm in scaling.COMMS:
        actor = scaling.CommActor(comm)
        assert actor(obs).shape == (8, 10, 2)
        t = scaling.time_per_step(actor, majority, batch=8, repeats=2)
        assert t["cpu_s"] > 0 and t["wall_s"] > 0 and (t["graph_cpu_s"] > 0) == (comm == "gnn")
    gnn = scaling.CommActor("gnn")
    lists = scaling.CommActor("gnn", graph="lists")
    lists.load_state_dict(gnn.state_dict())
    torch.testing.assert_close(lists(obs), gnn(obs))  # the timed form computes the trained one
    assert scaling.messages_per_step("gnn", 30, 4) == 150 and scaling.messages_per_step("attention", 30, 4) == 900
    info = scaling.neighbourhood_attention(scaling.CommActor("attention"), majority, instances=16)
    assert 0 < info["on_neighbourhood"] < 1 and info["weights"].shape == (2, 10, 10)
    with pytest.raises(ValueError, match="comm"):
        scaling.CommActor("broadcast")


def test_gnn_learns_neighbourhood_majority():
    run = scaling.train(task("neighbour_majority", num_agents=10), scaling.Config(comm="gnn", total_steps=9_600),
                        progress=False)
    assert run.curve.eval_return.iloc[-1] > 0.9


@pytest.mark.parametrize("comm,part", [("gnn", "gat_forward"), ("attention", "gated_attention")])
def test_scaling_calls_your_round_and_a_wrong_one_changes_the_run(comm, part):
    majority, config = task("neighbour_majority", num_agents=6), scaling.Config(comm=comm, total_steps=640,
                                                                                log_every=320)
    spy = Spy(getattr(scaling.Parts(), part))
    run = scaling.train(majority, config, parts={part: spy}, progress=False)
    assert spy.calls == 10 + 2  # one per update, one per evaluation
    other = "gated_attention" if part == "gat_forward" else "gat_forward"
    unused = Spy(getattr(scaling.Parts(), other))
    scaling.train(majority, config, parts={other: unused}, progress=False)
    assert unused.calls == 0
    wrong = scaling.train(majority, config, parts={part: _wrong_answers()[part.replace("_", "-")]}, progress=False)
    assert not np.allclose(run.curve["loss/policy"], wrong.curve["loss/policy"])
    assert evaluate(run.policy, majority, episodes=2, on="single").returns.shape == (2, 6)


@pytest.mark.parametrize("k", [3, 5])  # a Ctrl-C in an update, then one in a row's evaluation
def test_scaling_resumes_exactly_after_a_ctrl_c(k, tmp_path):
    _resumes_exactly(scaling, task("neighbour_majority", num_agents=6),
                     scaling.Config(comm="attention", total_steps=768, log_every=256), "gated_attention", k=k,
                     out=tmp_path)


# ------------------------------------------------- the same numbers as the old entry points
def test_the_learners_reproduce_the_old_entry_points():
    """Numbers of the pre-API code (drqn.train / curiosity.train / scaling.train of commit
    3af4b78) on the same seeds: DRQN with a constant epsilon (the old schedule ran over
    collection rounds, the new one over env steps), the explorer with its schedules as they
    were (vectorised steps x 8), the attention round bit for bit, the GNN (now the dense
    gat_forward instead of neighbour lists) to float rounding.  Bit for bit on the machine that
    made them; tolerances leave room for other CPUs' kernels."""
    losses = []

    def record(*args):
        loss = drqn.drqn_loss(*args)
        losses.append(loss.item())
        return loss

    run = drqn.train("cue_corridor", drqn.Config(seed=3, total_steps=1152, eps_fraction=0.0, log_every=1,
                                                 eval_episodes=16), parts=drqn.Parts(drqn_loss=record),
                     progress=False)
    assert run.curve.step.tolist() == [192, 384, 576, 768, 960, 1152]
    assert len(losses) == 48 and losses[-1] == pytest.approx(3.075449785683304e-05, rel=1e-4)
    explorer = curiosity.Config(bonus="icm", seed=1, total_steps=960, learning_starts=160, batch_size=32, log_every=8)
    row = curiosity.train("sparse_goal_grid", explorer, progress=False).curve.iloc[-1]
    assert [row["loss/q"], row["intrinsic"], row["loss/bonus"]] == pytest.approx(
        [0.0005414456827566028, 2.066058397293091, 2.518550395965576], rel=1e-4)
    assert (row.first_goal_step, row.visited_fraction) == (168.0, 0.953125)
    for comm, weight_sum in [("attention", -10.910729059936784), ("gnn", -8.201723402755306)]:
        run = scaling.train(task("neighbour_majority", num_agents=10),
                            scaling.Config(comm=comm, seed=2, total_steps=768, log_every=64), progress=False)
        total = sum(float(v.double().sum()) for v in run.learner.actor.state_dict().values())
        assert total == pytest.approx(weight_sum, abs=1e-4), comm


# ----------------------------------------------------------------------- the experiments
def test_experiments_run_with_your_parts_and_make_the_table():
    spies = {"drqn_loss": Spy(drqn.drqn_loss), "icm_losses": Spy(curiosity.icm_losses),
             "gat_forward": Spy(gat.gat_forward), "gated_attention": Spy(attention.gated_attention)}
    memory_curves, memory_rows = experiments.run_memory(
        drqn.Config(total_steps=300, eval_episodes=8), seeds=[0], parts=drqn.Parts(drqn_loss=spies["drqn_loss"]),
        eval_episodes=16, progress=False)
    explore_curves, explore_rows = experiments.run_exploration(
        curiosity.Config(**QUICK_EXPLORER), seeds=[0], parts=curiosity.Parts(icm_losses=spies["icm_losses"]),
        progress=False)
    scaling_curves, scaling_rows, runs = experiments.run_scaling(
        scaling.Config(total_steps=128, log_every=64), sizes=[3], seeds=[0],
        parts=scaling.Parts(gat_forward=spies["gat_forward"], gated_attention=spies["gated_attention"]),
        progress=False)
    assert all(spy.calls > 0 for spy in spies.values()), {n: s.calls for n, s in spies.items()}
    assert set(memory_curves.method) == {"DRQN (LSTM)", "DQN (feed-forward)"} and len(memory_rows) == 2
    assert set(explore_curves.method) == {"DQN", "DQN + ICM", "DQN + RND"} and len(explore_rows) == 3
    assert set(runs) == {("gnn", 3), ("attention", 3), ("none", 3)} and len(scaling_rows) == 3
    rows = memory_rows + explore_rows + scaling_rows
    assert all(set(experiments.ROW_KEYS) <= set(r) for r in rows)
    table = experiments.comparison_table(rows + experiments.reference_rows(episodes=64, scaling_sizes=(3,)))
    assert len(table) == 2 + 3 + 3 + 2 + 1 + 1 and table.success.between(0, 1).all()


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
