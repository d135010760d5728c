"""Value-based MARL on matrix games: the QMIX paper's two-step game, the QTRAN game and
the climbing game, beside the published numbers.

    .venv/bin/python bench/value_based.py            # (run by `make bench`)
    .venv/bin/python bench/value_based.py --seeds 3  # a quicker look

Writes bench/results/value_based.json and the markdown tables
bench/README_value_based.md (pasted into README).

* Two-step game (Rashid et al. 2018): IQL, VDN and QMIX from
  :func:`course_lib.algos.qmix.train` with :data:`MATRIX_GAME` (uniform exploration,
  epsilon = 1, gamma = 0.99, as in the paper), ``--seeds`` seeds each; the return of the
  greedy decentralised policy (:func:`course_lib.evaluation.evaluate`) and the learned
  ``Q_tot`` tables.
* QTRAN game (Son et al. 2019): the same learners; the greedy joint action and its payoff.
* Climbing game (Claus & Boutilier 1998): the stateless learners of
  :func:`course_lib.algos.iql.train` (independent, hysteretic and joint-action learners,
  epsilon-greedy, ``--matrix-seeds`` runs each) and the deep learners above.

One process, one torch thread.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dataclasses  # noqa: E402

import torch  # noqa: E402

from course_lib import papers  # noqa: E402
from course_lib.algos import iql, qmix  # noqa: E402
from course_lib.envs import game_payoffs  # noqa: E402
from course_lib.evaluation import evaluate  # noqa: E402
from course_lib.utils import machine_info  # noqa: E402

LEARNERS = {"IQL": "none", "VDN": "vdn", "QMIX": "qmix"}
NUM_ENVS = 32
# The deep learners on the matrix games.  As in the QMIX paper's two-step experiment,
# actions are uniformly random throughout training (epsilon = 1) and gamma = 0.99; the
# network sizes and the optimiser settings are ours: large batches of iid transitions let
# ~200 gradient steps reach the fixed point in about a second on one core.  60 steps of
# 32 games, learning after the first 10, 4 gradient steps after each step of the 32 games.
MATRIX_GAME = qmix.Config(
    num_envs=NUM_ENVS, total_steps=60 * NUM_ENVS, learning_starts=10 * NUM_ENVS, train_every=NUM_ENVS,
    gradient_steps=4, batch_size=512, buffer_size=5_000, lr=1e-2, target_every=30, hidden=(32,), embed_dim=32,
    hypernet_layers=2, eps_start=1.0, eps_end=1.0, gamma=0.99, log_every=10 * NUM_ENVS,
)
# The stateless learners on the climbing game (iql.Config's defaults: 2,000 games per run).
STATELESS = iql.Config(exploration="epsilon", seed=0)
# Published facts (see /work/shared/SPECS.md, "Matrix games").
PAPER = {
    "two_step": {"QMIX": 8.0, "VDN": 7.0, "qmix_state1": papers.QMIX_TWO_STEP_STATE1.tolist(),
                 "source": "Rashid et al. 2018 (QMIX), two-step game"},
    "qtran": {"QMIX": "misses 8", "VDN": "misses 8", "source": "Son et al. 2019 (QTRAN), matrix game"},
    "climbing": {"independent": "settle on 7 (or 5)", "source": "Claus & Boutilier 1998"},
}


def _table(a: np.ndarray) -> list:
    return np.round(np.asarray(a, dtype=float), 3).tolist()


def two_step(seeds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, mixer in LEARNERS.items():
        returns, tables = [], []
        for seed in range(seeds):
            run = qmix.train("two_step", dataclasses.replace(MATRIX_GAME, mixer=mixer, seed=seed), progress=False)
            returns.append(evaluate(run.policy, "two_step", episodes=1).summary()["return_per_agent"])
            tables.append(qmix.two_step_tables(run))
        out[name] = {
            "returns": returns,
            "mean_return": float(np.mean(returns)),
            "seeds_8": int(sum(r == 8 for r in returns)),
            "seeds_7": int(sum(r == 7 for r in returns)),
            "mean_tables": {s: _table(np.mean([t[s] for t in tables], axis=0)) for s in ("1", "2A", "2B")},
        }
        print(f"two-step {name:5s} returns {returns}", flush=True)
    return out


def matrix_deep(game: str, seeds: int) -> dict[str, Any]:
    payoffs = game_payoffs(game)
    team = payoffs.mean(axis=-1)
    out: dict[str, Any] = {"optimum": float(team.max())}
    for name, mixer in LEARNERS.items():
        joints, pays, tables = [], [], []
        for seed in range(seeds):
            run = qmix.train(f"matrix_{game}", dataclasses.replace(MATRIX_GAME, mixer=mixer, seed=seed),
                             progress=False)
            first_obs, _ = run.task.batched(1).reset(seed=seed)
            joint = tuple(int(a) for a in run.policy.act(first_obs)[0])
            joints.append(list(joint))
            pays.append(float(team[joint]))
            tables.append(qmix.matrix_game_table(run))
        out[name] = {
            "greedy_joint_actions": joints,
            "payoffs": pays,
            "mean_payoff": float(np.mean(pays)),
            "seeds_optimal": int(sum(p == team.max() for p in pays)),
            "mean_q_tot": _table(np.mean(tables, axis=0)) if name != "IQL" else None,
        }
        print(f"{game} {name:5s} payoffs {pays}", flush=True)
    return out


def climbing_stateless(seeds: int) -> dict[str, Any]:
    out = {}
    for learner in ("iql", "hysteretic", "jal"):
        run = iql.train("matrix_climbing", dataclasses.replace(STATELESS, learner=learner, n_seeds=seeds),
                        progress=False)
        final = run.learner.final
        shares = final["joint"].value_counts(normalize=True).round(3).to_dict()
        out[learner] = {"mean_payoff": float(final["payoff"].mean()),
                        "share_11": float((final["payoff"] == 11).mean()),
                        "share_7": float((final["payoff"] == 7).mean()),
                        "share_5": float((final["payoff"] == 5).mean()),
                        "joint_action_shares": shares,
                        "settings": dataclasses.asdict(run.config)}
        print(f"climbing stateless {learner:10s} mean payoff {out[learner]['mean_payoff']:.2f} {shares}", flush=True)
    return out


def markdown(result: dict[str, Any]) -> str:
    ts, qt, cl = result["two_step"], result["qtran"], result["climbing"]
    n = result["settings"]["seeds"]
    lines = [
        f"Value-based learners on matrix games ({n} seeds each; uniform exploration, gamma 0.99; "
        "`bench/value_based.py`, results in `bench/results/value_based.json`).",
        "",
        "**Two-step game** (Rashid et al. 2018): return of the greedy decentralised policy.",
        "",
        "| learner | paper | ours: mean return | seeds with 8 | seeds with 7 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in LEARNERS:
        paper = {"QMIX": "8", "VDN": "7"}.get(name, "–")
        r = ts[name]
        lines.append(f"| {name} | {paper} | {r['mean_return']:.2f} | {r['seeds_8']}/{n} | {r['seeds_7']}/{n} |")
    paper1 = papers.QMIX_TWO_STEP_STATE1
    q1, v1 = np.asarray(ts["QMIX"]["mean_tables"]["1"]), np.asarray(ts["VDN"]["mean_tables"]["1"])
    lines += [
        "",
        "Learned `Q_tot` in the first state (mean over seeds; rows: agent 1 picks 2A / 2B):",
        "",
        "| joint action | paper, QMIX | ours, QMIX | ours, VDN |",
        "|---|---:|---:|---:|",
    ]
    for (i, j), label in zip([(0, 0), (0, 1), (1, 0), (1, 1)], ["(A, A)", "(A, B)", "(B, A)", "(B, B)"]):
        lines.append(f"| {label} | {paper1[i, j]:.2f} | {q1[i, j]:.2f} | {v1[i, j]:.2f} |")
    lines += [
        "",
        "**QTRAN game** (Son et al. 2019; optimum 8; the paper: VDN and QMIX miss it) and "
        "**climbing game** (Claus & Boutilier 1998; optimum 11; independent learners tend to settle on 7 or 5):",
        "payoff of the greedy joint action.",
        "",
        "| learner | QTRAN: mean payoff | QTRAN: seeds at 8 | climbing: mean payoff | climbing: seeds at 11 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in LEARNERS:
        a, b = qt[name], cl["deep"][name]
        lines.append(f"| {name} (deep, epsilon = 1) | {a['mean_payoff']:.2f} | {a['seeds_optimal']}/{n} | "
                     f"{b['mean_payoff']:.2f} | {b['seeds_optimal']}/{n} |")
    m = result["settings"]["matrix_seeds"]
    for name, r in cl["stateless"].items():
        label = {"iql": "independent Q-learners", "hysteretic": "hysteretic Q-learners",
                 "jal": "joint-action learners"}[name]
        lines.append(f"| {label} (stateless, epsilon-greedy) | – | – | {r['mean_payoff']:.2f} | "
                     f"{round(r['share_11'] * m)}/{m} |")
    lines += ["", f"Measured in {result['elapsed_s']:.0f} s on {result['machine']['processor']} "
              f"({result['machine']['cpus']} cores, one torch thread)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="seeds per deep learner and game")
    ap.add_argument("--matrix-seeds", type=int, default=100, help="runs per stateless climbing-game learner")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "value_based.json"))
    ap.add_argument("--table", default=str(ROOT / "bench" / "README_value_based.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    result: dict[str, Any] = {"benchmark": "value_based"}
    result["two_step"] = two_step(args.seeds)
    result["qtran"] = matrix_deep("qtran", args.seeds)
    result["climbing"] = {"deep": matrix_deep("climbing", args.seeds),
                          "stateless": climbing_stateless(args.matrix_seeds)}
    ts = result["two_step"]
    result.update({
        "qmix_two_step_return": ts["QMIX"]["mean_return"],
        "vdn_two_step_return": ts["VDN"]["mean_return"],
        "iql_two_step_return": ts["IQL"]["mean_return"],
        "seeds_qmix_8": ts["QMIX"]["seeds_8"],
        "seeds_vdn_7": ts["VDN"]["seeds_7"],
        "n_seeds": args.seeds,
        "qtran_seeds_optimal": {k: result["qtran"][k]["seeds_optimal"] for k in LEARNERS},
        "paper": PAPER,
        "settings": {"seeds": args.seeds, "matrix_seeds": args.matrix_seeds, "num_envs": NUM_ENVS,
                     "deep": {k: list(v) if isinstance(v, tuple) else v
                              for k, v in dataclasses.asdict(MATRIX_GAME).items() if k not in ("seed", "mixer")}},
        "machine": machine_info(),
        "elapsed_s": round(time.perf_counter() - start, 1),
    })
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.table).write_text(markdown(result))
    print(markdown(result))
    print(f"wrote {args.out} and {args.table} in {result['elapsed_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()
