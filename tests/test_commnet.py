"""CommNet (course_lib.algos.commnet) and the REINFORCE trainer (course_lib.algos.reinforce)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib.algos import commnet, reinforce, tarmac
from course_lib.envs import VecCooperativeNavigation, VecLeverPulling, VecPredatorPrey, VecTrafficJunction


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


# ---------------------------------------------------------------- REINFORCE
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


@pytest.mark.parametrize("model_cls", [commnet.CommNet, tarmac.TarMAC])
def test_train_returns_history_and_resumes_from_a_checkpoint(tmp_path, model_cls):
    def run(updates, checkpoint=None):
        torch.manual_seed(0)
        env = VecCooperativeNavigation(8, seed=0)
        model = model_cls(env.obs_dim, env.n_actions, 16)
        df = reinforce.train(env, model, updates=updates, log_every=2, progress=False, seed=3,
                             checkpoint=checkpoint)
        return df, model

    straight, model = run(6)
    assert isinstance(straight, pd.DataFrame)
    for col in ("update", "episodes", "episode_return", "success", "loss", "entropy", "sps"):
        assert col in straight.columns, col
    ckpt = tmp_path / "run.pt"
    first, _ = run(4, checkpoint=ckpt)
    assert ckpt.exists()
    resumed, model2 = run(6, checkpoint=ckpt)      # picks up at update 4
    assert resumed["update"].tolist() == straight["update"].tolist()
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.allclose(a, b, atol=1e-6), "a resumed run continues exactly where it stopped"
    np.testing.assert_allclose(resumed.episode_return, straight.episode_return, rtol=1e-5)


def test_train_rejects_a_bad_config():
    env = VecTrafficJunction(2, seed=0)
    model = commnet.CommNet(env.obs_dim, env.n_actions, 8)
    with pytest.raises(TypeError):
        reinforce.train(env, model, updates=2, progress=False, no_such_setting=1)
    with pytest.raises(ValueError, match="mode"):
        commnet.train_levers(mode="unsupervised", updates=1, progress=False)


# ---------------------------------------------------------------- lever pulling
def test_levers_commnet_learns_and_nocomm_stays_at_chance():
    hist, model = commnet.train_levers(mode="supervised", updates=200, batch=256, hidden=64, lr_decay=False,
                                       log_every=200, eval_rounds=1024, progress=False)
    assert hist.eval_score.iloc[-1] > 0.72, hist
    hist, _ = commnet.train_levers(mode="supervised", comm=False, updates=150, batch=128, hidden=32,
                                   log_every=150, eval_rounds=1024, progress=False)
    assert abs(hist.eval_score.iloc[-1] - 0.59) < 0.04, hist


def test_lever_ids_recover_the_pool_index():
    env = VecLeverPulling(4, obs_type="index", seed=0)
    obs, _ = env.reset(seed=0)
    assert (commnet.lever_ids(obs, 500).numpy() == env.core.ids).all()


def test_lever_score_greedy_and_sampled_on_a_uniform_policy():
    model = commnet.CommNet(500, 5, hidden=8)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()                      # every lever equally likely
    assert commnet.lever_score(model, rounds=8192, greedy=False) == pytest.approx(0.590, abs=0.01)
    assert commnet.lever_score(model, rounds=512) == 0.0, "argmax of equal logits: everyone pulls lever 0"
