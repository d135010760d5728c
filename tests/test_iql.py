"""Tests of the independent learners (course_lib.algos.iql), the shared training pieces
(course_lib.buffers, nets, training) and notebook 02_independent_learners."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import games, training
from course_lib.algos import iql
from course_lib.buffers import ReplayBuffer
from course_lib.nets import QNetwork, mlp

torch.set_num_threads(1)


def frequencies(actions: np.ndarray, n_actions: int) -> np.ndarray:
    """Per-column action frequencies of actions [draws, rows] -> [rows, n_actions]."""
    return np.stack([np.bincount(col, minlength=n_actions) / len(col) for col in actions.T])


# ------------------------------------------------------------------ exploration
def test_epsilon_greedy_shapes_and_greedy_choice():
    rng = np.random.default_rng(0)
    q = np.array([[0.0, 2.0, 1.0], [5.0, -1.0, 0.0]])
    assert iql.epsilon_greedy(q, 0.0, rng).tolist() == [1, 0]
    out = iql.epsilon_greedy(np.zeros((4, 2, 5)), 0.3, rng)
    assert out.shape == (4, 2) and out.dtype == np.int64
    assert out.min() >= 0 and out.max() < 5


@pytest.mark.parametrize("epsilon", [0.0, 0.2, 1.0])
def test_epsilon_greedy_frequencies_match_the_formula(epsilon):
    q = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 0.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    best = q >= q.max(axis=1, keepdims=True)
    want = epsilon / 4 + (1 - epsilon) * best / best.sum(axis=1, keepdims=True)
    acts = iql.epsilon_greedy(np.broadcast_to(q, (20_000, 3, 4)), epsilon, np.random.default_rng(1))
    np.testing.assert_allclose(frequencies(acts, 4), want, atol=0.015)


def test_epsilon_greedy_uses_only_the_given_rng():
    q = np.random.default_rng(0).normal(size=(30, 2, 3))
    a = iql.epsilon_greedy(q, 0.5, np.random.default_rng(5))
    b = iql.epsilon_greedy(q, 0.5, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_boltzmann_matches_softmax_and_approaches_greedy():
    q = np.array([1.0, 0.0, -1.0])
    for temp in [0.5, 2.0]:
        want = np.exp(q / temp) / np.exp(q / temp).sum()
        acts = iql.boltzmann(np.tile(q, (30_000, 1)), temp, np.random.default_rng(2))
        np.testing.assert_allclose(np.bincount(acts, minlength=3) / acts.size, want, atol=0.015)
    assert (iql.boltzmann(np.tile([11.0, -30.0, 7.0], (1000, 1)), 0.05, np.random.default_rng(0)) == 0).all()
    assert iql.boltzmann(np.zeros((3, 2, 4)), 1.0, np.random.default_rng(0)).shape == (3, 2)


# ------------------------------------------------------------------ Q updates
def test_stateless_q_update_matches_a_loop_and_leaves_input_alone():
    rng = np.random.default_rng(3)
    q = rng.normal(size=(6, 2, 4))
    act = rng.integers(0, 4, size=(6, 2))
    rew = rng.normal(size=(6, 2))
    before = q.copy()
    got = iql.stateless_q_update(q, act, rew, 0.3)
    np.testing.assert_array_equal(q, before)
    want = q.copy()
    for s in range(6):
        for i in range(2):
            want[s, i, act[s, i]] += 0.3 * (rew[s, i] - want[s, i, act[s, i]])
    np.testing.assert_allclose(got, want)


def test_hysteretic_update_is_optimistic():
    q = np.zeros((1, 2))
    up = iql.hysteretic_q_update(q, np.array([0]), np.array([10.0]), 0.5, 0.01)
    down = iql.hysteretic_q_update(q, np.array([0]), np.array([-10.0]), 0.5, 0.01)
    np.testing.assert_allclose(up, [[5.0, 0.0]])
    np.testing.assert_allclose(down, [[-0.1, 0.0]])
    rng = np.random.default_rng(0)
    q, act, rew = rng.normal(size=(5, 3)), rng.integers(0, 3, 5), rng.normal(size=5)
    np.testing.assert_allclose(iql.hysteretic_q_update(q, act, rew, 0.2, 0.2),
                               iql.stateless_q_update(q, act, rew, 0.2))


# ------------------------------------------------------------------ DQN pieces
def test_dqn_td_target_masks_terminal_transitions():
    r = torch.tensor([[1.0, 1.0], [0.5, -0.5]])
    nq = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, -1.0], [7.0, 1.0]]])
    d = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    y = iql.dqn_td_target(r, nq, d, 0.9)
    torch.testing.assert_close(y, torch.tensor([[1.0 + 1.8, 1.0], [0.5, -0.5 + 6.3]]))
    torch.testing.assert_close(training.td_target(r, nq.max(-1).values, d, 0.9), y)
    np.testing.assert_allclose(training.td_target(r.numpy(), nq.max(-1).values.numpy(), d.numpy() > 0, 0.9),
                               y.numpy(), rtol=1e-6)


def params(net):
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("update", ["iql", "training"])
def test_target_updates_hard_and_soft(update):
    torch.manual_seed(0)
    online, target = mlp(4, [8], 3), mlp(4, [8], 3)
    o0, t0 = params(online), params(target)
    if update == "iql":
        iql.update_target(target, online, 0.25)
    else:
        training.soft_update(target, online, 0.25)
    for p, o, t in zip(params(target), o0, t0):
        torch.testing.assert_close(p, 0.25 * o + 0.75 * t)
    if update == "iql":
        iql.update_target(target, online, 1.0)
    else:
        training.hard_update(target, online)
    for p, o in zip(params(target), o0):
        torch.testing.assert_close(p, o)
    for p, o in zip(params(online), o0):
        torch.testing.assert_close(p, o)
    with torch.no_grad():  # the target keeps its own copy
        for p in online.parameters():
            p.add_(1.0)
    for p, o in zip(params(target), o0):
        torch.testing.assert_close(p, o)


def test_linear_schedule():
    assert training.linear_schedule(1.0, 0.05, 100, 0) == 1.0
    assert training.linear_schedule(1.0, 0.05, 100, 50) == pytest.approx(0.525)
    assert training.linear_schedule(1.0, 0.05, 100, 500) == pytest.approx(0.05)
    assert training.LinearSchedule(0.0, 1.0, 10)(5) == pytest.approx(0.5)
    assert training.linear_schedule(1.0, 0.1, 0, 3) == 0.1


def test_replay_buffer_batches_wraparound_and_shared_rewards():
    buf = ReplayBuffer(5, num_agents=2, obs_dim=3, extra={"state": ((4,), np.float32)})
    obs = np.arange(3 * 2 * 3, dtype=np.float32).reshape(3, 2, 3)
    buf.add(obs, np.ones((3, 2), int), np.array([1.0, 2.0, 3.0]), obs + 1, np.array([True, False, False]),
            state=np.zeros((3, 4)))
    assert len(buf) == 3
    np.testing.assert_array_equal(buf.data["rewards"][:3], [[1, 1], [2, 2], [3, 3]])  # team reward broadcast
    np.testing.assert_array_equal(buf.data["dones"][:3, 0], [1.0, 0.0, 0.0])
    buf.add(obs[0], np.zeros(2, int), np.zeros(2), obs[0], np.zeros(2), state=np.ones(4))  # one transition
    buf.add(obs, np.zeros((3, 2), int), np.zeros((3, 2)), obs, np.zeros((3, 2)), state=np.ones((3, 4)))
    assert len(buf) == 5 and buf.pos == 2
    batch = buf.sample(64, np.random.default_rng(0))
    assert batch["obs"].shape == (64, 2, 3) and batch["obs"].dtype == np.float32
    assert batch["actions"].shape == (64, 2) and batch["actions"].dtype == np.int64
    assert batch["state"].shape == (64, 4)
    with pytest.raises(ValueError, match="obs"):
        buf.add(np.zeros((3, 2, 4)), np.zeros((3, 2), int), np.zeros(3), np.zeros((3, 2, 4)), np.zeros(3),
                state=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="missing"):
        buf.add(obs, np.zeros((3, 2), int), np.zeros(3), obs, np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, 2, 3).sample(1)


def test_replay_buffer_takes_a_batched_twin_step():
    from course_lib.envs import VecMultiAgentGridWorld

    env = VecMultiAgentGridWorld(8, seed=0)
    obs, _ = env.reset(seed=0)
    buf = ReplayBuffer(100, env.num_agents, env.obs_dim)
    for _ in range(30):
        nxt, rew, term, trunc, info = env.step(env.sample_actions())
        buf.add(obs, env.sample_actions(), rew, info["final_obs"], term)
        obs = nxt
    assert len(buf) == 100 and buf.data["dones"].shape == (100, 2)


def test_q_network_shapes_and_agent_ids():
    torch.manual_seed(0)
    net = QNetwork(obs_dim=6, n_actions=5, num_agents=3, hidden=(16,), agent_id=True)
    out = net(torch.zeros(7, 3, 6))
    assert out.shape == (7, 3, 5)
    assert not torch.allclose(out[:, 0], out[:, 1])  # the id makes identical observations differ
    assert QNetwork(6, 5)(torch.zeros(2, 6)).shape == (2, 5)
    with pytest.raises(ValueError, match="agent_id"):
        net(torch.zeros(7, 2, 6))


# ------------------------------------------------------------------ matrix-game learners
def test_iql_ends_at_defect_defect_in_the_prisoners_dilemma():
    for kind in ["epsilon", "boltzmann"]:
        result = iql.run_matrix_game(games.prisoners_dilemma(), learner="iql", exploration=kind,
                                     n_seeds=20, n_episodes=500, seed=1)
        share = (result.final["joint"] == "(defect, defect)").mean()
        assert share >= 0.9, (kind, result.final["joint"].value_counts())


def test_hysteretic_learners_reach_the_climbing_optimum_more_often_than_iql():
    climb = games.climbing_game()
    shares = {}
    for learner in ["iql", "hysteretic"]:
        result = iql.run_matrix_game(climb, learner=learner, exploration="boltzmann", n_seeds=30,
                                     n_episodes=1000, seed=2)
        shares[learner] = (result.final["joint"] == "(a, a)").mean()
    assert shares["iql"] < 0.5
    assert shares["hysteretic"] >= shares["iql"] + 0.3, shares


def test_run_matrix_game_logs_tidy_dataframes():
    result = iql.run_matrix_game(games.climbing_game(), learner="jal", n_seeds=4, n_episodes=100, log_every=25)
    assert list(result.curves.columns[:5]) == ["seed", "episode", "reward", "greedy_reward", "exploration"]
    assert len(result.curves) == 4 * 4
    assert set(result.actions.columns) >= {"seed", "episode", "agent", "action", "frequency"}
    sums = result.actions.groupby(["seed", "episode", "agent"])["frequency"].sum()
    np.testing.assert_allclose(sums, 1.0)
    assert len(result.final) == 4 and result.final["payoff"].isin([11, -30, 0, 7, 6, 5]).all()
    table = iql.outcome_shares(result.final, by="learner")
    np.testing.assert_allclose(table.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="learner"):
        iql.run_matrix_game(games.climbing_game(), learner="nope")


@pytest.mark.parametrize("learner", ["iql", "jal", "hysteretic"])
def test_matrix_learners_handle_asymmetric_and_three_player_games(learner):
    rng = np.random.default_rng(0)
    asym = rng.normal(size=(2, 3, 2))
    result = iql.run_matrix_game(asym, learner=learner, n_seeds=3, n_episodes=60, log_every=30)
    assert all(a0 < 2 and a1 < 3 for a0, a1 in result.final["actions"])
    assert result.actions.query("agent == 0")["action"].max() == 1
    three = games.common_payoff(rng.normal(size=(2, 2, 2)))
    result = iql.run_matrix_game(three, learner=learner, exploration="boltzmann", n_seeds=3, n_episodes=60)
    assert len(result.final["actions"][0]) == 3


# ------------------------------------------------------------------ independent DQN
def test_train_idqn_logs_and_uses_the_given_functions():
    calls = {"td": 0, "target": 0, "select": 0}

    def td(*args):
        calls["td"] += 1
        return iql.dqn_td_target(*args)

    def target(*args):
        calls["target"] += 1
        return iql.update_target(*args)

    def select(*args):
        calls["select"] += 1
        return iql.epsilon_greedy(*args)

    cfg = iql.IDQNConfig(num_envs=4, total_steps=60, learning_starts=20, batch_size=16, target_every=20,
                         log_every=20, progress=False)
    df, net = iql.train_idqn(cfg, return_agent=True, td_target_fn=td, update_target_fn=target, select_fn=select)
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    assert {"step", "episode_return", "loss/q", "epsilon", "sps", "seed"} <= set(df.columns)
    assert df["loss/q"].notna().iloc[-1] and (df["epsilon"].diff().dropna() <= 0).all()
    assert calls == {"td": 40, "target": 2, "select": 60}
    ev = iql.evaluate_idqn(net, cfg.env_kwargs, num_episodes=20, num_envs=8)
    assert list(ev.index) == ["idqn", "random", "heuristic"]
    assert (ev["episodes"] == 20).all() and ev.loc["heuristic", "team_return"] > ev.loc["random", "team_return"]


def test_train_idqn_accepts_an_env_and_polyak_updates():
    from course_lib.envs import VecMultiAgentGridWorld

    env = VecMultiAgentGridWorld(2, size=4, num_agents=3, num_targets=1, seed=3)
    df = iql.train_idqn(env, iql.IDQNConfig(total_steps=30, learning_starts=10, batch_size=8, target_tau=0.1,
                                             log_every=10, progress=False))
    assert len(df) == 3 and df["transitions"].iloc[-1] == 30 * 2 * 3


# ------------------------------------------------------------------ plots
def test_learning_curve_and_action_frequency_plots_headless():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_lib import plotting

    result = iql.run_matrix_game(games.prisoners_dilemma(), n_seeds=5, n_episodes=100, log_every=20)
    try:
        ax = plotting.plot_learning_curves(result.curves, x="episode", y="reward", title="pd")
        assert ax.get_title() == "pd" and ax.get_ylabel() == "reward" and ax.lines
        ax = plotting.plot_learning_curves(result.curves, x="episode", y="reward", hue="learner", ci=None)
        ax = plotting.plot_action_frequencies(result.actions.query("agent == 0"), ["C", "D"], title="freq")
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["C", "D"]
        ax = plotting.plot_action_frequencies(np.full((3, 10, 2), 0.5))
        assert len(ax.lines) == 2
    finally:
        plt.close("all")
