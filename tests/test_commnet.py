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


def test_reinforce_reproduces_the_old_trainer_on_the_same_seed():
    """Numbers of the pre-API ``reinforce.train(env, model, ...)`` (same seed, CommNet hidden 16,
    8 envs, the traffic-junction settings), one row per update."""
    cfg = dataclasses.replace(TJ, total_steps=6 * 160)
    df = reinforce.train("traffic_junction_easy", cfg, progress=False).curve
    old_return = [-3.75800000866875, -16.426500141946597, -19.17850008369424, -34.77675018669106,
                  -16.84700011010282, -32.176250245142725]
    old_loss = [-0.27501505613327026, -0.4711061716079712, -0.37389305233955383, -0.6936560869216919,
                -0.22333335876464844, -0.57204270362854]
    np.testing.assert_allclose(df["return_per_agent"], old_return, rtol=1e-6)
    np.testing.assert_allclose(df["loss/reinforce"], old_loss, rtol=1e-5)
    assert df["failure"].tolist() == [0.25, 0.875, 1.0, 1.0, 0.875, 1.0]


def test_reinforce_calls_the_students_parts_in_the_loop():
    spies = {"comm_mean": Spy(commnet.comm_mean), "reinforce_loss": Spy(reinforce.reinforce_loss)}
    reference = reinforce.train("traffic_junction_easy", TJ, progress=False).curve
    spied = reinforce.train("traffic_junction_easy", TJ, parts=spies, progress=False).curve
    assert spies["reinforce_loss"].calls == 4, "one loss per update"
    assert spies["comm_mean"].calls >= 4 * 20 * TJ.comm_steps, "K messages per step of every rollout"
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
                                               ("tarmac", "attention_weights", 90)])
def test_reinforce_resumes_exactly_after_ctrl_c(tmp_path, model, part, stop):
    cfg = dataclasses.replace(TJ, model=model, eval_episodes=8)
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
    monkeypatch.setitem(reinforce.MODELS, "wide", lambda obs_dim, n_actions, cfg: commnet.CommNet(
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


def test_levers_reproduce_the_old_trainer_and_log_fixed_columns():
    """``eval_score`` of the pre-API ``commnet.train_levers(mode="reinforce", updates=30, batch=64,
    hidden=32, log_every=10, eval_rounds=256, seed=1)``."""
    cfg = dataclasses.replace(LEVERS, mode="reinforce", total_steps=30 * 64, log_every=10 * 64, eval_rounds=256)
    df = levers.train("levers", cfg, progress=False).curve
    assert df["eval_score"].tolist() == [0.0263671875, 0.3837890625, 0.431640625]
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
