"""Tests of course_lib.algos.qmix (VDN, QMIX) and notebook 03_value_decomposition."""
from __future__ import annotations


import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from course_lib import papers
from course_lib.algos import qmix
from course_lib.evaluation import evaluate
from course_lib.tasks import task
from spies import Spy


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
                               (r + 0.7 * (1 - done) * q_next).numpy())


def test_recurrent_agent_shapes():
    net = qmix.RecurrentQNetwork(obs_dim=6, n_actions=4, num_agents=3, hidden_dim=16)
    h = net.init_hidden(5)
    q, h2 = net(torch.randn(5, 3, 6), h)
    assert q.shape == (5, 3, 4) and h2.shape == (5, 3, 16)
    assert not torch.allclose(h2, h)


# ------------------------------------------------------------------------------ training
PO = task("predator_prey", grid_size=5, num_predators=2, vision_range=1, max_steps=10)
SMALL = dict(num_envs=8, total_steps=30 * 8, learning_starts=5 * 8, train_every=8, log_every=10 * 8, batch_size=16)
# the notebook's matrix-game settings: uniform exploration (epsilon = 1) and gamma = 0.99, as in the QMIX paper
MATRIX = qmix.Config(num_envs=32, total_steps=60 * 32, learning_starts=10 * 32, train_every=32, gradient_steps=4,
                     batch_size=512, buffer_size=5_000, lr=1e-2, target_every=30, hidden=(32,), embed_dim=32,
                     hypernet_layers=2, eps_start=1.0, eps_end=1.0, gamma=0.99, log_every=10 * 32)


def train(task_=PO, parts=None, **config):
    return qmix.train(task_, qmix.Config(**{**SMALL, **config}), parts=parts, progress=False)


@pytest.mark.parametrize("mixer", ["none", "vdn", "qmix"])
def test_train_logs_fixed_metric_names(mixer):
    run = train(mixer=mixer, eval_episodes=8)
    df = run.curve
    assert list(df.columns[:4]) == ["step", "episode", "train_return", "eval_return"]
    assert {"loss/td", "q_tot", "epsilon", "mixer", "sps"} <= set(df.columns)
    assert df["step"].tolist() == [80, 160, 240]
    assert df["loss/td"].notna().all() and np.isfinite(df["eval_return"]).all()
    assert (np.diff(df["epsilon"]) <= 0).all() and df["epsilon"].iloc[-1] == pytest.approx(0.05)
    assert isinstance(run.learner.mixer, qmix.QMixer) == (mixer == "qmix")


def test_train_recurrent_option_runs_and_its_policy_keeps_memory():
    run = train(mixer="qmix", recurrent=True, rnn_hidden=16, eval_episodes=4)
    assert run.curve["loss/td"].notna().all()
    assert isinstance(run.learner.q_net, qmix.RecurrentQNetwork)
    ev = evaluate(run.policy, PO, episodes=4, seed=2)
    assert np.isfinite(ev.mean)
    assert evaluate(run.policy, PO, episodes=1, on="single").episodes == 1  # the PettingZoo env


def test_train_rejects_unknown_mixer():
    with pytest.raises(ValueError, match="mixer"):
        qmix.train("two_step", qmix.Config(mixer="qtran", total_steps=2), progress=False)


def test_two_step_qmix_earns_8_and_vdn_7():
    """The QMIX paper's two-step result on two seeds, with the notebook's settings."""
    for seed in (0, 1):
        tables, returns = {}, {}
        for mixer in ("vdn", "qmix"):
            run = qmix.train("two_step", dataclasses.replace(MATRIX, mixer=mixer, seed=seed), progress=False)
            returns[mixer] = evaluate(run.policy, "two_step", episodes=1).summary()["return_per_agent"]
            tables[mixer] = qmix.two_step_tables(run)
        assert returns == {"vdn": 7.0, "qmix": 8.0}, (seed, returns)
        np.testing.assert_allclose(tables["qmix"]["1"], papers.QMIX_TWO_STEP_STATE1, atol=0.25)
        np.testing.assert_allclose(tables["qmix"]["2B"], [[0, 1], [1, 8]], atol=0.5)
        assert tables["vdn"]["2B"].max() < 7.0  # the additive fit of 2B stays below 2A's 7


def test_q_tot_table_of_a_matrix_game():
    run = qmix.train("matrix_qtran", qmix.Config(mixer="vdn", num_envs=16, total_steps=12 * 16, learning_starts=2 * 16,
                                                 train_every=16, eps_start=1.0, eps_end=1.0, batch_size=64),
                     progress=False)
    table = qmix.matrix_game_table(run)
    assert table.shape == (3, 3)
    obs, _ = task("matrix_qtran").batched(2).reset()
    qs = run.learner.agent_qs(obs[:1])[0].numpy()  # VDN: the table is Q_1(a_1) + Q_2(a_2)
    np.testing.assert_allclose(table, qs[0][:, None] + qs[1][None, :], atol=1e-5)
    assert run.policy.act(obs).shape == (2, 2)


@pytest.mark.parametrize("mixer", ["none", "vdn", "qmix"])
def test_train_calls_the_students_parts(mixer):
    spies = {name: Spy(getattr(qmix, name)) for name in ("vdn_mix", "qmix_forward", "joint_td_target")}
    run = train(mixer=mixer, parts=qmix.Parts(**spies), gradient_steps=2)
    grad_steps = 2 * (30 - 5)  # two per step of the 8 envs after learning_starts
    calls = {k: s.calls for k, s in spies.items()}
    assert calls["joint_td_target"] == grad_steps
    assert calls["qmix_forward"] == 2 * grad_steps * (mixer == "qmix")  # Q_tot and the target's Q_tot
    assert calls["vdn_mix"] == 2 * grad_steps * (mixer == "vdn")
    pd.testing.assert_frame_equal(run.curve.drop(columns="sps"),
                                  train(mixer=mixer, gradient_steps=2).curve.drop(columns="sps"))
    if mixer != "none":  # the tables of the inspection helpers come from the mixing part too
        before = spies["vdn_mix"].calls + spies["qmix_forward"].calls
        qmix.q_tot_table(run, np.zeros((2, run.learner.env.obs_dim)), np.zeros(run.learner.state.shape[1]))
        assert spies["vdn_mix"].calls + spies["qmix_forward"].calls == before + 1


def no_done_mask(rewards, target_q_tot_next, dones, gamma):
    return rewards + gamma * target_q_tot_next


def mean_mix(agent_qs):
    return agent_qs.mean(dim=-1, keepdim=True)


def qmix_forward_without_abs(mixer, agent_qs, states):
    B, N, E = agent_qs.shape[0], mixer.n_agents, mixer.embed_dim
    hidden = torch.nn.functional.elu(torch.bmm(agent_qs.view(B, 1, N), mixer.hyper_w1(states).view(B, N, E))
                                     + mixer.hyper_b1(states).view(B, 1, E))
    return (torch.bmm(hidden, mixer.hyper_w2(states).view(B, E, 1)) + mixer.hyper_v(states).view(B, 1, 1)).view(B, 1)


@pytest.mark.parametrize("mixer, wrong", [("qmix", {"joint_td_target": no_done_mask}),
                                          ("none", {"joint_td_target": no_done_mask}),
                                          ("vdn", {"vdn_mix": mean_mix}),
                                          ("qmix", {"qmix_forward": qmix_forward_without_abs})])
def test_a_wrong_part_changes_the_run(mixer, wrong):
    reference = train(mixer=mixer)
    run = train(mixer=mixer, parts=wrong)
    assert reference.learner.buffer.data["dones"].any(), "the test needs ended episodes"
    assert not np.allclose(run.curve["loss/td"], reference.curve["loss/td"])


def test_monotonicity_check_of_trained_mixers_finds_a_forward_pass_without_abs():
    """Notebook 03 runs monotonicity_check on the trained mixers: the learner's own mix (the part)."""
    torch.manual_seed(0)
    qs, states = torch.randn(256, 2) * 5, torch.eye(3)[torch.randint(0, 3, (256,))]
    mins = {}
    for name, parts in [("reference", None), ("no abs", {"qmix_forward": qmix_forward_without_abs})]:
        run = qmix.train("two_step", dataclasses.replace(MATRIX, mixer="qmix", total_steps=20 * 32), parts=parts,
                         progress=False)
        mins[name] = float(qmix.monotonicity_check(run.learner.mix, qs, states).min())
    assert mins["reference"] >= 0 > mins["no abs"], mins


@pytest.mark.parametrize("recurrent", [False, True])
def test_train_resumes_exactly_after_ctrl_c(tmp_path, recurrent):
    cfg = qmix.Config(**{**SMALL, "mixer": "qmix", "recurrent": recurrent, "rnn_hidden": 16, "eval_episodes": 4,
                         "target_every": 7})
    straight = qmix.train(PO, cfg, progress=False)
    with pytest.raises(KeyboardInterrupt):
        qmix.train(PO, cfg, parts={"joint_td_target": Spy(qmix.joint_td_target, stop=11, ctrl_c=True)}, out=tmp_path,
                   progress=False)
    resumed = qmix.train(PO, cfg, resume=tmp_path, progress=False)
    assert resumed.learner.step == cfg.total_steps
    pd.testing.assert_frame_equal(resumed.curve.drop(columns="sps"), straight.curve.drop(columns="sps"))
    for net in ("q_net", "mixer", "target_q", "target_mixer"):
        for a, b in zip(getattr(resumed.learner, net).parameters(), getattr(straight.learner, net).parameters()):
            assert torch.equal(a, b), net


def test_step_knobs_must_be_multiples_of_num_envs():
    with pytest.raises(ValueError, match="log_every=100 must be a multiple of num_envs=32"):
        qmix.train("two_step", qmix.Config(log_every=100), progress=False)


def test_evaluation_counts_every_envs_first_episode_not_the_quickest():
    """evaluate() on a course task with episodes = num_envs plays each environment's first
    episode: the episodes that end first (predator-prey's quick catches) must not crowd out
    the others.  The learner's eval_return is that evaluation of its greedy policy."""
    from course_lib.envs.policies import make_policy

    pp = task("predator_prey", grid_size=7, max_steps=12)
    env = pp.batched(16, seed=3)
    policy = make_policy("heuristic", env, seed=3)
    obs, _ = env.reset(seed=3)
    first, length, ended = np.full(16, np.nan), np.zeros(16), np.zeros(16, dtype=bool)
    for t in range(1, 13):
        obs, _, _, _, info = env.step(policy(obs))
        new = info["done"] & ~ended
        first[new], length[new] = info["episode_return_mean"][new], t
        ended |= info["done"]
    assert ended.all() and np.ptp(length) >= 5, "the test needs quick and slow catches (-0.1 per step)"
    ev = evaluate("heuristic", pp, episodes=16, seed=3, num_envs=16)
    assert ev.summary()["return_per_agent"] == pytest.approx(first.mean())
    run = train(mixer="vdn", eval_episodes=8)
    again = evaluate(run.policy, PO, episodes=8, seed=run.config.seed + 10_000, num_envs=8)
    assert run.curve["eval_return"].iloc[-1] == again.summary()["return_per_agent"]
