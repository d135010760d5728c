"""Tests of course_lib.algos.qmix (VDN, QMIX) and notebook 03_value_decomposition."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from course_lib import training
from course_lib.algos import qmix
from course_lib.envs import VecMatrixGame, VecPredatorPrey, VecTwoStepGame, qtran_game


torch.set_num_threads(1)


def hand_built_mixer() -> qmix.QMixer:
    """N=2, E=2; hypernetworks output constants: W1 = [[1, -2], [0.5, 1]], b1 = [0, -5],
    w2 = [1, -1] (before abs), V = 0.5."""
    m = qmix.QMixer(n_agents=2, state_dim=3, embed_dim=2, hypernet_layers=1)
    with torch.no_grad():
        for layer in (m.hyper_w1, m.hyper_b1, m.hyper_w2, m.hyper_v[0], m.hyper_v[2]):
            layer.weight.zero_()
        m.hyper_w1.bias.copy_(torch.tensor([1.0, -2.0, 0.5, 1.0]))
        m.hyper_b1.bias.copy_(torch.tensor([0.0, -5.0]))
        m.hyper_w2.bias.copy_(torch.tensor([1.0, -1.0]))
        m.hyper_v[0].bias.zero_()
        m.hyper_v[2].bias.copy_(torch.tensor([0.5]))
    return m


class FreeMixer(qmix.QMixer):
    """QMixer without abs(): weights of any sign."""

    def forward(self, agent_qs, states):
        B, N, E = agent_qs.shape[0], self.n_agents, self.embed_dim
        hidden = torch.nn.functional.elu(torch.bmm(agent_qs.view(B, 1, N), self.hyper_w1(states).view(B, N, E))
                                         + self.hyper_b1(states).view(B, 1, E))
        return (torch.bmm(hidden, self.hyper_w2(states).view(B, E, 1)) + self.hyper_v(states).view(B, 1, 1)).view(B, 1)


# ------------------------------------------------------------------------------ mixers


def test_vdn_mix_sums_over_agents():
    qs = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    out = qmix.vdn_mix(qs)
    assert out.shape == (2, 1)
    np.testing.assert_allclose(out.numpy(), [[6.0], [-0.5]])
    assert qmix.vdn_mix(torch.zeros(4, 5, 3)).shape == (4, 5, 1)


def test_qmix_forward_by_hand():
    m = hand_built_mixer()
    out = qmix.qmix_forward(m, torch.tensor([[1.0, 2.0]]), torch.zeros(1, 3))
    # |W1| = [[1, 2], [0.5, 1]]: q|W1| + b1 = [2, -1]; ELU -> [2, e^-1 - 1]; |w2| = [1, 1]; + V
    assert out.shape == (1, 1)
    assert float(out.detach()) == pytest.approx(2 + np.exp(-1) - 1 + 0.5, abs=1e-6)


@pytest.mark.parametrize("layers", [1, 2])
def test_qmixer_shapes_and_leading_dims(layers):
    torch.manual_seed(0)
    m = qmix.QMixer(n_agents=3, state_dim=5, embed_dim=8, hypernet_layers=layers)
    qs, states = torch.randn(4, 6, 3), torch.randn(4, 6, 5)
    out = m(qs, states)
    assert out.shape == (4, 6, 1)
    flat = qmix.qmix_forward(m, qs.reshape(-1, 3), states.reshape(-1, 5))
    np.testing.assert_allclose(out.reshape(-1, 1).detach().numpy(), flat.detach().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="hypernet_layers"):
        qmix.QMixer(2, 3, hypernet_layers=3)


def test_qmixer_weights_are_non_negative_so_the_mixer_is_monotonic():
    torch.manual_seed(1)
    for n, s in [(2, 3), (3, 7), (5, 4)]:
        m = qmix.QMixer(n, s, embed_dim=16)
        with torch.no_grad():  # push the hypernetworks' raw outputs negative
            for p in m.parameters():
                p.mul_(3.0)
        qs, states = torch.randn(256, n) * 5, torch.randn(256, s) * 2
        grads = qmix.monotonicity_check(m, qs, states)
        assert grads.shape == (256, n)
        assert (grads >= 0).all()
        with torch.no_grad():  # finite differences agree: raising any Q_i never lowers Q_tot
            for i in range(n):
                bump = torch.zeros(n)
                bump[i] = 0.5
                assert (m(qs + bump, states) >= m(qs, states) - 1e-5).all()


def test_monotonicity_check_finds_negative_gradients_and_leaves_inputs_alone():
    torch.manual_seed(2)
    free = FreeMixer(3, 4)
    qs, states = torch.randn(500, 3) * 3, torch.randn(500, 4)
    grads = qmix.monotonicity_check(free, qs, states)
    assert (grads < 0).float().mean() > 0.1  # the check can fail
    assert not qs.requires_grad and qs.grad is None
    assert all(p.grad is None for p in free.parameters())
    # exact values: VDN gives ones, a linear mixer its coefficients per sample
    np.testing.assert_allclose(qmix.monotonicity_check(lambda q, s: qmix.vdn_mix(q), qs[:5], states[:5]).numpy(),
                               np.ones((5, 3)))
    g = qmix.monotonicity_check(lambda q, s: q[:, :1] - 2 * q[:, 1:2] * s[:, :1], qs[:4], states[:4])
    np.testing.assert_allclose(g[:, 0].numpy(), 1.0)
    np.testing.assert_allclose(g[:, 1].numpy(), -2 * states[:4, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(g[:, 2].numpy(), 0.0)


def test_joint_td_target_masks_terminal_transitions():
    r = torch.tensor([[1.0], [2.0], [-1.0]])
    q_next = torch.tensor([[10.0], [10.0], [4.0]])
    done = torch.tensor([[0.0], [1.0], [0.0]])
    y = qmix.joint_td_target(r, q_next, done, 0.9)
    np.testing.assert_allclose(y.numpy(), [[10.0], [2.0], [-1 + 0.9 * 4]])
    g = torch.Generator().manual_seed(3)
    r, q_next = torch.randn(32, 1, generator=g), torch.randn(32, 1, generator=g)
    done = (torch.rand(32, 1, generator=g) < 0.5).float()
    np.testing.assert_allclose(qmix.joint_td_target(r, q_next, done, 0.7).numpy(),
                               training.td_target(r, q_next, done, 0.7).numpy())


def test_recurrent_agent_shapes():
    net = qmix.RecurrentQNetwork(obs_dim=6, n_actions=4, num_agents=3, hidden_dim=16)
    h = net.init_hidden(5)
    q, h2 = net(torch.randn(5, 3, 6), h)
    assert q.shape == (5, 3, 4) and h2.shape == (5, 3, 16)
    assert not torch.allclose(h2, h)


# ------------------------------------------------------------------------------ training


@pytest.mark.parametrize("mixer", ["none", "vdn", "qmix"])
def test_train_logs_fixed_metric_names(mixer):
    env = VecPredatorPrey(8, seed=0, grid_size=5, num_predators=2, vision_range=1, max_steps=10)
    df, learner = qmix.train(env, mixer=mixer, total_steps=30, learning_starts=5, log_every=10, batch_size=16,
                             eval_episodes=8, progress=False, return_learner=True)
    assert {"step", "episodes", "episode_return", "eval_return", "loss/td", "q_tot", "epsilon", "sps",
            "seed", "mixer"} <= set(df.columns)
    assert len(df) == 3 and df["step"].tolist() == [10, 20, 30]
    assert df["loss/td"].notna().all() and np.isfinite(df["eval_return"]).all()
    assert (np.diff(df["epsilon"]) <= 0).all() and df["epsilon"].iloc[-1] == pytest.approx(0.05)
    assert learner.kind == {"none": "iql", "vdn": "vdn", "qmix": "qmix"}[mixer]
    assert isinstance(learner.mixer, qmix.QMixer) == (mixer == "qmix")


def test_train_recurrent_option_runs():
    env = VecPredatorPrey(4, seed=1, grid_size=5, num_predators=2, vision_range=1, max_steps=8)
    df, learner = qmix.train(env, mixer="qmix", recurrent=True, total_steps=20, learning_starts=4, log_every=10,
                             batch_size=16, rnn_hidden=16, progress=False, return_learner=True)
    assert df["loss/td"].notna().all()
    assert isinstance(learner.q_net, qmix.RecurrentQNetwork)
    assert np.isfinite(qmix.greedy_return(learner, VecPredatorPrey(4, seed=2, grid_size=5, num_predators=2,
                                                                   vision_range=1, max_steps=8), episodes=4))


def test_train_rejects_unknown_mixer():
    with pytest.raises(ValueError, match="mixer"):
        qmix.train(VecTwoStepGame(2), mixer="qtran", total_steps=2, progress=False)


def test_two_step_qmix_earns_8_and_vdn_7():
    """The QMIX paper's two-step result on two seeds, with the notebook's settings."""
    for seed in (0, 1):
        tables, returns = {}, {}
        for kind in ("vdn", "qmix"):
            _, learner = qmix.train(VecTwoStepGame(32, seed=seed), mixer=kind, seed=seed, return_learner=True,
                                    progress=False, **qmix.MATRIX_GAME_SETTINGS)
            returns[kind] = qmix.greedy_return(learner, VecTwoStepGame(1, seed=0), episodes=1)
            tables[kind] = qmix.two_step_tables(learner)
        assert returns == {"vdn": 7.0, "qmix": 8.0}, (seed, returns)
        np.testing.assert_allclose(tables["qmix"]["1"], qmix.TWO_STEP_QMIX_PAPER, atol=0.25)
        np.testing.assert_allclose(tables["qmix"]["2B"], [[0, 1], [1, 8]], atol=0.5)
        assert tables["vdn"]["2B"].max() < 7.0  # the additive fit of 2B stays below 2A's 7


def test_q_tot_table_of_a_matrix_game():
    env = VecMatrixGame(16, payoffs=qtran_game(), seed=0)
    _, learner = qmix.train(env, mixer="vdn", total_steps=12, learning_starts=2, eps_start=1.0, eps_end=1.0,
                            batch_size=64, progress=False, return_learner=True)
    table = qmix.matrix_game_table(learner, env)
    assert table.shape == (3, 3)
    obs, _ = env.reset()
    qs = learner.agent_qs(obs[:1])[0].numpy()  # VDN: the table is Q_1(a_1) + Q_2(a_2)
    np.testing.assert_allclose(table, qs[0][:, None] + qs[1][None, :], atol=1e-5)
    assert qmix.greedy_actions(learner, obs[:2]).shape == (2, 2)
