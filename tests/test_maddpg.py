"""Tests of course_lib.algos.maddpg (MADDPG, IDDPG) used by notebooks/04_maddpg."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from course_lib.algos import maddpg
from course_lib.buffers import ReplayBuffer
from course_lib.evaluation import evaluate
from course_lib.tasks import task
from spies import Spy

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
        maddpg.train("simple_spread_v3", maddpg.Config(critic="central", total_steps=10), progress=False)
    with pytest.raises(ValueError, match="unknown task"):
        maddpg.train("simple_spreed", maddpg.Config(total_steps=10), progress=False)
    with pytest.raises(ValueError, match="MPE tasks"):
        maddpg.train("gridworld", maddpg.Config(total_steps=10), progress=False)


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


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("centralised", [True, False])
def test_actor_loss_changes_only_own_action(centralised, shared):
    """actor_loss = -mean_i Q_i(buffer actions with agent i's replaced).  On a maddpg.Critic the
    reference runs in one critic pass (Critic.own_action_values); on any other callable, N of them:
    both forms give the same loss and the same gradients (actors' and new actions')."""
    torch.manual_seed(6)
    critic = maddpg.Critic(N, D, A, hidden=(16,), shared=shared, centralised=centralised)
    obs = torch.randn(5, N, D)
    buffer = F.one_hot(torch.randint(0, A, (5, N)), A).float()
    new = F.softmax(torch.randn(5, N, A), -1).requires_grad_(True)
    by_hand = []
    for i in range(N):
        mixed = buffer.clone()
        mixed[:, i] = new[:, i]
        by_hand.append(critic(obs, mixed)[:, i])
    torch.testing.assert_close(critic.own_action_values(obs, buffer, new), torch.stack(by_hand, 1))
    one_pass = maddpg.actor_loss(critic, obs, buffer, new)
    generic = maddpg.actor_loss(lambda o, a: critic(o, a), obs, buffer, new)  # not a Critic: the N-pass form
    torch.testing.assert_close(one_pass, -torch.stack(by_hand, 1).mean())
    torch.testing.assert_close(generic, one_pass)
    (g_one,) = torch.autograd.grad(one_pass, new)
    (g_generic,) = torch.autograd.grad(generic, new)
    torch.testing.assert_close(g_one, g_generic)
    assert g_one.abs().sum() > 0


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


# ----------------------------------------------------------- replay buffer
def test_replay_buffer_keeps_action_vectors_and_samples_tensors_with_a_torch_generator():
    buf = ReplayBuffer(6, N, D, action_dim=A)
    obs, acts = torch.randn(4, N, D), F.one_hot(torch.randint(0, A, (4, N)), A).float()
    buf.add(obs, acts, np.ones((4, N)), obs + 1, np.zeros((4, N), dtype=bool))
    buf.add(obs, acts, np.ones((4, N)), obs + 1, np.zeros((4, N), dtype=bool))  # wraps around
    assert buf.size == 6 and buf.data["actions"].shape == (6, N, A) and buf.data["actions"].dtype == np.float32
    gen = torch.Generator().manual_seed(0)
    batch = buf.sample(32, gen)
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in batch.values())
    assert batch["actions"].shape == (32, N, A) and torch.all(batch["actions"].sum(-1) == 1)
    idx = torch.randint(0, 6, (32,), generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(batch["obs"].numpy(), buf.data["obs"][idx])  # torch.randint's draw
    torch.testing.assert_close(batch["next_obs"], batch["obs"] + 1)
    assert isinstance(buf.sample(3, np.random.default_rng(0))["obs"], np.ndarray)


# ----------------------------------------------------------- the learner
SMALL = dict(num_envs=20, total_steps=1_200, learning_starts=400, batch_size=64, eval_every=400, eval_episodes=6,
             seed=3)  # 60 batched steps, 41 gradient steps, 3 curve rows


def small_run(task_name="simple_spread_v3", parts=None, out=None, **overrides):
    return maddpg.train(task_name, maddpg.Config(**{**SMALL, **overrides}), parts=parts, out=out, progress=False)


def curve(run) -> pd.DataFrame:
    return run.curve.drop(columns="sps")


def test_train_logs_fixed_columns_and_calls_the_students_parts():
    spies = {name: Spy(getattr(maddpg, name)) for name in ("gumbel_softmax_st", "critic_td_target", "actor_loss",
                                                         "soft_update")}
    run = small_run(parts=maddpg.Parts(**spies))
    df = run.curve
    assert list(df.columns) == ["step", "episode", "train_return", "eval_return", "loss/critic", "loss/actor",
                                "eval_sem", "q", "sps"]
    assert df["step"].tolist() == [400, 800, 1200] and df["episode"].tolist() == [0, 20, 40]
    assert df[["eval_return", "loss/critic", "loss/actor"]].notna().all().all()
    # learning from 400 transitions on: 41 gradient steps (after batched steps 20..60), each with one TD
    # target, one actor loss, one Gumbel sample and two soft updates (critics, actors); the actors explore
    # with a Gumbel sample from batched step 21 on (40)
    assert {k: s.calls for k, s in spies.items()} == {"gumbel_softmax_st": 81, "critic_td_target": 41,
                                                      "actor_loss": 41, "soft_update": 82}
    pd.testing.assert_frame_equal(curve(run), curve(small_run()))  # the spies change nothing


def test_wrong_parts_change_the_run():
    """Each planted mistake of notebook 04 changes the losses or the curve on the same seed.  (A TD target
    without the done mask would not: MPE episodes end by the time limit only, so every done is 0.)"""
    reference = curve(small_run())

    def hard_only(logits, temperature=1.0, noise=None):  # no straight-through: no gradient reaches the actors
        return maddpg.gumbel_softmax_st(logits, temperature, noise).detach()

    def no_discount(rewards, next_obs, dones, target_policy, target_critic, gamma):
        return maddpg.critic_td_target(rewards, next_obs, dones, target_policy, target_critic, 1.0)

    def every_action_new(critic, obs, actions, new_actions):  # moves every agent's action in every Q_i
        return -critic(obs, new_actions).mean()

    def hard_copy(target, source, tau):  # ignores tau
        maddpg.soft_update(target, source, 1.0)

    for wrong in ({"gumbel_softmax_st": hard_only}, {"critic_td_target": no_discount},
                  {"actor_loss": every_action_new}, {"soft_update": hard_copy}):
        run = curve(small_run(parts=wrong))
        assert not run.equals(reference), wrong
        assert not np.allclose(run["loss/critic"].iloc[1:], reference["loss/critic"].iloc[1:]) or \
            not np.allclose(run["loss/actor"].iloc[1:], reference["loss/actor"].iloc[1:]), wrong


def test_students_generic_actor_loss_drives_the_run():
    """The notebook's actor_loss (N critic passes on a tiled batch) is what runs: it is called, and its run
    follows the reference's (one critic pass).  (On the development machine the two runs' gradients, weights
    and evaluations are bit-identical; only the logged loss differs, by ~1e-7: the mean is summed in another
    order.  Other BLAS builds may round differently, hence the tolerance.)"""
    def actor_loss(critic, obs, actions, new_actions):  # the notebook's solution
        B, N, A = actions.shape
        own = torch.eye(N, dtype=torch.bool).view(1, N, N, 1)
        mixed = torch.where(own, new_actions.unsqueeze(1), actions.detach().unsqueeze(1))
        tiled_obs = obs.unsqueeze(1).expand(B, N, N, obs.shape[-1])
        q = critic(tiled_obs.reshape(B * N, N, -1), mixed.reshape(B * N, N, A)).view(B, N, N)
        return -q.diagonal(dim1=1, dim2=2).mean()

    spy = Spy(actor_loss)
    mine, reference = small_run(parts={"actor_loss": spy}), small_run()
    assert spy.calls == 41
    for column in ("loss/critic", "loss/actor", "q"):
        np.testing.assert_allclose(mine.curve[column], reference.curve[column], rtol=1e-4, err_msg=column)


def test_run_resumes_exactly_after_ctrl_c(tmp_path):
    straight = small_run()
    # call 26 of gumbel_softmax_st is the actors' exploring sample of batched step 33 (calls alternate from step 21:
    # exploring, then the actor step's); nothing of that step has happened yet, so the resumed run is the same
    with pytest.raises(KeyboardInterrupt):
        small_run(parts={"gumbel_softmax_st": Spy(maddpg.gumbel_softmax_st, stop=26)}, out=tmp_path)
    resumed = maddpg.train("simple_spread_v3", maddpg.Config(**SMALL), resume=tmp_path, progress=False)
    assert resumed.learner.step == 1_200
    pd.testing.assert_frame_equal(curve(resumed), curve(straight))
    for name in ("actor", "critic", "target_actor", "target_critic"):
        for a, b in zip(getattr(resumed.learner, name).parameters(), getattr(straight.learner, name).parameters()):
            assert torch.equal(a, b), name


def test_policy_plays_the_same_on_the_twin_and_on_mpe2():
    run = small_run()
    policy = run.policy
    assert policy.team == [0, 1, 2] and not policy.continuous
    twin = evaluate(policy, "simple_spread_v3", episodes=5, seed=7)
    on_mpe2 = evaluate(policy, "simple_spread_v3", episodes=5, seed=7, on="mpe2")
    np.testing.assert_allclose(twin.team_returns, on_mpe2.team_returns, atol=1e-3)
    sampled = policy.act(np.random.default_rng(0).normal(size=(64, 3, 18)).astype(np.float32), greedy=False)
    assert sampled.shape == (64, 3) and len(np.unique(sampled)) > 1


@pytest.mark.timeout(240)
def test_short_run_learns_above_noop():
    """A short MADDPG run on simple_spread beats the no-op policy on its evaluation episodes
    (600 gradient steps: 50 environments, 30k transitions; about 12 s of CPU)."""
    cfg = maddpg.Config(total_steps=30_000, eval_every=15_000, eval_episodes=50, num_envs=50)
    run = maddpg.train("simple_spread_v3", cfg, progress=False)
    noop = evaluate("noop", "simple_spread_v3", episodes=50, seed=cfg.eval_seed).mean
    final = run.curve["eval_return"].iloc[-1]
    assert final > noop + 5, (final, noop)
    assert final == pytest.approx(evaluate(run.policy, "simple_spread_v3", 50, seed=cfg.eval_seed).mean)


def test_simple_tag_trains_predators_against_the_prey():
    run = small_run("simple_tag_v3")
    policy = run.policy
    assert policy.team_names == ["adversary_0", "adversary_1", "adversary_2"]
    assert run.learner.actor.num_agents == 3 and run.learner.buffer.num_agents == 3
    obs = np.zeros((2, 4, 16), dtype=np.float32)
    assert policy.act(obs).shape == (2, 4)
    assert np.isfinite(run.curve.eval_return).all()
    # the reference lines: predators play the reference, the prey its heuristic, team = the predators
    for kind in ("random", "noop", "heuristic"):
        ref = maddpg.reference_policy(kind, "simple_tag_v3")
        assert ref.team == policy.team
        twin = evaluate(ref, "simple_tag_v3", episodes=4, seed=0)
        assert twin.returns.shape == (4, 4) and twin.team_returns.tolist() == twin.returns[:, :3].sum(1).tolist()
    assert maddpg.reference_policy("noop", "simple_spread_v3").team == [0, 1, 2]


def test_continuous_actions_run():
    run = small_run(task("simple_spread_v3", continuous_actions=True), critic="independent")
    acts = run.policy.act(np.zeros((2, 3, 18), dtype=np.float32))
    assert acts.shape == (2, 3, 5) and acts.min() >= 0 and acts.max() <= 1
    assert run.learner.buffer.data["actions"].shape[1:] == (3, 5)
    assert np.isfinite(run.curve["loss/critic"].iloc[-1])
