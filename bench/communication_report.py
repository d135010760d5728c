"""The tables and readings of bench/README_communication.md, from bench/results/communication.json alone.

``markdown(result)`` turns the results file that ``bench/communication.py`` writes into the markdown
tables (one per traffic-junction section, its learning curves, the targets of issue 20, lever pulling,
predator-prey and navigation) and the paragraphs that read them; every number comes from the file
(its ``settings``, ``tasks``, ``paper``, ``summary`` and ``runs``), so the tables can be rebuilt, and
tested, without the bench's settings or any training.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from course_lib import papers


def parse(key: str) -> tuple[str, str, int]:
    """A run key ``section/label/seed`` (a lever label holds a slash: ``CommNet/supervised``)."""
    section, rest = key.split("/", 1)
    label, seed = rest.rsplit("/", 1)
    return section, label, int(seed)


def rows_of(result: dict[str, Any], section: str) -> list[str]:
    """A section's rows (labels) in the bench's order."""
    return list(result["settings"][section])


LABELS = {"CommNet": "CommNet", "TarMAC": "TarMAC", "NoComm": "NoComm (independent)",
          "FullyConnected": "fully connected", "Discrete": "discrete communication"}


def _pct(x: dict) -> str:
    return f"{100 * x['mean']:.1f} ± {100 * x['sd']:.1f}"


def tj_table(result: dict[str, Any], section: str, title: str) -> list[str]:
    s, refs = result["summary"].get(section, {}), result["references"].get(section, {})
    paper, core = result["paper"].get(section, {}), result["tasks"][section]
    episodes = result["settings"]["eval_episodes"]
    metric = "success" if section == "tj_hard" else "failure"  # as the papers report them
    lines = [f"**{title}** ({core['size']}x{core['size']}, up to {core['num_agents']} cars, {core['max_steps']} "
             f"steps, vision {core['vision']}{' with the routes of the cars in view' if core['see_routes'] else ''}"
             f"{', new cars in random free slots' if core['random_slots'] else ''}, arrival "
             f"probability {core['arrival_prob_min']} -> {core['arrival_prob_max']} over the first half of training, "
             f"evaluated at {core['arrival_prob_max']}; {result['cpu_hours'].get(section, 0):.1f} CPU hours): "
             "failure = share of episodes with a collision, success = 100 − failure, "
             f"{episodes:,} episodes per seed, "
             "mean ± sd over seeds. " + (f"Paper columns: {paper['source']}." if paper else ""), "",
             f"| model | settings | seeds | paper: failure % | paper: success % | ours: {metric} %, greedy | "
             f"ours: {metric} %, sampled | cars through (greedy) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for label in rows_of(result, section):
        row = s.get(label)
        cells = [LABELS.get(label, label), result["settings"][section][label]["describe"]]
        if row is None:
            lines.append("| " + " | ".join(cells + ["0", "–", "–", "not yet measured", "–", "–"]) + " |")
            continue
        lines.append("| " + " | ".join(cells + [
            str(row["greedy_failure"]["n"]), str(paper.get("failure", {}).get(label, "–")),
            str(paper.get("success", {}).get(label, "–")), _pct(row[f"greedy_{metric}"]),
            _pct(row[f"sampled_{metric}"]),
            f"{row['greedy_cars_completed']['mean']:.2f}"]) + " |")
    for kind, label in (("random", "random policy"), ("gas", "always gas"), ("noop", "always brake"),
                        ("heuristic", "scripted heuristic (sees the whole junction)")):
        if kind in refs:
            lines.append(f"| {label} | – | – | – | – | {100 * refs[kind][metric]:.1f} | – | "
                         f"{refs[kind]['cars_completed']:.2f} |")
    return lines + [""]


CURVE_POINTS = (0.1, 0.25, 0.5, 0.75, 1.0)  # fractions of a run's updates


def curves_of(result: dict[str, Any], section: str, label: str) -> list[dict[str, list]]:
    """The training curves of a row's seeds."""
    return [run["curve"] for key, run in result["runs"].items() if parse(key)[:2] == (section, label)]


def curve_at(curves: list[dict[str, list]], column: str, fraction: float) -> float:
    """``column`` of the curves at ``fraction`` of their runs, mean over the seeds."""
    return float(np.mean([c[column][max(round(fraction * len(c[column])) - 1, 0)] for c in curves]))


def curve_table(result: dict[str, Any], section: str, title: str) -> list[str]:
    """The learning curves of a table's rows in numbers: failure of the training episodes (sampled
    actions, at the arrival probability of the moment), mean over the seeds, at a few points of the run."""
    runs = {label: curves_of(result, section, label) for label in rows_of(result, section)}
    runs = {label: curves for label, curves in runs.items() if curves}
    if not runs:
        return []

    head = " | ".join(f"{f:.0%}" for f in CURVE_POINTS)
    lines = [f"**{title}: learning curves** (failure % of the training episodes, sampled actions, mean over the "
             "seeds, at a share of each run's updates; the arrival probability rises over the first half)", "",
             f"| model | seeds | {head} |", "|---|---:|" + "---:|" * len(CURVE_POINTS)]
    for label, curves in runs.items():
        cells = " | ".join(f"{100 * curve_at(curves, 'failure', f):.1f}" for f in CURVE_POINTS)
        lines.append(f"| {LABELS.get(label, label)} | {len(curves)} | {cells} |")
    first = next(iter(runs.values()))
    cells = " | ".join(f"{curve_at(first, 'arrival_prob', f):.3f}" for f in CURVE_POINTS)
    return lines + [f"| arrival probability | – | {cells} |", ""]


NOTES = """**How the settings were chosen** (pilots of at most 10 CPU minutes, seed 0, one process, on the
machine above; greedy failure at the final arrival probability, 1,024 episodes).  Speed, env steps per CPU
second with 256 episodes per update (hidden 64): easy CommNet 62-74k, NoComm 82-86k, TarMAC 36k; medium
CommNet (K = 2) 38k, NoComm 47k, fully connected 15k, discrete 23k, TarMAC 20k, LSTM CommNet 22k; hard
(LSTM, 128 episodes per update) TarMAC with 2 rounds 4.7k, before the LSTM cells ran on the present slots
only (the speed-up is measured below).  Easy, vision 1, 1,500 updates (7.7 M steps,
about 2 CPU minutes): with lr 3e-3 and entropy 0.02 CommNet (3 seeds), TarMAC and NoComm all end at 0.0%
failure with 7.17-7.35 cars through (heuristic 7.35), and lr 1e-3 stays at "always gas" (76%); so on the
kit's junction a car's 3x3 view suffices and messages are not needed.  Easy, vision 0, 1,500 updates: with
entropy 0.02 every model settles on "always gas" (76%); with 0.1 CommNet reaches 0.0% failure at 6.2 cars,
TarMAC 0.0% at 6.4 and NoComm 0.0% at 3.1 (it stands still), all still sharpening when the entropy bonus
reaches 0, hence 4,000 updates with the bonus at 0 from 60% on.  Medium, 1,200 updates (12 M steps, about
5.5 CPU minutes): CommNet 36% (entropy 0.1) or 34% (0.02), NoComm 36% (0.1), on a plateau after the
curriculum; lr 1e-3 (entropy 0.05) 38%, slower; hence lr 3e-3, entropy 0.1 -> 0 by 60%, and 6,000
updates.  Hard, TarMAC (LSTM, 2 rounds, hidden 64), 250 updates of 128 episodes (2.6 M steps, 9 CPU
minutes): 55% failure (45% success), falling; hence 3,000 updates.

**What the papers did differently.**  Far longer training: IC3Net's public script for the easy junction
(papers.IC3NET_TJ_EASY_SCRIPT) runs 2,000 epochs x 10 updates x 8,000 steps = 160 M env steps per run,
with 128-unit LSTM agents and RMSprop; the CommNet code's medium script (papers.COMMNET_TJ_MEDIUM_SCRIPT)
trains on 8.64 M episodes (346 M steps) with RMSprop and no entropy bonus.  Our easy runs take 20 M steps,
medium 61 M, hard 31 M.  IC3Net's easy
grid is 6x6 (ours 7x7, so that the one-way roads cross in the middle cell).  Our agents' hidden states
are 64 wide (128 in IC3Net) to fit the CPU budget.  Our evaluation is 2,048 fresh episodes per seed at the
final arrival probability, greedy and sampled; the papers report the success of the training episodes or
of sampled runs.

**What a car sees.**  The CommNet code builds its observation from MazeBase items: a car's 3x3 view lists
the attributes of every car in it, its route among them (games/Traffic.lua sets ``attr.route``), so its
cars can tell a car about to turn across them from one that is not.  IC3Net's junction (which the TarMAC
paper uses) shows only how many cars are in each cell.  The medium table uses the CommNet paper's view
(``see_routes=True``); easy (vision 0: nothing in view) and hard (the TarMAC paper's junction) show
occupancy.  The ``tj_routes`` table measures what the routes change at the ablations' budget.
"""


def easy_reading(result: dict[str, Any]) -> list[str]:
    """What the easy table says where failure alone does not rank the models: a model that brakes
    whenever unsure collides as rarely as one that knows, and gets fewer cars through."""
    models = {"CommNet": "commnet", "TarMAC": "tarmac", "NoComm": "nocomm"}
    fail = {m: result.get(f"tj_easy_failure_{k}") for m, k in models.items()}
    cars = {m: result.get(f"tj_easy_cars_{k}") for m, k in models.items()}
    heur = result["references"].get("tj_easy", {}).get("heuristic", {}).get("cars_completed")
    if None in fail.values() or heur is None or fail["NoComm"] > max(fail["CommNet"], fail["TarMAC"]):
        return []
    said = ", ".join(f"{m} {fail[m]:.1f}% at {cars[m]:.2f} cars" for m in models)
    return [f"**Easy, vision 0: without messages as safe, not as fast.** Greedy failure and cars through per "
            f"episode: {said} (scripted heuristic {heur:.2f}). A car that sees only its own cell and hears "
            "nobody learns to avoid collisions by braking often, so NoComm's failure is "
            "not above the others' (the target on failure alone is missed) while it gets "
            f"{100 * (1 - cars['NoComm'] / max(cars['CommNet'], cars['TarMAC'])):.0f}% fewer cars through. "
            "The papers' independent agents instead collide (CommNet paper: "
            f"{papers.TJ_EASY_FAILURE_PAPER['independent']}% failure), with the same "
            "reward weights (10 per collision, 0.01 tau per step); their papers do not report cars through.", ""]


def medium_reading(result: dict[str, Any]) -> list[str]:
    """Where the medium table's order comes from: the models' training failure at the end of the curriculum
    against each seed's greedy failure at the end (the spread decides how far 3 seeds rank them)."""
    labels = [label for label in rows_of(result, "tj_medium") if result["summary"].get("tj_medium", {}).get(label)]
    if "CommNet" not in labels or len(labels) < 2:
        return []
    cfg, core = result["settings"]["tj_medium"]["CommNet"], result["tasks"]["tj_medium"]
    greedy = {label: result["summary"]["tj_medium"][label]["greedy_failure"] for label in labels}
    half = {label: 100 * curve_at(curves_of(result, "tj_medium", label), "failure", cfg["curriculum_until"])
            for label in labels}
    end = {label: 100 * greedy[label]["mean"] for label in labels}
    first_half, first_end = min(half, key=half.get), min(end, key=end.get)

    def seeds(label):
        return " / ".join(f"{100 * v:.1f}" for v in greedy[label]["values"])

    said_half = ", ".join(f"{LABELS[label]} {half[label]:.1f}%" for label in labels)
    said_end = "; ".join(f"{LABELS[label]} {seeds(label)}" for label in labels)
    if first_half == "CommNet" and first_end != "CommNet":
        order = (f"CommNet fails least while the arrivals rise and is passed after them: {LABELS[first_end]} ends "
                 "lowest.")
    elif first_end == "CommNet":
        order = "CommNet ends lowest."
    else:
        order = f"{LABELS[first_half]} leads half-way and {LABELS[first_end]} ends lowest."
    others = [label for label in labels if label != "CommNet"]
    nearest = min(others, key=lambda label: abs(end[label] - end["CommNet"]))
    sd, distance = 100 * greedy["CommNet"]["sd"], abs(end[nearest] - end["CommNet"])
    caveat = (f" CommNet's seeds spread by {sd:.1f} points (sd), more than its distance to {LABELS[nearest]}: "
              f"{distance:.1f} points; three seeds do not separate the two." if sd > distance else "")
    script = papers.COMMNET_TJ_MEDIUM_SCRIPT
    code_episodes = script["epochs"] * script["updates_per_epoch"] * script["episodes_per_update"]
    our_episodes = cfg["total_steps"] // core["max_steps"]
    return [f"**Medium: how the order comes about.** Failure of the training episodes (sampled) when the arrival "
            f"probability reaches its final {core['arrival_prob_max']:g}, at {cfg['curriculum_until']:.0%} of the "
            f"updates: {said_half}. Greedy failure at the end, seed by seed: "
            f"{said_end}. {order}{caveat} The CommNet code trained its medium models on {code_episodes / 1e6:.2f} M "
            f"episodes, ours on {our_episodes / 1e6:.2f} M.", ""]


def slots_reading(result: dict[str, Any]) -> list[str]:
    """What the ``tj_slots`` row says of the paper's fully-connected baseline, once both rows are measured."""
    s = result["summary"]
    ours = s.get("tj_routes", {}).get("FullyConnected", {}).get("greedy_failure")
    code = next(iter(s.get("tj_slots", {}).values()), {}).get("greedy_failure")  # its one row
    commnet = s.get("tj_routes", {}).get("CommNet", {}).get("greedy_failure")
    if not (ours and code and commnet):
        return []

    def said(m):
        spread = f" ± {100 * m['sd']:.1f}" if m["n"] > 1 else ""
        return f"{100 * m['mean']:.1f}{spread}% ({m['n']} seed{'s' * (m['n'] > 1)})"

    verdict = ("the code's set-up fails more often than ours: ours is the stronger baseline, one reason our "
               "medium row sits far below the paper's" if code["mean"] > ours["mean"] else
               "the code's set-up does not fail more often than ours at this budget, so it does not explain the gap")

    return [f"**The fully-connected baseline, ours and the CommNet code's.** At the ablations' budget on the medium "
            f"junction with routes, greedy failure: ours {said(ours)}, the CommNet code's set-up {said(code)}, "
            f"CommNet {said(commnet)}. The CommNet code (`--fully_connected`, main.lua and train.lua) gives every car "
            "slot its own parameters except the encoder (its own action and value heads, its own weights in each "
            "module), and games/Traffic.lua seats a new car in a random free slot; ours shares the heads and seats a "
            "new car in the first free slot, so a slot's number says something about its car. The paper's "
            f"fully-connected row ({papers.TJ_MEDIUM_FAILURE_PAPER['fully connected']}% on medium, CommNet "
            f"{papers.TJ_MEDIUM_FAILURE_PAPER['CommNet']}%) comes from that set-up. Here {verdict}.", ""]


def speed_reading(result: dict[str, Any]) -> list[str]:
    """The ``--speed`` measurement in a sentence: each LSTM row's CPU s per update both ways."""
    speed = result.get("lstm_speed")
    if not speed:
        return []

    def said_row(label, row):
        losses = "equal" if row["every"]["losses"] == row["present"]["losses"] else "differ"
        return (f"{label} {row['every']['cpu_s_per_update']:.2f} -> {row['present']['cpu_s_per_update']:.2f} "
                f"({row['speedup']:.2f}x, losses {losses})")

    said = "; ".join(said_row(label, row) for label, row in speed.items() if isinstance(row, dict) and "speedup" in row)
    return [f"**LSTM agents on the present slots** (`--speed`, commit {speed['commit']}): CPU seconds per update of "
            f"128 hard-junction episodes, the cell on every slot -> on the present slots only (`lstm_present`): "
            f"{said}. The hard runs of seed 0 were resumed across that change, so their CPU hours mix both speeds.",
            ""]


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = ["Learned communication (`bench/communication.py`, results in `bench/results/communication.json`, "
             f"commit {result['provenance']['commit']}). Rows marked *not yet measured* have no finished run yet "
             "(the bench resumes them).", ""]
    for section, title in (("tj_easy", "Traffic junction, easy, vision 0 (IC3Net's run script)"),
                           ("tj_easy_vision1", "Traffic junction, easy, vision 1 (notebook 05's junction)"),
                           ("tj_medium", "Traffic junction, medium"), ("tj_hard", "Traffic junction, hard")):
        lines += tj_table(result, section, title)
    lines += tj_table(result, "tj_ablation", "Ablations on the medium junction, cars seeing occupancy only")
    lines += tj_table(result, "tj_routes", "Ablation: the routes of the cars in view (medium, the ablations' budget)")
    lines += tj_table(result, "tj_slots", "The fully-connected baseline as the CommNet code runs it (random car "
                                          "slots, a head per slot; medium with routes, the ablations' budget)")
    for section, title in (("tj_easy", "Easy, vision 0"), ("tj_medium", "Medium"), ("tj_hard", "Hard")):
        lines += curve_table(result, section, title)
    lines += ["**Targets of issue 20** (`target_verdicts` in the JSON): " + "; ".join(
        f"{k}: {v}" for k, v in result["target_verdicts"].items()) + ".", ""]
    lines += easy_reading(result)
    lines += medium_reading(result)
    lines += slots_reading(result)
    lines += speed_reading(result)
    lev = s.get("levers", {})
    if lev:
        lines += ["**Lever pulling** (CommNet paper, Table 1): 5 of 500 agents, 5 levers; score (#distinct − 1)/"
                  f"(m − 1) on {result['settings']['eval_rounds']:,} fresh rounds, greedy / sampled pulls; "
                  + result["settings"]["levers"]["CommNet/supervised"]["describe"] + ".", "",
                  "| model | paper, supervised | ours, supervised | paper, REINFORCE | ours, REINFORCE |",
                  "|---|---:|---:|---:|---:|"]
        for method, name in (("NoComm", "independent"), ("CommNet", "CommNet")):
            cells = []
            for mode, pmode in (("supervised", "supervised"), ("reinforce", "REINFORCE")):
                r = lev.get(f"{method}/{mode}")
                cells += [f"{result['paper']['levers'][f'{name}, {pmode}']:.2f}",
                          "–" if r is None else f"{r['greedy_distinct_score']['mean']:.3f} / "
                                                f"{r['sampled_distinct_score']['mean']:.3f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    for section, title in (("predator_prey", "Predator-prey"), ("navigation", "Cooperative navigation")):
        if section not in s:
            continue
        refs = result["references"].get(section, {})
        lines += [f"**{title}** ({result['settings'][section]['CommNet']['describe']}): return per agent and "
                  f"success of the greedy policy, {result['settings']['eval_episodes']:,} episodes.", "",
                  "| model | return per agent | success % |", "|---|---:|---:|"]
        for method in ("NoComm", "CommNet"):
            if method in s[section]:
                r = s[section][method]
                lines.append(f"| {method} | {r['greedy_episode_return']['mean']:.2f} ± "
                             f"{r['greedy_episode_return']['sd']:.2f} | {_pct(r['greedy_success'])} |")
        for kind, label in (("random", "random policy"), ("noop", "no-op"), ("heuristic", "scripted heuristic")):
            if kind in refs:
                lines.append(f"| {label} | {refs[kind]['episode_return']:.2f} | {100 * refs[kind]['success']:.1f} |")
        lines.append("")
    lines += [NOTES]
    t = result["timing"]
    machine = result["provenance"]["machine"]
    lines.append(f"Measured on {machine['processor']} ({machine['cpus']} "
                 f"cores shared with other work), one torch thread per run: {t['cpu_hours']:.1f} CPU hours in all "
                 f"({', '.join(f'{k} {v:.1f}' for k, v in result['cpu_hours'].items())}); CPU time is what a quiet "
                 "machine would take.")
    return "\n".join(lines) + "\n"
