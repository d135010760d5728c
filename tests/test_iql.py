"""Tests of the independent learners (course_lib.algos.iql and idqn), the shared training pieces
(course_lib.buffers, nets, training) and notebook 02_independent_learners."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import games, training
from course_lib.algos import iql, maddpg
from course_lib.buffers import ReplayBuffer
from course_lib.nets import QNetwork, mlp
from spies import Spy

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


def params(net):
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("update", ["iql", "maddpg"])
def test_target_updates_hard_and_soft(update):
    torch.manual_seed(0)
    online, target = mlp(4, [8], 3), mlp(4, [8], 3)
    o0, t0 = params(online), params(target)
    if update == "iql":
        iql.update_target(target, online, 0.25)
    else:
        maddpg.soft_update(target, online, 0.25)
    for p, o, t in zip(params(target), o0, t0):
        torch.testing.assert_close(p, 0.25 * o + 0.75 * t)
    if update == "iql":
        iql.update_target(target, online, 1.0)
    else:
        maddpg.soft_update(target, online, 1.0)
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
def matrix_run(game="matrix_climbing", parts=None, **config):
    return iql.train(game, iql.Config(**config), parts=parts, progress=False)


def test_iql_ends_at_defect_defect_in_the_prisoners_dilemma():
    for kind in ["epsilon", "boltzmann"]:
        final = matrix_run("matrix_prisoners_dilemma", learner="iql", exploration=kind, n_seeds=20,
                           total_steps=500, seed=1).learner.final
        share = (final["joint"] == "(defect, defect)").mean()
        assert share >= 0.9, (kind, final["joint"].value_counts())


def test_hysteretic_learners_reach_the_climbing_optimum_more_often_than_iql():
    shares = {}
    for learner in ["iql", "hysteretic"]:
        final = matrix_run(learner=learner, exploration="boltzmann", n_seeds=30, total_steps=1000, seed=2).learner.final
        shares[learner] = (final["joint"] == "(a, a)").mean()
    assert shares["iql"] < 0.5
    assert shares["hysteretic"] >= shares["iql"] + 0.3, shares


def test_matrix_run_logs_tidy_dataframes():
    run = matrix_run(learner="jal", n_seeds=4, total_steps=100, log_every=25)
    curve = run.curve
    assert list(curve.columns[:8]) == ["step", "episode", "train_return", "eval_return", "seed", "greedy_reward",
                                       "exploration", "learner"]
    assert len(curve) == 4 * 4 and curve["step"].tolist() == [s for s in (25, 50, 75, 100) for _ in range(4)]
    assert (curve["episode"] == curve["step"]).all() and curve["eval_return"].isna().all()
    actions = run.learner.actions
    assert set(actions.columns) >= {"seed", "episode", "agent", "action", "frequency"}
    np.testing.assert_allclose(actions.groupby(["seed", "episode", "agent"])["frequency"].sum(), 1.0)
    final = run.learner.final
    assert len(final) == 4 and final["payoff"].isin([11, -30, 0, 7, 6, 5]).all()
    np.testing.assert_allclose(iql.outcome_shares(final, by="learner").sum(axis=1), 1.0)
    assert run.learner.q.shape == (4, 2, 3, 3)  # JAL: Q_i(a_1, a_2)
    with pytest.raises(ValueError, match="learner"):
        matrix_run(learner="nope")


def test_matrix_policy_plays_each_runs_greedy_joint_action():
    from course_lib.evaluation import evaluate

    run = matrix_run(learner="hysteretic", n_seeds=6, total_steps=300, seed=2)
    final = run.learner.final
    ev = evaluate(run.policy, "matrix_climbing", episodes=6, num_envs=6)
    np.testing.assert_allclose(ev.returns.mean(axis=1), final["payoff"])  # env b plays run b
    one = evaluate(run.learner.policy(run=3), "matrix_climbing", episodes=2, on="single")
    np.testing.assert_allclose(one.returns.mean(axis=1), final["payoff"][3])
    assert run.policy.act(np.zeros((4, 2, 7)), greedy=False).shape == (4, 2)


@pytest.mark.parametrize("learner", ["iql", "jal", "hysteretic"])
def test_matrix_learners_handle_asymmetric_and_three_player_games(learner):
    from course_lib.tasks import task

    rng = np.random.default_rng(0)
    asym = task("matrix_climbing", payoffs=rng.normal(size=(2, 3, 2)))
    run = matrix_run(asym, learner=learner, n_seeds=3, total_steps=60, log_every=30)
    assert all(a0 < 2 and a1 < 3 for a0, a1 in run.learner.final["actions"])
    assert run.learner.actions.query("agent == 0")["action"].max() == 1
    three = task("matrix_climbing", payoffs=games.common_payoff(rng.normal(size=(2, 2, 2))))
    run = matrix_run(three, learner=learner, exploration="boltzmann", n_seeds=3, total_steps=60)
    assert len(run.learner.final["actions"][0]) == 3


@pytest.mark.parametrize("learner, exploration", [("iql", "epsilon"), ("jal", "boltzmann"),
                                                  ("hysteretic", "epsilon")])
def test_matrix_learners_call_the_students_parts(learner, exploration):
    spies = {name: Spy(getattr(iql, name)) for name in
             ("epsilon_greedy", "boltzmann", "stateless_q_update", "hysteretic_q_update")}
    cfg = dict(learner=learner, exploration=exploration, n_seeds=5, total_steps=80, log_every=20, seed=3)
    run = matrix_run(parts=spies, **cfg)
    explore = "epsilon_greedy" if exploration == "epsilon" else "boltzmann"
    update = "hysteretic_q_update" if learner == "hysteretic" else "stateless_q_update"
    assert {k: s.calls for k, s in spies.items()} == {
        "epsilon_greedy": 80 * (explore == "epsilon_greedy"), "boltzmann": 80 * (explore == "boltzmann"),
        "stateless_q_update": 80 * (update == "stateless_q_update"),
        "hysteretic_q_update": 80 * (update == "hysteretic_q_update")}
    reference = matrix_run(**cfg)
    pd.testing.assert_frame_equal(run.curve.drop(columns="sps"), reference.curve.drop(columns="sps"))


def test_matrix_learners_with_a_wrong_part_learn_something_else():
    cfg = dict(learner="iql", n_seeds=20, total_steps=300, seed=1)
    reference = matrix_run(**cfg)

    def update_every_action(q, action, reward, alpha):  # forgets to pick the played action
        q = np.array(q, dtype=float)
        return q + alpha * (np.asarray(reward, dtype=float)[..., None] - q)

    def argmax_first(q_values, epsilon, rng):  # ties always to action 0
        q = np.asarray(q_values, dtype=float)
        explore = rng.random(q.shape[:-1]) < epsilon
        return np.where(explore, rng.integers(0, q.shape[-1], size=q.shape[:-1]), q.argmax(-1))

    for wrong in ({"stateless_q_update": update_every_action}, {"epsilon_greedy": argmax_first}):
        run = matrix_run(parts=wrong, **cfg)
        assert not np.allclose(run.curve["train_return"], reference.curve["train_return"]), wrong
    not_optimistic = lambda q, a, r, alpha, beta: iql.stateless_q_update(q, a, r, alpha)  # noqa: E731 (beta ignored)
    wrong = matrix_run(parts={"hysteretic_q_update": not_optimistic}, **{**cfg, "learner": "hysteretic"})
    right = matrix_run(**{**cfg, "learner": "hysteretic"})
    assert right.learner.final["payoff"].mean() > wrong.learner.final["payoff"].mean() + 2


def test_matrix_run_resumes_exactly_after_ctrl_c(tmp_path):
    cfg = iql.Config(learner="jal", n_seeds=4, total_steps=120, log_every=20, seed=5)
    straight = iql.train("matrix_climbing", cfg, progress=False)
    with pytest.raises(KeyboardInterrupt):  # the first part of a game: nothing of that game has happened yet
        iql.train("matrix_climbing", cfg, parts={"epsilon_greedy": Spy(iql.epsilon_greedy, stop=57)},
                  out=tmp_path, progress=False)
    resumed = iql.train("matrix_climbing", cfg, resume=tmp_path, progress=False)
    assert resumed.learner.step == 120
    pd.testing.assert_frame_equal(resumed.curve.drop(columns="sps"), straight.curve.drop(columns="sps"))
    np.testing.assert_array_equal(resumed.learner.q, straight.learner.q)
    np.testing.assert_array_equal(resumed.learner.counts, straight.learner.counts)
    pd.testing.assert_frame_equal(resumed.learner.actions, straight.learner.actions)


# ------------------------------------------------------------------ independent DQN
IDQN_SMALL = dict(num_envs=4, total_steps=60 * 4, learning_starts=20 * 4, batch_size=16, train_every=4,
                  target_every=20 * 4, log_every=20 * 4)


def test_idqn_logs_and_calls_the_students_parts():
    from course_lib.algos import idqn

    spies = {name: Spy(getattr(iql, name)) for name in ("epsilon_greedy", "dqn_td_target", "update_target")}
    run = idqn.train("gridworld", idqn.Config(**IDQN_SMALL), parts=idqn.Parts(**spies), progress=False)
    df = run.curve
    assert list(df.columns[:4]) == ["step", "episode", "train_return", "eval_return"]
    assert {"loss/q", "success", "q_mean", "epsilon", "sps"} <= set(df.columns)
    assert df["step"].tolist() == [80, 160, 240]
    assert df["loss/q"].notna().iloc[-1] and (df["epsilon"].diff().dropna() <= 0).all()
    # one action choice per step of the 4 envs, one TD target per gradient step (after learning_starts),
    # a hard target copy every 80 env steps once learning
    assert {k: s.calls for k, s in spies.items()} == {"epsilon_greedy": 60, "dqn_td_target": 40, "update_target": 2}


def test_idqn_with_a_td_target_that_ignores_dones_learns_something_else():
    from course_lib.algos import idqn

    def no_done_mask(rewards, next_q, dones, gamma):  # bootstraps past the last target
        return rewards + gamma * next_q.max(dim=-1).values

    cfg = idqn.Config(**{**IDQN_SMALL, "total_steps": 100 * 4})
    reference = idqn.train("gridworld", cfg, progress=False)
    wrong = idqn.train("gridworld", cfg, parts={"dqn_td_target": no_done_mask}, progress=False)
    assert reference.learner.buffer.data["dones"].any(), "the test needs terminal transitions"
    assert not np.allclose(wrong.curve["loss/q"], reference.curve["loss/q"], equal_nan=True)
    frozen = idqn.train("gridworld", cfg, parts={"update_target": lambda t, o, tau: None}, progress=False)
    assert not np.allclose(frozen.curve["loss/q"], reference.curve["loss/q"], equal_nan=True)


def test_idqn_resumes_exactly_after_ctrl_c(tmp_path):
    from course_lib.algos import idqn

    cfg = idqn.Config(**IDQN_SMALL)
    straight = idqn.train("gridworld", cfg, progress=False)
    with pytest.raises(KeyboardInterrupt):  # acting is the first part of an iteration
        idqn.train("gridworld", cfg, parts={"epsilon_greedy": Spy(iql.epsilon_greedy, stop=33)}, out=tmp_path,
                   progress=False)
    resumed = idqn.train("gridworld", cfg, resume=tmp_path, progress=False)
    pd.testing.assert_frame_equal(resumed.curve.drop(columns="sps"), straight.curve.drop(columns="sps"))
    for a, b in zip(resumed.learner.q_net.parameters(), straight.learner.q_net.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(resumed.learner.target_net.parameters(), straight.learner.target_net.parameters()):
        assert torch.equal(a, b)


def test_idqn_policy_is_evaluated_beside_the_reference_policies():
    from course_lib.algos import idqn
    from course_lib.evaluation import evaluate

    run = idqn.train("gridworld", idqn.Config(**IDQN_SMALL), progress=False)
    evals = {name: evaluate(policy, "gridworld", episodes=20, seed=7, num_envs=8)
             for name, policy in [("idqn", run.policy), ("random", "random"), ("heuristic", "heuristic")]}
    assert all(e.episodes == 20 for e in evals.values())
    assert evals["heuristic"].mean > evals["random"].mean
    assert evaluate(run.policy, "gridworld", episodes=2, on="single").episodes == 2  # the PettingZoo env
    eps = run.policy.act(np.zeros((64, 2, run.learner.env.obs_dim), dtype=np.float32), greedy=False)
    assert eps.shape == (64, 2)


def test_idqn_polyak_updates_on_a_larger_grid_world():
    from course_lib.algos import idqn
    from course_lib.tasks import task

    world = task("gridworld", size=4, num_agents=3, num_targets=1)
    run = idqn.train(world, idqn.Config(num_envs=2, total_steps=30 * 2, learning_starts=10 * 2, batch_size=8,
                                        train_every=2, target_tau=0.1, log_every=10 * 2), progress=False)
    assert len(run.curve) == 3 and run.learner.buffer.data["obs"].shape[1] == 3


# ------------------------------------------------------------------ plots
def test_learning_curve_and_action_frequency_plots_headless():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_lib import plotting

    run = matrix_run("matrix_prisoners_dilemma", n_seeds=5, total_steps=100, log_every=20)
    try:
        ax = plotting.plot_learning_curves(run.curve, x="episode", y="train_return", title="pd")
        assert ax.get_title() == "pd" and ax.get_ylabel() == "train_return" and ax.lines
        ax = plotting.plot_learning_curves(run.curve, x="episode", y="train_return", hue="learner", ci=None)
        ax = plotting.plot_action_frequencies(run.learner.actions.query("agent == 0"), ["C", "D"], title="freq")
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["C", "D"]
        ax = plotting.plot_action_frequencies(np.full((3, 10, 2), 0.5))
        assert len(ax.lines) == 2
    finally:
        plt.close("all")


def test_idqn_step_knobs_must_be_multiples_of_num_envs():
    from course_lib.algos import idqn

    with pytest.raises(ValueError, match="train_every=10 must be a multiple of num_envs=16"):
        idqn.train("gridworld", idqn.Config(train_every=10), progress=False)


def test_replay_buffer_pickles_only_its_stored_rows():
    import pickle

    from course_lib.buffers import ReplayBuffer

    buf = ReplayBuffer(100_000, num_agents=2, obs_dim=3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        buf.add(rng.random((4, 2, 3)), rng.integers(0, 5, (4, 2)), rng.random((4, 2)), rng.random((4, 2, 3)),
                np.zeros((4, 2)))
    blob = pickle.dumps(buf)
    assert len(blob) < 10_000, f"a buffer of 20 transitions pickled to {len(blob)} bytes (the whole capacity?)"
    back = pickle.loads(blob)
    assert (back.capacity, back.size, back.pos) == (buf.capacity, buf.size, buf.pos)
    for name in buf.data:
        np.testing.assert_array_equal(back.data[name], buf.data[name])
    a, b = buf.sample(8, np.random.default_rng(1)), back.sample(8, np.random.default_rng(1))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
