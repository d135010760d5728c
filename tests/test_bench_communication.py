"""bench/communication.py without training: the order of its runs, its targets and, from its results
file alone, its tables (bench/communication_report.py)."""
from __future__ import annotations

import json

import pytest

from conftest import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("communication")


@pytest.fixture(scope="module")
def report():
    return load_bench("communication_report")


def results_file(bench, runs: dict, speed: dict | None = None) -> dict:
    """The results file the bench writes for ``runs``, as the tables read it (nothing else)."""
    return json.loads(json.dumps(bench.build(runs, {}, "x", speed)))


def test_cheap_runs_first_then_seed_0_of_every_long_row_then_the_other_seeds(bench):
    keys = list(bench._jobs(["tj_hard", "tj_medium", "levers"], 3))
    medium, hard, levers = (list(bench.CONFIGS[s]) for s in ("tj_medium", "tj_hard", "levers"))
    assert keys[:3 * len(levers)] == [f"levers/{label}/{seed}" for seed in range(3) for label in levers]
    rest = keys[3 * len(levers):]
    seed_0 = [f"tj_medium/{label}/0" for label in medium] + [f"tj_hard/{label}/0" for label in hard]
    assert rest[:len(seed_0)] == seed_0  # the sections' own order, whatever order they were asked in
    assert rest[len(seed_0):] == ([f"tj_medium/{label}/{seed}" for seed in (1, 2) for label in medium]
                                  + [f"tj_hard/{label}/{seed}" for seed in (1, 2) for label in hard])


def test_targets_are_met_missed_or_not_yet_measured(bench):
    references = {"tj_easy": {"heuristic": {"cars_completed": 7.0}}}
    head = {"tj_medium_failure_commnet": 4.0, "tj_medium_failure_nocomm": 12.0,
            "tj_medium_failure_fully_connected": 3.0, "tj_medium_failure_discrete": 10.0,
            "tj_easy_failure_commnet": 0.5, "tj_easy_cars_commnet": 6.5}
    t = bench.targets(head, references)
    assert t["medium: CommNet failure <= 5%"] is True
    assert t["medium: CommNet below NoComm by at least 3x"] is True
    assert t["medium: CommNet below fully connected and discrete"] is False  # fully connected is lower
    assert t["easy: CommNet failure <= 1% and cars through within 5% of the heuristic"] is False  # 7% fewer cars
    assert t["hard: TarMAC success >= 90%"] is None and t["hard: TarMAC success above NoComm"] is None
    seeds = bench.target_seeds({**head, "tj_medium_seeds_commnet": 3, "tj_medium_seeds_nocomm": 1}, references)
    assert seeds["medium: CommNet below NoComm by at least 3x"] == 1 and seeds["medium: CommNet failure <= 5%"] == 3
    assert bench.target_verdict(True, 3) == "met" and bench.target_verdict(None, 0) == "not yet measured"
    t = bench.targets({**head, "tj_medium_failure_nocomm": 11.9, "tj_easy_cars_commnet": 6.7}, references)
    assert t["medium: CommNet below NoComm by at least 3x"] is False
    assert t["easy: CommNet failure <= 1% and cars through within 5% of the heuristic"] is True


def _run(failure: float, cars: float) -> dict:
    """A finished run: its final evaluation, and a training curve of 4 rows falling to ``failure``."""
    final = {"failure": failure, "success": 1 - failure, "cars_completed": cars}
    curve = {"failure": [0.5, 0.4, 0.3, failure], "arrival_prob": [0.1, 0.2, 0.2, 0.2]}
    return {"final": {"greedy": final, "sampled": final}, "curve": curve, "cpu_s": 3600.0, "wall_s": 1800.0}


def test_the_tables_show_each_row_measured_or_not_yet_measured(bench, report, monkeypatch):
    monkeypatch.setattr(bench, "git_commit", lambda: "abc123")
    runs = {"tj_medium/CommNet/0": _run(0.10, 17.0), "tj_medium/CommNet/1": _run(0.20, 16.0),
            "tj_medium/Discrete/0": _run(0.03, 17.2)}
    result = results_file(bench, runs)
    assert result["tj_medium_failure_commnet"] == pytest.approx(15.0)
    assert result["tj_medium_seeds_commnet"] == 2
    assert result["tj_medium_failure_nocomm"] is None
    assert result["targets"]["medium: CommNet below NoComm by at least 3x"] is None
    assert result["cpu_hours"] == {"tj_medium": 3.0}
    assert result["targets"]["medium: CommNet below fully connected and discrete"] is None  # no fully connected
    text = report.markdown(result)
    medium = text.split("**Traffic junction, medium**")[1].split("\n**")[0]  # the medium table only
    row = {line.split(" | ")[0].lstrip("| "): line for line in medium.splitlines() if line.startswith("| ")}
    assert "vision 1 with the routes of the cars in view" in medium  # the CommNet paper's observation
    assert "| 2 | 2.2 | – | 15.0 ± 7.1 | 15.0 ± 7.1 | 16.50 |" in row["CommNet"]
    assert "| 1 | 15.8 | – | 3.0 ± 0.0 | 3.0 ± 0.0 | 17.20 |" in row["discrete communication"]
    assert "| 0 | – | – | not yet measured |" in row["NoComm (independent)"]
    assert result["target_verdicts"]["medium: CommNet failure <= 5%"] == "missed (2 of 3 seeds so far)"
    assert "medium: CommNet failure <= 5%: missed (2 of 3 seeds so far)" in text
    assert result["target_seeds"]["medium: CommNet below fully connected and discrete"] == 0
    curves = text.split("**Medium: learning curves**")[1].split("\n**")[0]
    assert "| CommNet | 2 | 50.0 | 50.0 | 40.0 | 30.0 | 15.0 |" in curves  # row k of 4 is at k/4 of the run
    assert "| discrete communication | 1 | 50.0 | 50.0 | 40.0 | 30.0 | 3.0 |" in curves
    assert "NoComm" not in curves and "**Hard: learning curves**" not in text  # nothing measured, no row


def test_a_save_keeps_the_runs_another_bench_process_wrote(bench):
    def saved_run(section, label, seed):
        return {**_run(0.1, 17.0), "settings": bench.settings_of(section, label, seed)}

    mine = {"tj_hard/TarMAC/0": saved_run("tj_hard", "TarMAC", 0)}
    references = {"tj_hard": {"heuristic": {"failure": 0.0}}}
    on_disk = {"settings": {"version": bench.BENCH_VERSION},
               "references": {"tj_hard": {"heuristic": {"failure": 0.5}}, "tj_slots": {"heuristic": {"failure": 0.0}}},
               "runs": {"tj_slots/FullyConnected, the CommNet code's/0":
                        saved_run("tj_slots", "FullyConnected, the CommNet code's", 0),
                        "tj_hard/TarMAC/0": {**saved_run("tj_hard", "TarMAC", 0), "cpu_s": 1.0},
                        "tj_routes/CommNet/0": {**saved_run("tj_routes", "CommNet", 0), "settings": {"version": 1}},
                        "tj_routes/NoComm/0": saved_run("tj_routes", "NoComm", 0)}}
    bench.keep_saved(mine, references, on_disk, redo=["tj_routes/NoComm"])
    assert sorted(mine) == ["tj_hard/TarMAC/0", "tj_slots/FullyConnected, the CommNet code's/0"]
    assert mine["tj_hard/TarMAC/0"]["cpu_s"] == 3600.0, "what this process holds stays"
    assert references == {"tj_hard": {"heuristic": {"failure": 0.0}}, "tj_slots": {"heuristic": {"failure": 0.0}}}


def test_the_fully_connected_reading_follows_the_measured_rows(bench, report, monkeypatch):
    monkeypatch.setattr(bench, "git_commit", lambda: "abc123")
    runs = {"tj_routes/FullyConnected/0": _run(0.20, 16.0), "tj_routes/CommNet/0": _run(0.30, 16.0)}
    assert report.slots_reading(results_file(bench, runs)) == [], "nothing to say before the code's row is measured"
    code = "tj_slots/FullyConnected, the CommNet code's/0"
    weaker = report.slots_reading(results_file(bench, {**runs, code: _run(0.40, 15.0)}))[0]
    assert "ours 20.0% (1 seed), the CommNet code's set-up 40.0% (1 seed)" in weaker
    assert "ours is the stronger" in weaker
    same = report.slots_reading(results_file(bench, {**runs, code: _run(0.10, 15.0)}))[0]
    assert "does not explain the gap" in same
    assert "The fully-connected baseline" in report.markdown(results_file(bench, {**runs, code: _run(0.4, 15.0)}))


def test_the_lstm_speed_reading_shows_both_ways_and_whether_the_losses_agree(bench, report):
    def way(cpu, losses):
        return {"cpu_s_per_update": cpu, "losses": losses}

    speed = {"updates": 3, "commit": "abc123", "machine": {},
             "TarMAC": {"present": way(2.0, [1.0]), "every": way(3.0, [1.0]), "speedup": 1.5},
             "NoComm": {"present": way(1.0, [1.0]), "every": way(1.2, [0.9]), "speedup": 1.2}}
    assert bench.build({}, {}, "x", speed)["lstm_speed"] is speed and "lstm_speed" not in bench.build({}, {}, "x")
    line = report.speed_reading(results_file(bench, {}, speed))[0]
    assert "TarMAC 3.00 -> 2.00 (1.50x, losses equal); NoComm 1.20 -> 1.00 (1.20x, losses differ)" in line


def test_the_medium_reading_says_who_leads_half_way_who_ends_lowest_and_whether_seeds_separate_them(bench, report,
                                                                                                     monkeypatch):
    monkeypatch.setattr(bench, "git_commit", lambda: "abc123")

    def run(half, end):
        r = _run(end, 17.0)
        r["curve"]["failure"] = [0.5, half, 0.2, end]
        return r

    commnet = {"tj_medium/CommNet/0": run(0.15, 0.10), "tj_medium/CommNet/1": run(0.15, 0.20)}
    assert report.medium_reading(results_file(bench, commnet)) == [], "nothing to compare CommNet with"
    three = {**commnet, "tj_medium/FullyConnected/0": run(0.25, 0.01), "tj_medium/NoComm/0": run(0.30, 0.16)}
    passed = report.medium_reading(results_file(bench, three))[0]
    assert "at 50% of the updates: CommNet 15.0%, fully connected 25.0%, NoComm (independent) 30.0%" in passed
    assert "CommNet 10.0 / 20.0; fully connected 1.0; NoComm (independent) 16.0" in passed
    assert "is passed after them: fully connected ends lowest" in passed
    assert "CommNet's seeds spread by 7.1 points (sd), more than its distance to NoComm (independent): 1.0 points" \
        in passed
    lowest = report.medium_reading(results_file(bench, {**commnet, "tj_medium/NoComm/0": run(0.30, 0.60)}))[0]
    assert "CommNet ends lowest." in lowest and "do not separate" not in lowest
