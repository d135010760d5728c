"""Tests of course_lib.algos.maddpg (MADDPG, IDDPG) used by notebooks/04_maddpg."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_lib.algos import maddpg

torch.set_num_threads(1)

N, D, A = 3, 18, 5


# ------------------------------------------------------------------ shapes


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("centralised", [True, False])
def test_actor_and_critic_shapes(shared, centralised):
    torch.manual_seed(0)
    actor = maddpg.Actor(N, D, A, hidden=(32, 32), shared=shared)
    critic = maddpg.Critic(N, D, A, hidden=(32, 32), shared=shared, centralised=centralised)
    obs = torch.randn(7, N, D)
    logits = actor(obs)
    assert logits.shape == (7, N, A)
    acts = maddpg.greedy_actions(actor, obs)
    assert acts.shape == (7, N, A) and torch.all(acts.sum(-1) == 1)
    q = critic(obs, acts)
    assert q.shape == (7, N)
    assert critic(obs.unsqueeze(0).expand(2, 7, N, D), acts.expand(2, 7, N, A)).shape == (2, 7, N)


def test_actor_is_decentralised():
    """Agent i's action depends on its own observation only."""
    torch.manual_seed(1)
    actor = maddpg.Actor(N, D, A, shared=True)
    obs = torch.randn(4, N, D)
    changed = obs.clone()
    changed[:, 1] += 5.0
    out, out2 = actor(obs), actor(changed)
    torch.testing.assert_close(out[:, [0, 2]], out2[:, [0, 2]])
    assert not torch.allclose(out[:, 1], out2[:, 1])


def test_critic_input_sizes_maddpg_vs_iddpg():
    """MADDPG's Q_i reads every agent's observation and action, IDDPG's only its own."""
    central = maddpg.Critic(N, D, A, hidden=(16,), shared=False, centralised=True)
    local = maddpg.Critic(N, D, A, hidden=(16,), shared=False, centralised=False)
    assert central.input_dim == N * (D + A)
    assert local.input_dim == D + A
    shared_central = maddpg.Critic(N, D, A, hidden=(16,), shared=True, centralised=True)
    assert shared_central.input_dim == N * (D + A)
    # behaviour: change agent 2's action; a centralised Q_0 moves, an independent Q_0 does not
    torch.manual_seed(2)
    obs = torch.randn(6, N, D)
    acts = F.one_hot(torch.randint(0, A, (6, N)), A).float()
    other = acts.clone()
    other[:, 2] = F.one_hot((acts[:, 2].argmax(-1) + 1) % A, A).float()
    for critic, moves in [(central, True), (local, False), (shared_central, True)]:
        diff = (critic(obs, acts)[:, 0] - critic(obs, other)[:, 0]).abs().max()
        assert (diff > 1e-6) == moves


def test_bad_input_is_named():
    actor = maddpg.Actor(N, D, A)
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, features\]"):
        actor(torch.zeros(5, 2, D))
    with pytest.raises(ValueError, match="critic"):
        maddpg.train_maddpg("simple_spread_v3", maddpg.MADDPGConfig(critic="central"), total_steps=10)
    with pytest.raises(ValueError, match="unknown MPE task"):
        maddpg.make_env("simple_spreed", 4)


# ----------------------------------------------------------- Gumbel-softmax


def test_gumbel_softmax_forward_is_one_hot_of_noisy_argmax():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    noise = torch.tensor([[0.0, 0.0, 3.0], [0.1, 0.0, 0.0]])
    y = maddpg.gumbel_softmax_st(logits, 1.0, noise=noise)
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))


def test_gumbel_softmax_straight_through_gradient():
    torch.manual_seed(3)
    logits = torch.randn(4, 5, requires_grad=True)
    noise = torch.randn(4, 5)
    w = torch.randn(4, 5)
    (grad,) = torch.autograd.grad((maddpg.gumbel_softmax_st(logits, 0.7, noise=noise) * w).sum(), logits)
    soft_logits = logits.detach().clone().requires_grad_(True)
    (want,) = torch.autograd.grad((F.softmax((soft_logits + noise) / 0.7, -1) * w).sum(), soft_logits)
    torch.testing.assert_close(grad, want)
    assert grad.abs().sum() > 0


def test_gumbel_softmax_samples_follow_softmax():
    torch.manual_seed(4)
    logits = torch.tensor([1.0, -0.5, 0.0, 2.0])
    y = maddpg.gumbel_softmax_st(logits.repeat(40_000, 1))
    assert torch.all(y.sum(-1) == 1)
    np.testing.assert_allclose(y.mean(0).numpy(), F.softmax(logits, -1).numpy(), atol=0.01)


# ----------------------------------------------------------- targets and losses


def test_critic_td_target_masks_terminals_and_has_no_grad():
    torch.manual_seed(5)
    actor, critic = maddpg.Actor(N, D, A), maddpg.Critic(N, D, A)
    rewards, next_obs = torch.randn(8, N), torch.randn(8, N, D)
    dones = torch.zeros(8, N)
    dones[:4] = 1.0
    y = maddpg.critic_td_target(rewards, next_obs, dones, lambda o: maddpg.greedy_actions(actor, o), critic, 0.9)
    assert y.shape == (8, N) and not y.requires_grad
    torch.testing.assert_close(y[:4], rewards[:4])
    want = rewards[4:] + 0.9 * critic(next_obs[4:], maddpg.greedy_actions(actor, next_obs[4:])).detach()
    torch.testing.assert_close(y[4:], want)


@pytest.mark.parametrize("centralised", [True, False])
def test_actor_loss_changes_only_own_action(centralised):
    """actor_loss = -mean_i Q_i(buffer actions with agent i's replaced); same as the one-pass training form."""
    torch.manual_seed(6)
    critic = maddpg.Critic(N, D, A, hidden=(16,), centralised=centralised)
    obs = torch.randn(5, N, D)
    buffer = F.one_hot(torch.randint(0, A, (5, N)), A).float()
    new = F.softmax(torch.randn(5, N, A), -1).requires_grad_(True)
    loss = maddpg.actor_loss(critic, obs, buffer, new)
    by_hand = []
    for i in range(N):
        mixed = buffer.clone()
        mixed[:, i] = new[:, i]
        by_hand.append(critic(obs, mixed)[:, i])
    torch.testing.assert_close(loss, -torch.stack(by_hand, 1).mean())
    torch.testing.assert_close(critic.own_action_values(obs, buffer, new), torch.stack(by_hand, 1))
    (grad,) = torch.autograd.grad(loss, new)
    assert grad.abs().sum() > 0


def test_soft_update_is_polyak_in_place():
    torch.manual_seed(7)
    target, source = maddpg.Critic(N, D, A, hidden=(8,)), maddpg.Critic(N, D, A, hidden=(8,))
    before_t = [p.detach().clone() for p in target.parameters()]
    before_s = [p.detach().clone() for p in source.parameters()]
    ids = [id(p) for p in target.parameters()]
    maddpg.soft_update(target, source, 0.25)
    for p, t, s in zip(target.parameters(), before_t, before_s):
        torch.testing.assert_close(p.detach(), 0.25 * s + 0.75 * t)
    assert [id(p) for p in target.parameters()] == ids
    for p, s in zip(source.parameters(), before_s):
        assert torch.equal(p.detach(), s)
    maddpg.soft_update(target, source, 1.0)
    for p, s in zip(target.parameters(), source.parameters()):
        torch.testing.assert_close(p, s)


# ----------------------------------------------------------- training and evaluation


def test_evaluation_matches_reference_numbers_on_mpe2_episodes():
    """The no-op line on the twin and on mpe2 are the same episodes."""
    refs_twin = maddpg.reference_returns("simple_spread_v3", episodes=10, seed=0)
    refs_mpe2 = maddpg.reference_returns("simple_spread_v3", episodes=10, seed=0, on="mpe2")
    assert refs_twin["noop"].mean == pytest.approx(refs_mpe2["noop"].mean, abs=1e-3)
    assert refs_twin["heuristic"].mean == pytest.approx(refs_mpe2["heuristic"].mean, abs=1e-3)
    assert refs_twin["heuristic"].mean > refs_twin["noop"].mean + 20


@pytest.mark.timeout(240)
def test_short_run_learns_above_noop():
    """A short MADDPG run on simple_spread beats the no-op policy on its evaluation episodes
    (600 gradient steps: 50 environments, 30k transitions; about 12 s of CPU)."""
    cfg = maddpg.MADDPGConfig(progress=False, eval_episodes=50, num_envs=50)
    result = maddpg.train_maddpg("simple_spread_v3", cfg, seed=0, total_steps=30_000, eval_every=15_000)
    curve = result.curve
    assert list(curve.columns[:3]) == ["step", "eval_return", "eval_sem"]
    assert set(curve.method) == {"MADDPG"}
    noop = maddpg.reference_returns("simple_spread_v3", episodes=50, seed=cfg.eval_seed)["noop"].mean
    assert result.final_return > noop + 5, (result.final_return, noop)
    ev = maddpg.evaluate_on_mpe2(result.policy, episodes=5, seed=cfg.eval_seed)
    twin = maddpg.evaluate_on_twin(result.policy, episodes=5, seed=cfg.eval_seed)
    assert ev.mean == pytest.approx(twin.mean, abs=1e-2)


def test_simple_tag_trains_predators_only():
    cfg = maddpg.MADDPGConfig(progress=False, eval_episodes=4, learning_starts=256, batch_size=64)
    result = maddpg.train_maddpg("simple_tag_v3", cfg, seed=0, total_steps=1_024, eval_every=512)
    assert result.policy.learner_names == ["adversary_0", "adversary_1", "adversary_2"]
    assert result.actor.num_agents == 3
    obs = np.zeros((2, 4, result.policy.obs_sizes[0]), dtype=np.float32)
    assert result.policy.act(obs).shape == (2, 4)
    assert np.isfinite(result.curve.eval_return).all()


def test_continuous_actions_run():
    cfg = maddpg.MADDPGConfig(progress=False, eval_episodes=4, learning_starts=256, batch_size=64,
                              continuous_actions=True, critic="independent")
    result = maddpg.train_maddpg("simple_spread_v3", cfg, seed=0, total_steps=1_024, eval_every=1_024)
    acts = result.policy.act(np.zeros((2, 3, 18), dtype=np.float32))
    assert acts.shape == (2, 3, 5) and acts.min() >= 0 and acts.max() <= 1
    assert set(result.curve.method) == {"IDDPG"}
