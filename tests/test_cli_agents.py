"""`course train / eval / watch` and the checkpoints behind them: a round trip writes the
run folder, a Ctrl-C'd run resumes exactly, and mistakes exit 2 leaving nothing behind."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from autograder.agents import UsageError, parse_setting
from autograder.cli import main
from course_lib import learning
from course_lib.algos import idqn

QUICK = ["--set", "learning_starts=160", "--set", "log_every=160", "--set", "batch_size=32",
         "--set", "buffer_size=2000", "--set", "target_every=320", "--no-progress"]
QUICK_CONFIG = idqn.Config(total_steps=640, learning_starts=160, log_every=160, batch_size=32, buffer_size=2000,
                           target_every=320)


def course(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real `course` command, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "autograder.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def _weights(run) -> list:
    return [v for k, v in sorted(vars(run.learner).items()) if isinstance(v, torch.nn.Module)]


# -------------------------------------------------------------------- round trip
def test_round_trip_train_eval_watch(tmp_path):
    trained = course("train", "idqn", "gridworld", "--steps", "640", *QUICK, "--out", "runs/idqn", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run_dir = tmp_path / "runs" / "idqn"
    assert {"checkpoint.pt", "config.json", "metrics.csv", "curve.png", "run.json"} <= {p.name for p in run_dir.iterdir()}
    curve = pd.read_csv(run_dir / "metrics.csv")
    assert list(curve.columns[:4]) == ["step", "episode", "train_return", "eval_return"] and curve["step"].iloc[-1] == 640
    assert json.loads((run_dir / "config.json").read_text())["config"]["learning_starts"] == 160
    assert set(json.loads((run_dir / "run.json").read_text())["references"]) == {"random", "noop", "heuristic"}

    evaluated = course("eval", str(run_dir), "--episodes", "10", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    table = json.loads(evaluated.stdout)
    assert table["step"] == 640 and table["episodes"] == 10
    assert {"idqn (this run)", "random", "noop", "heuristic"} == set(table["results"])
    assert table["results"]["heuristic"]["success"] == 1.0 and table["results"]["noop"]["success"] == 0.0

    watched = course("watch", str(run_dir), "--out", "episode.gif", "--beside", "random", cwd=tmp_path)
    assert watched.returncode == 0, watched.stderr
    from PIL import Image

    with Image.open(tmp_path / "episode.gif") as gif:
        assert gif.n_frames > 1


def test_another_learner_round_trip_on_mpe(tmp_path, capsys):
    """MADDPG (simple_spread_v3): eval on mpe2 itself, watch through mpe2's renderer."""
    out = tmp_path / "maddpg"
    small = ["--set", "num_envs=20", "--set", "buffer_size=4000", "--set", "learning_starts=1000",
             "--set", "batch_size=64", "--set", "eval_episodes=5", "--set", "eval_every=0"]
    assert main(["train", "maddpg", "simple_spread_v3", "--steps", "2000", *small, "--out", str(out),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "--episodes", "3", "--on", "mpe2", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["on"] == "mpe2" and table["results"]["maddpg (this run)"]["episodes"] == 3
    assert main(["watch", str(out), "--episodes", "1"]) == 0
    assert (out / "episode.gif").stat().st_size > 0


# ------------------------------------------------------------ resuming exactly
def test_a_ctrl_c_checkpoint_resumes_exactly(tmp_path):
    """Ctrl-C (SIGINT) arrives inside an iteration, here in the TD target of the k-th update:
    the driver lets the iteration finish, saves, and the resumed run equals the straight one."""
    straight = idqn.train("gridworld", QUICK_CONFIG, progress=False)
    answers = tmp_path / "interrupting.py"
    answers.write_text(
        "import os, signal\n"
        "from course_lib.algos.iql import dqn_td_target as _reference\n"
        "CALLS = [0]\n"
        "def dqn_td_target(*args, **kwargs):\n"
        "    CALLS[0] += 1\n"
        "    if CALLS[0] == 5:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return _reference(*args, **kwargs)\n")
    out = tmp_path / "run"
    code = main(["train", "idqn", "gridworld", "--steps", "640", *QUICK, "--out", str(out), "--parts", str(answers)])
    assert code == 130
    stopped = learning.load(out)
    assert 0 < stopped.learner.step < 640
    reference = tmp_path / "reference.py"
    reference.write_text("from course_lib.algos.iql import dqn_td_target\n")
    assert main(["train", "idqn", "gridworld", "--resume", str(out), "--parts", str(reference), "--no-progress"]) == 0
    resumed = learning.load(out)
    pd.testing.assert_frame_equal(resumed.curve.drop(columns="sps"), straight.curve.drop(columns="sps"))
    for a, b in zip(_weights(resumed), _weights(straight)):
        for x, y in zip(a.state_dict().values(), b.state_dict().values()):
            assert torch.equal(x, y)


def test_a_checkpoint_brings_back_the_thread_count(tmp_path):
    run = idqn.train("gridworld", QUICK_CONFIG, progress=False, out=tmp_path)  # IDQN trains on one thread
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        learning.load(tmp_path)
        assert torch.get_num_threads() == run.config.torch_threads == 1
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------- mistakes
class OtherIDQN(idqn.IDQN):
    name = "idqn_other"


def test_an_unknown_or_mistyped_setting_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["train", "idqn", "gridworld", "--set", "lrr=0.1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no setting 'lrr'" in err and "lr, hidden" in err.replace("gamma, ", "")
    assert main(["train", "idqn", "gridworld", "--set", "lr=fast", "--out", str(out)]) == 2
    assert "lr is float" in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_run_folder_exits_2(tmp_path, capsys):
    for command in ("eval", "watch"):
        assert main([command, str(tmp_path / "nope")]) == 2
        assert "no run folder" in capsys.readouterr().err
    assert main(["train", "idqn", "gridworld", "--resume", str(tmp_path / "nope")]) == 2
    assert "no run folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_of_another_algorithm_exits_2(tmp_path, capsys):
    learning.train(OtherIDQN, "gridworld", QUICK_CONFIG, out=tmp_path, progress=False)
    before = _snapshot(tmp_path)
    assert main(["train", "idqn", "gridworld", "--resume", str(tmp_path), "--steps", "1280"]) == 2
    assert "holds a run of idqn_other, not of idqn" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_a_truncated_checkpoint_exits_2(tmp_path, capsys):
    idqn.train("gridworld", QUICK_CONFIG, out=tmp_path, progress=False)
    path = tmp_path / learning.CHECKPOINT
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = _snapshot(tmp_path)
    for args in (["eval", str(tmp_path)], ["watch", str(tmp_path)],
                 ["train", "idqn", "gridworld", "--resume", str(tmp_path), "--steps", "1280"]):
        assert main(args) == 2, args
        assert "cannot be read" in capsys.readouterr().err
        assert _snapshot(tmp_path) == before, f"{args[0]} left something behind"


# ----------------------------------------------------------------------- settings
def test_settings_are_type_checked_against_the_config():
    Config = idqn.Config
    assert parse_setting(Config, "total_steps=1e5") == ("total_steps", 100_000)
    assert parse_setting(Config, "lr=3e-4") == ("lr", 3e-4)
    assert parse_setting(Config, "agent_id=false") == ("agent_id", False)
    assert parse_setting(Config, "hidden=128,128") == ("hidden", (128, 128))
    assert parse_setting(Config, "hidden=(32, 32, 32)") == ("hidden", (32, 32, 32))
    assert parse_setting(Config, "torch_threads=None") == ("torch_threads", None)
    for wrong in ("total_steps=1.5", "agent_id=maybe", "hidden=64,x", "lr", "=3"):
        with pytest.raises(UsageError):
            parse_setting(Config, wrong)


def test_train_list_names_the_algorithms_and_tasks(capsys):
    assert main(["train", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "idqn" in listing and "independent DQN" in listing and "simple_spread_v3" in listing
    assert main(["train", "idqn", "--list"]) == 0
    assert "Adam learning rate" in capsys.readouterr().out
