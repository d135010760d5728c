"""CommNet (course_lib.algos.commnet), the REINFORCE learner (course_lib.algos.reinforce) and
the lever learner (course_lib.algos.levers)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib.algos import commnet, levers, reinforce
from course_lib.envs import TrafficJunction, VecLeverPulling, VecPredatorPrey, VecTrafficJunction
from course_lib.envs.navigation import TUNED
from course_lib.evaluation import evaluate
from course_lib.tasks import task
from spies import Spy

# a few updates of 8 small episodes; one curve row per update
TJ = reinforce.Config(total_steps=4 * 8 * 20, hidden=16, num_envs=8, log_every=8 * 20)
LEVERS = levers.Config(total_steps=6 * 64, batch=64, hidden=32, log_every=2 * 64, eval_rounds=128, seed=1)


# ---------------------------------------------------------------- communication
def test_comm_mean_averages_the_other_present_agents():
    h = torch.tensor([[[1.0], [2.0], [4.0], [8.0]]])
    alive = torch.tensor([[True, True, False, True]])
    c = commnet.comm_mean(h, alive)
    # agent 0 hears 1 and 3: (2 + 8) / 2; agent 1 hears 0 and 3; agent 3 hears 0 and 1;
    # the absent agent 2 hears the three present ones
    assert torch.allclose(c[0, :, 0], torch.tensor([5.0, 4.5, 11 / 3, 1.5]))
    lone = commnet.comm_mean(h, torch.tensor([[True, False, False, False]]))
    assert lone[0, 0, 0] == 0.0, "an agent with nobody to hear gets a zero message"
    assert torch.allclose(commnet.comm_mean(h, alive.float()), c), "0/1 float masks work like bool"


def test_comm_mean_with_reach_limits_who_hears_whom():
    h = torch.tensor([[[1.0], [2.0], [4.0]]])
    alive = torch.ones(1, 3, dtype=torch.bool)
    reach = torch.tensor([[[True, True, False], [True, True, True], [False, False, True]]])
    c = commnet.comm_mean(h, alive, reach)
    assert torch.allclose(c[0, :, 0], torch.tensor([2.0, 2.5, 0.0]))
    pos = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [1.0, 1.0]]])
    near = commnet.reach_within(pos, 0.5)
    assert near.tolist() == [[[True, True, False], [True, True, False], [False, False, True]]]


def test_commnet_shapes_nocomm_independence_and_masking():
    torch.manual_seed(0)
    obs = torch.randn(2, 4, 6)
    alive = torch.tensor([[True, True, False, True], [True] * 4])
    model = commnet.CommNet(6, 3, hidden=16, comm_steps=2)
    logits, values = model(obs, alive)
    assert logits.shape == (2, 4, 3) and values.shape == (2, 4)
    changed = obs.clone()
    changed[0, 2] += 5.0                                   # absent agent: no influence
    assert torch.allclose(model(changed, alive)[0][0, alive[0]], logits[0, alive[0]], atol=1e-6)
    changed[1, 2] += 5.0                                   # present agent: others change
    assert not torch.allclose(model(changed, alive)[0][1, 0], logits[1, 0], atol=1e-4)
    nocomm = commnet.CommNet(6, 3, hidden=16, comm_steps=2, comm=False)
    base = nocomm(obs, alive)[0]
    assert torch.allclose(nocomm(changed, alive)[0][1, 0], base[1, 0], atol=1e-6), "NoComm agents act alone"
    with pytest.raises(ValueError, match="obs"):
        model(torch.randn(2, 4, 5))


def test_commnet_reads_integer_ids_as_one_hot():
    torch.manual_seed(1)
    model = commnet.CommNet(10, 4, hidden=8)
    ids = torch.tensor([[3, 7, 0]])
    onehot = torch.nn.functional.one_hot(ids, 10).float()
    assert torch.allclose(model(ids)[0], model(onehot)[0], atol=1e-6)


# ---------------------------------------------------------------- REINFORCE pieces
def test_reinforce_loss_by_hand_and_baseline_is_a_constant_in_the_policy_term():
    log_probs = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    values = torch.tensor([0.5, 1.0, 0.0], requires_grad=True)
    returns = torch.tensor([1.0, 0.0, 3.0])
    entropy = torch.tensor([0.6, 0.4, 0.9])
    mask = torch.tensor([1.0, 1.0, 0.0])
    loss = reinforce.reinforce_loss(log_probs, values, returns, entropy, mask, value_coef=0.5, entropy_coef=0.1)
    adv = torch.tensor([0.5, -1.0])
    want = -(torch.tensor([-1.0, -2.0]) * adv).mean() + 0.5 * (adv ** 2).mean() - 0.1 * 0.5
    assert loss.item() == pytest.approx(want.item(), abs=1e-6)
    loss.backward()
    assert torch.allclose(log_probs.grad, torch.tensor([-0.25, 0.5, 0.0]))
    # d/dV of value_coef * mean((R - V)^2) only: -2 * 0.5 * (R - V) / 2
    assert torch.allclose(values.grad, torch.tensor([-0.25, 0.5, 0.0]))


def test_returns_to_go_per_agent_team_and_slot_reuse():
    r = torch.tensor([[[1.0, 0.0]], [[2.0, 1.0]], [[3.0, 1.0]]])   # [T=3, B=1, N=2]
    g = reinforce.returns_to_go(r)
    assert g[:, 0, 0].tolist() == [6.0, 5.0, 3.0]
    assert reinforce.returns_to_go(r, team=True)[0, 0].tolist() == [8.0, 8.0]
    starts = torch.zeros_like(r)
    starts[2, 0, 0] = 1.0                                           # a new car takes slot 0 at t=2
    assert reinforce.returns_to_go(r, starts=starts)[:, 0, 0].tolist() == [3.0, 2.0, 3.0]
    assert reinforce.returns_to_go(r, gamma=0.5)[:, 0, 0].tolist() == [1 + 0.5 * (2 + 0.5 * 3), 2 + 1.5, 3.0]


def test_rollout_masks_absent_cars_and_finished_episodes():
    env = VecTrafficJunction(8, version="easy", seed=0)
    torch.manual_seed(0)
    batch = reinforce.rollout(env, commnet.CommNet(env.obs_dim, env.n_actions, 16))
    T = env.core.max_steps
    assert batch["mask"].shape == (T, 8, env.num_agents)
    assert (batch["rewards"][batch["mask"] == 0] == 0).all()
    assert 0 < batch["mask"].mean() < 1, "some car slots are empty"
    assert all(info["done"].all() for info in batch["episodes"][-1:])
    env = VecPredatorPrey(16, seed=0)
    batch = reinforce.rollout(env, commnet.CommNet(env.obs_dim, env.n_actions, 16))
    ended = np.stack([info["done"] for info in batch["episodes"]])
    first_end = ended.argmax(axis=0)
    for b in range(16):                          # nothing counts after an env's episode ended
        assert (batch["mask"][first_end[b] + 1:, b] == 0).all()


# ---------------------------------------------------------------- the REINFORCE learner
def test_reinforce_curve_columns_and_step_units():
    run = reinforce.train("traffic_junction_easy", TJ, progress=False)
    df = run.curve
    assert list(df.columns[:5]) == ["step", "episode", "train_return", "eval_return", "loss/reinforce"]
    assert {"return_per_agent", "failure", "success", "cars_completed", "entropy", "arrival_prob", "sps"} <= set(df)
    # one update = 8 episodes of 20 steps
    assert df["step"].tolist() == [160, 320, 480, 640] and df["episode"].tolist() == [8, 16, 24, 32]
    assert df["arrival_prob"].is_monotonic_increasing and df["eval_return"].isna().all()
    assert run.learner.updates == 4


def test_commnet_is_the_papers_c0_is_zero_and_k_modules_send_k_minus_1_messages():
    """Sukhbaatar et al. 2016: h^0 = r(s), c^0 = 0, K modules f^0..f^{K-1}: K = 1 sends nothing."""
    torch.manual_seed(0)
    obs, alive = torch.randn(2, 4, 6), torch.ones(2, 4, dtype=torch.bool)
    changed = obs.clone()
    changed[:, 3] += 5.0                                   # agent 3 sees something else
    one = commnet.CommNet(6, 3, hidden=16, comm_steps=1)
    assert torch.allclose(one(changed, alive)[0][:, :3], one(obs, alive)[0][:, :3], atol=1e-6), "K = 1: no message"
    assert len(one.comm_weights) == 0
    for K in (2, 3):
        model = commnet.CommNet(6, 3, hidden=16, comm_steps=K)
        spy = Spy(commnet.comm_mean)
        model.comm_mean = spy
        logits = model(obs, alive)[0]
        assert spy.calls == K - 1 and len(model.comm_weights) == K - 1
        assert not torch.allclose(model(changed, alive)[0][:, 0], logits[:, 0], atol=1e-4), "the others are heard"
    # by hand, K = 2: h1 = tanh(H0 h0 + h0), h2 = tanh(H1 h1 + C1 mean_others(h1) + h0)
    m = commnet.CommNet(6, 3, hidden=16, comm_steps=2)
    h0 = torch.tanh(m.encoder(obs))
    h1 = torch.tanh(m.self_weights[0](h0) + h0)
    h2 = torch.tanh(m.self_weights[1](h1) + m.comm_weights[0](commnet.comm_mean(h1, alive)) + h0)
    assert torch.allclose(m(obs, alive)[0], m.decoder(h2), atol=1e-6)
    noskip = commnet.CommNet(6, 3, hidden=16, comm_steps=2, skip=False)
    h1 = torch.tanh(noskip.self_weights[0](torch.tanh(noskip.encoder(obs))))
    h2 = torch.tanh(noskip.self_weights[1](h1) + noskip.comm_weights[0](commnet.comm_mean(h1, alive)))
    assert torch.allclose(noskip(obs, alive)[0], noskip.decoder(h2), atol=1e-6)


def test_junction_reach_limits_who_hears_whom():
    env = VecTrafficJunction(4, version="medium", seed=0, arrival_prob=0.2)
    obs, info = env.reset(seed=0)
    for _ in range(12):
        obs, _, _, _, info = env.step(np.ones((4, env.num_agents), dtype=np.int64))
    reach = commnet.JunctionReach(env.core.size, 3.0)(torch.as_tensor(obs))
    cells = env.core.cells()
    r, c = np.divmod(np.maximum(cells, 0), env.core.size)
    dist = np.hypot(r[:, :, None] - r[:, None, :], c[:, :, None] - c[:, None, :])
    active = info["active"]
    both = active[:, :, None] & active[:, None, :]
    assert (reach.numpy()[both] == (dist <= 3.0)[both]).all() and (~reach.numpy()[both]).any()
    model = commnet.CommNet(env.obs_dim, 2, hidden=8, reach=commnet.JunctionReach(env.core.size, 3.0))
    spy = []
    model.comm_mean = lambda h, alive, reach=None: spy.append(reach) or commnet.comm_mean(h, alive, reach)
    model(torch.as_tensor(obs), torch.as_tensor(active))
    assert torch.equal(spy[0], reach)


def test_fully_connected_hears_every_slot_with_its_own_weights():
    torch.manual_seed(1)
    obs = torch.randn(2, 4, 6)
    alive = torch.tensor([[True, True, False, True], [True] * 4])
    model = commnet.FullyConnected(6, 3, num_agents=4, hidden=8, comm_steps=2)
    logits, values = model(obs, alive)
    assert logits.shape == (2, 4, 3) and values.shape == (2, 4)
    changed = obs.clone()
    changed[0, 2] += 5.0                                   # absent slot: no influence
    assert torch.allclose(model(changed, alive)[0][0, alive[0]], logits[0, alive[0]], atol=1e-6)
    changed[1, 2] += 5.0                                   # a present slot changes the others
    assert not torch.allclose(model(changed, alive)[0][1, 0], logits[1, 0], atol=1e-4)
    perm = torch.tensor([1, 0, 2, 3])                       # slots have their own weights: no permutation symmetry
    assert not torch.allclose(model(obs[:, perm])[0][:, perm], model(obs)[0], atol=1e-4)
    assert model.layers[0].in_features == 4 * 8


def test_fully_connected_with_slot_heads_acts_through_each_slots_own_head():
    torch.manual_seed(1)
    model = commnet.FullyConnected(6, 3, num_agents=4, hidden=8, slot_heads=True)
    obs = torch.randn(2, 4, 6)
    logits, values = model(obs)
    assert logits.shape == (2, 4, 3) and values.shape == (2, 4)
    h = torch.randn(2, 4, 8)
    for j in range(4):  # slot j's head is its own nn.Linear
        head = torch.nn.Linear(8, 3)
        head.weight.data, head.bias.data = model.decoder.weight[j], model.decoder.bias[j]
        assert torch.allclose(model.decoder(h)[:, j], head(h[:, j]), atol=1e-6)
    assert not torch.allclose(model.decoder.weight[0], model.decoder.weight[1])
    built = reinforce.make_model("fully_connected_slots", 6, 3, reinforce.Config(hidden=8), num_agents=4)
    assert built.slot_heads and tuple(built.value_head.weight.shape) == (4, 1, 8)


def test_discrete_communication_says_one_hot_symbols_and_keeps_their_log_probs():
    torch.manual_seed(2)
    obs, alive = torch.randn(3, 4, 6), torch.tensor([[True, True, False, True]] * 3)
    model = commnet.DiscreteCommNet(6, 2, hidden=8, comm_steps=3, vocab=5)
    heard = []
    model.comm_mean = lambda h, a, reach=None: heard.append(h) or commnet.comm_mean(h, a, reach)
    model(obs, alive, greedy=True)
    assert len(heard) == 2 and all(h.shape == (3, 4, 5) for h in heard)
    assert all(((h == 0) | (h == 1)).all() and (h.sum(-1) == 1).all() for h in heard), "one-hot symbols"
    lp, ent = model.symbol_log_prob, model.symbol_entropy
    assert lp.shape == (3, 4) and (lp[:, 2] == 0).all() and (lp[alive] < 0).all() and (ent[alive] > 0).all()
    g1 = torch.Generator().manual_seed(7)
    g2 = torch.Generator().manual_seed(7)
    a = model(obs, alive, generator=g1)[0]
    assert torch.equal(a, model(obs, alive, generator=g2)[0]), "sampled symbols follow the generator"
    lp.sum().backward()
    assert model.speakers[0].weight.grad is not None, "REINFORCE reaches the speakers through the log-probs"


def test_recurrent_commnet_remembers_and_absent_slots_forget():
    torch.manual_seed(3)
    model = commnet.RecurrentCommNet(6, 2, hidden=8, comm_steps=1)
    obs = torch.randn(2, 3, 6)
    alive = torch.tensor([[True, True, False], [True, True, True]])
    logits0, values0, state = model(obs, alive)
    assert logits0.shape == (2, 3, 2) and values0.shape == (2, 3) and state[0].shape == (2, 3, 8)
    assert (state[0][0, 2] == 0).all() and (state[1][0, 2] == 0).all(), "an absent slot keeps no memory"
    again = model(obs, alive, state)[0]
    assert not torch.allclose(again, logits0, atol=1e-5), "the same observation after a history acts otherwise"
    assert torch.allclose(model(obs, alive, None)[0], logits0), "None: a fresh memory"
    fresh = reinforce.forget(state, np.array([[True, False, False], [False, False, False]]))
    assert (fresh[0][0, 0] == 0).all() and torch.equal(fresh[0][1], state[0][1])
    # the message at a step is the mean of the others' previous states (one pass)
    changed = obs.clone()
    changed[1, 2] += 5.0
    assert torch.allclose(model(changed, alive)[0][1, 0], logits0[1, 0], atol=1e-6), "first step: c = mean of zeros"
    _, _, s2 = model(changed, alive)
    assert not torch.allclose(model(obs, alive, s2)[0][1, 0], again[1, 0], atol=1e-5), "then the others are heard"
    nocomm = commnet.RecurrentCommNet(6, 2, hidden=8, comm=False)
    _, _, st = nocomm(obs, alive)
    _, _, st2 = nocomm(changed, alive)
    assert torch.allclose(nocomm(obs, alive, st)[0][1, 0], nocomm(obs, alive, st2)[0][1, 0], atol=1e-6)


def test_reinforce_calls_the_students_parts_in_the_loop():
    spies = {"comm_mean": Spy(commnet.comm_mean), "reinforce_loss": Spy(reinforce.reinforce_loss)}
    reference = reinforce.train("traffic_junction_easy", TJ, progress=False).curve
    spied = reinforce.train("traffic_junction_easy", TJ, parts=spies, progress=False).curve
    assert spies["reinforce_loss"].calls == 4, "one loss per update"
    assert spies["comm_mean"].calls >= 4 * 20 * (TJ.comm_steps - 1), "K - 1 messages per step of every rollout"
    pd.testing.assert_frame_equal(spied.drop(columns="sps"), reference.drop(columns="sps"))
    nocomm = Spy(commnet.comm_mean)
    reinforce.train("traffic_junction_easy", dataclasses.replace(TJ, model="nocomm"), parts={"comm_mean": nocomm},
                    progress=False)
    assert nocomm.calls == 0, "NoComm sends no messages"


def _loss_without_detach(log_probs, values, returns, entropy, mask, value_coef=0.03, entropy_coef=0.01):
    """A planted mistake: the baseline gets the policy gradient too (advantage not a constant)."""
    mask = mask.to(log_probs.dtype)
    count = mask.sum().clamp(min=1.0)
    advantage = returns - values
    return (-(log_probs * advantage * mask).sum() + value_coef * (advantage ** 2 * mask).sum()
            - entropy_coef * (entropy * mask).sum()) / count


def _mean_with_self(hidden, alive, reach=None):
    """A planted mistake: every agent hears itself too."""
    present = alive.to(hidden.dtype)[:, None, :].expand(-1, hidden.shape[1], -1)
    return present @ hidden / present.sum(-1, keepdim=True).clamp(min=1.0)


@pytest.mark.parametrize("wrong", [{"reinforce_loss": _loss_without_detach}, {"comm_mean": _mean_with_self}])
def test_a_wrong_part_changes_the_run(wrong):
    reference = reinforce.train("traffic_junction_easy", TJ, progress=False)
    planted = reinforce.train("traffic_junction_easy", TJ, parts=wrong, progress=False)
    assert not np.allclose(planted.curve["loss/reinforce"], reference.curve["loss/reinforce"])
    assert not all(torch.equal(a, b) for a, b in zip(planted.learner.model.parameters(),
                                                       reference.learner.model.parameters()))


@pytest.mark.parametrize("model, part, stop", [("commnet", "reinforce_loss", 2), ("commnet", "comm_mean", 47),
                                               ("tarmac", "attention_weights", 90), ("commnet_lstm", "comm_mean", 47),
                                               ("nocomm_lstm", "reinforce_loss", 2), ("discrete", "comm_mean", 33),
                                               ("fully_connected", "reinforce_loss", 3),
                                               ("tarmac_lstm", "attention_weights", 90)])
def test_reinforce_resumes_exactly_after_ctrl_c(tmp_path, model, part, stop):
    cfg = dataclasses.replace(TJ, model=model, eval_episodes=8, comm_steps=1 if model.endswith("lstm") else 2)
    straight = reinforce.train("traffic_junction_easy", cfg, progress=False)
    reference = getattr(reinforce.Parts(), part)
    with pytest.raises(KeyboardInterrupt):
        reinforce.train("traffic_junction_easy", cfg, parts={part: Spy(reference, stop=stop, ctrl_c=True)}, out=tmp_path,
                        progress=False)
    resumed = reinforce.train("traffic_junction_easy", cfg, resume=tmp_path, progress=False)
    pd.testing.assert_frame_equal(resumed.curve.drop(columns="sps"), straight.curve.drop(columns="sps"))
    for a, b in zip(resumed.learner.model.parameters(), straight.learner.model.parameters()):
        assert torch.equal(a, b)
    assert resumed.learner.env.core.arrival_prob == straight.learner.env.core.arrival_prob


LSTM = dataclasses.replace(TJ, model="commnet_lstm", comm_steps=1)


@pytest.mark.parametrize("wrong", [{"reinforce_loss": _loss_without_detach}, {"comm_mean": _mean_with_self}])
@pytest.mark.parametrize("model", ["commnet_lstm", "discrete"])
def test_recurrent_and_discrete_models_call_the_parts_and_a_wrong_part_shows(model, wrong):
    cfg = dataclasses.replace(LSTM, model=model, comm_steps=1 if model.endswith("lstm") else 2)
    spies = {"comm_mean": Spy(commnet.comm_mean), "reinforce_loss": Spy(reinforce.reinforce_loss)}
    reference = reinforce.train("traffic_junction_easy", cfg, progress=False)
    spied = reinforce.train("traffic_junction_easy", cfg, parts=spies, progress=False)
    assert spies["reinforce_loss"].calls == 4 and spies["comm_mean"].calls >= 4 * 20, "a message every step"
    pd.testing.assert_frame_equal(spied.curve.drop(columns="sps"), reference.curve.drop(columns="sps"))
    planted = reinforce.train("traffic_junction_easy", cfg, parts=wrong, progress=False)
    assert not np.allclose(planted.curve["loss/reinforce"], reference.curve["loss/reinforce"])


def test_recurrent_rollout_carries_memory_and_backpropagates_through_the_episode():
    env = VecTrafficJunction(4, version="easy", seed=0, arrival_prob=0.3)
    torch.manual_seed(0)
    model = commnet.RecurrentCommNet(env.obs_dim, 2, hidden=8)
    batch = reinforce.rollout(env, model)
    batch["log_probs"][-1].sum().backward()         # the last step's gradient reaches the encoder through time
    assert model.cell.weight_hh.grad.abs().sum() > 0
    # a rollout equals stepping the model by hand, forgetting new cars' memories
    batch = reinforce.rollout(VecTrafficJunction(4, version="easy", seed=1, arrival_prob=0.3), model, greedy=True)
    env = VecTrafficJunction(4, version="easy", seed=1, arrival_prob=0.3)
    obs, info = env.reset()
    state, values = None, []
    with torch.no_grad():
        for t in range(20):
            state = reinforce.forget(state, info["arrived"])
            logits, v, state = model(torch.as_tensor(obs), torch.as_tensor(info["active"]), state)
            values.append(v)
            obs, _, _, _, info = env.step(logits.argmax(-1).numpy())
    assert torch.allclose(torch.stack(values), batch["values"].detach(), atol=1e-6)
    assert batch["starts"].sum() > 0 and (batch["starts"].bool() <= batch["mask"].bool()).all()


@pytest.mark.parametrize("model", ["commnet_lstm", "discrete"])
def test_the_policy_keeps_memory_between_calls_and_forgets_where_told(model):
    cfg = dataclasses.replace(LSTM, model=model, comm_steps=1 if model.endswith("lstm") else 2, total_steps=160)
    run = reinforce.train("traffic_junction_easy", cfg, progress=False)
    final = task("traffic_junction_easy", arrival_prob=0.3)
    policy = run.policy
    # the evaluator's greedy episodes equal the rollout's (both forget new cars and finished episodes)
    ev = evaluate(policy, final, episodes=8, seed=3, num_envs=8)
    env = final.batched(8, seed=3)
    with torch.no_grad():
        batch = reinforce.rollout(env, run.learner.model, greedy=True)
    assert np.allclose(ev.team_returns, reinforce.episode_values(batch["episodes"])["team_return"])
    single = evaluate(policy, final, episodes=2, seed=3, on="single")
    assert single.episodes == 2
    sampled = [evaluate(policy.reseed(5), final, episodes=8, seed=3, num_envs=8, greedy=False).returns for _ in "ab"]
    assert np.array_equal(*sampled), "sampling (actions and symbols) from the policy's own generator"
    if model.endswith("lstm"):
        obs, info = env.reset(seed=0)
        policy.reset(8)
        policy.act(obs, info)
        assert policy.state is not None
        policy.reset(8)
        assert policy.state is None


def test_comm_range_and_a_late_curriculum():
    cfg = dataclasses.replace(TJ, comm_range=2.0)
    run = reinforce.train("traffic_junction_easy", cfg, progress=False)
    assert run.learner.model.reach.radius == 2.0 and run.learner.model.reach.size == 7
    assert not run.curve.drop(columns="sps").equals(reinforce.train("traffic_junction_easy", TJ,
                                                                    progress=False).curve.drop(columns="sps"))
    with pytest.raises(ValueError, match="comm_range"):
        reinforce.train("predator_prey", dataclasses.replace(cfg, total_steps=8 * 40), progress=False)
    with pytest.raises(ValueError, match="comm_range"):
        reinforce.train("traffic_junction_easy", dataclasses.replace(cfg, model="tarmac"), progress=False)
    late = reinforce.train("traffic_junction_easy", dataclasses.replace(TJ, total_steps=8 * 160, curriculum_from=0.5,
                                                                        curriculum_until=0.75), progress=False)
    assert late.curve["arrival_prob"].tolist()[:4] == [0.1] * 4 and late.curve["arrival_prob"].iloc[-1] == 0.3
    bonus = []
    spy = lambda *args: bonus.append(args[6]) or reinforce.reinforce_loss(*args)  # noqa: E731
    reinforce.train("traffic_junction_easy", dataclasses.replace(TJ, total_steps=8 * 160, entropy_until=0.5),
                    parts={"reinforce_loss": spy}, progress=False)
    assert bonus[0] == 0.1 and bonus[3:] == [0.0] * 5, "the entropy bonus reaches entropy_end by half the updates"


def test_a_loaded_run_plugs_the_parts_in_again(tmp_path):
    spy = Spy(commnet.comm_mean)
    run = reinforce.train("traffic_junction_easy", dataclasses.replace(TJ, total_steps=160), parts={"comm_mean": spy},
                          out=tmp_path, progress=False)
    assert run.learner.model.comm_mean is spy
    from course_lib import learning

    again = learning.load(tmp_path)
    assert again.learner.model.comm_mean is commnet.comm_mean, "saved without the part, the reference plugged in"
    other = Spy(commnet.comm_mean)
    assert learning.load(tmp_path, parts={"comm_mean": other}).learner.model.comm_mean is other


def test_models_are_pluggable_and_checked(monkeypatch):
    with pytest.raises(ValueError, match="unknown model 'gru'"):
        reinforce.train("traffic_junction_easy", dataclasses.replace(TJ, model="gru"), progress=False)
    monkeypatch.setitem(reinforce.MODELS, "wide", lambda obs_dim, n_actions, cfg, num_agents: commnet.CommNet(
        obs_dim, n_actions, 2 * cfg.hidden, cfg.comm_steps, skip=False))
    run = reinforce.train("predator_prey", dataclasses.replace(TJ, model="wide", total_steps=8 * 40,
                                                               log_every=8 * 40), progress=False)
    assert run.learner.model.hidden == 32 and not run.learner.model.skip and len(run.curve) == 1
    with pytest.raises(TypeError):
        reinforce.train("traffic_junction_easy", levers.Config(), progress=False)


def test_policy_evaluates_on_the_final_junction_and_the_pettingzoo_env():
    run = reinforce.train(task("navigation", **TUNED), dataclasses.replace(TJ, total_steps=8 * 40, log_every=8 * 40),
                          progress=False)
    assert run.learner.env.core.vision_radius == TUNED["vision_radius"]
    tj = reinforce.train("traffic_junction_easy", TJ, progress=False)
    final = task("traffic_junction_easy", arrival_prob=0.3)      # where the papers evaluate
    old_way = VecTrafficJunction(4, version="easy", seed=0)
    old_way.set_curriculum(1.0)
    assert final.batched(4, seed=0).arrival_prob == old_way.arrival_prob
    twin = evaluate(tj.policy, final, episodes=16, seed=3, num_envs=16)
    assert twin.episodes == 16 and {"failure", "success", "cars_completed"} <= set(twin.metrics)
    sampled = evaluate(tj.policy.reseed(5), final, episodes=16, seed=3, num_envs=16, greedy=False)
    assert np.array_equal(sampled.returns, evaluate(tj.policy.reseed(5), final, episodes=16, seed=3, num_envs=16,
                                                     greedy=False).returns), "the policy's own generator"
    single = evaluate(tj.policy, final, episodes=2, seed=3, on="single")
    assert single.episodes == 2 and "failure" in single.metrics
    env = TrafficJunction(arrival_prob=0.3)
    obs, infos = env.reset(seed=0)
    actions = tj.policy(obs, infos)
    assert set(actions) == set(env.possible_agents) and all(a in (0, 1) for a in actions.values())


# ---------------------------------------------------------------- lever pulling
def test_levers_commnet_learns_and_nocomm_stays_at_chance():
    cfg = levers.Config(total_steps=200 * 256, batch=256, hidden=64, lr_decay=False, log_every=200 * 256,
                        eval_rounds=1024)
    run = levers.train("levers", cfg, progress=False)
    assert run.curve["eval_score"].iloc[-1] > 0.72, run.curve
    cfg = levers.Config(model="nocomm", total_steps=150 * 128, batch=128, hidden=32, log_every=150 * 128,
                        eval_rounds=1024)
    run = levers.train("levers", cfg, progress=False)
    assert abs(run.curve["eval_score"].iloc[-1] - 0.59) < 0.04, run.curve


def test_levers_log_fixed_columns_and_the_score():
    cfg = dataclasses.replace(LEVERS, mode="reinforce", total_steps=30 * 64, log_every=10 * 64, eval_rounds=256)
    df = levers.train("levers", cfg, progress=False).curve
    assert list(df.columns[:5]) == ["step", "episode", "train_return", "eval_return", "loss/reinforce"]
    assert df["step"].tolist() == [640, 1280, 1920]
    # the team return of a round is the score paid to each of the 5 agents
    np.testing.assert_allclose(df["eval_return"], 5 * df["eval_score"])


def test_levers_call_the_parts_and_a_wrong_part_shows():
    spies = {"comm_mean": Spy(commnet.comm_mean), "reinforce_loss": Spy(reinforce.reinforce_loss)}
    cfg = dataclasses.replace(LEVERS, mode="reinforce")
    reference = levers.train("levers", cfg, progress=False).curve
    spied = levers.train("levers", cfg, parts=spies, progress=False).curve
    assert spies["reinforce_loss"].calls == 6 and spies["comm_mean"].calls >= 6 * cfg.comm_steps
    pd.testing.assert_frame_equal(spied.drop(columns="sps"), reference.drop(columns="sps"))
    planted = levers.train("levers", cfg, parts={"reinforce_loss": _loss_without_detach}, progress=False).curve
    assert not np.allclose(planted["loss/reinforce"], reference["loss/reinforce"])
    supervised = Spy(reinforce.reinforce_loss)
    levers.train("levers", LEVERS, parts={"reinforce_loss": supervised}, progress=False)
    assert supervised.calls == 0, "the supervised mode learns from the ranks"


@pytest.mark.parametrize("mode, part, stop", [("reinforce", "reinforce_loss", 3), ("supervised", "comm_mean", 9)])
def test_levers_resume_exactly_after_ctrl_c(tmp_path, mode, part, stop):
    cfg = dataclasses.replace(LEVERS, mode=mode)
    straight = levers.train("levers", cfg, progress=False)
    with pytest.raises(KeyboardInterrupt):
        levers.train("levers", cfg, parts={part: Spy(getattr(levers.Parts(), part), stop=stop, ctrl_c=True)}, out=tmp_path,
                     progress=False)
    resumed = levers.train("levers", cfg, resume=tmp_path, progress=False)
    pd.testing.assert_frame_equal(resumed.curve.drop(columns="sps"), straight.curve.drop(columns="sps"))
    for a, b in zip(resumed.learner.model.parameters(), straight.learner.model.parameters()):
        assert torch.equal(a, b)


def test_levers_reject_a_bad_config():
    with pytest.raises(ValueError, match="mode"):
        levers.train("levers", levers.Config(mode="unsupervised"), progress=False)
    with pytest.raises(ValueError, match="'levers' task"):
        levers.train("predator_prey", LEVERS, progress=False)
    with pytest.raises(ValueError, match="commnet"):
        levers.train("levers", dataclasses.replace(LEVERS, model="tarmac"), progress=False)


def test_lever_ids_recover_the_pool_index():
    env = VecLeverPulling(4, obs_type="index", seed=0)
    obs, _ = env.reset(seed=0)
    assert (commnet.lever_ids(obs, 500).numpy() == env.core.ids).all()


def test_lever_policy_greedy_and_sampled_on_a_uniform_policy():
    model = commnet.CommNet(500, 5, hidden=8)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()                      # every lever equally likely
    policy = levers.LeverPolicy(model, [f"agent_{i}" for i in range(5)], 500)
    index = task("levers", obs_type="index")
    sampled = evaluate(policy, index, 8192, seed=12345, num_envs=8192, greedy=False)
    assert sampled.metrics["distinct_score"].mean() == pytest.approx(0.590, abs=0.01)
    greedy = evaluate(policy, index, 512, seed=0, num_envs=512)
    assert greedy.metrics["distinct_score"].mean() == 0.0, "argmax of equal logits: everyone pulls lever 0"
    onehot = evaluate(policy, "levers", 64, seed=0, num_envs=64)     # one-hot ids through the encoder
    assert onehot.metrics["distinct_score"].mean() == 0.0


def test_lstm_present_runs_the_cell_on_the_present_agents_only():
    torch.manual_seed(5)
    cell = torch.nn.LSTMCell(4, 3)
    inp, h, m = torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 3, 3), torch.randn(2, 3, 3)
    alive = torch.tensor([[True, False, True], [False, False, True]])
    new_h, new_m = commnet.lstm_present(cell, inp, (h, m), alive)
    full_h, full_m = cell(inp.reshape(6, 4), (h.reshape(6, 3), m.reshape(6, 3)))
    keep = alive.reshape(6, 1)
    assert torch.allclose(new_h.reshape(6, 3), full_h * keep, atol=1e-6)
    assert torch.allclose(new_m.reshape(6, 3), full_m * keep, atol=1e-6), "absent slots keep no memory"
    new_h.sum().backward()
    assert (inp.grad[~alive] == 0).all() and (inp.grad[alive] != 0).any(), "the gradient reaches present inputs only"
    nobody = commnet.lstm_present(cell, inp, (h, m), torch.zeros(2, 3, dtype=torch.bool))
    assert nobody[0].shape == (2, 3, 3) and (nobody[0] == 0).all()
