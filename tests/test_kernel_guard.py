"""The kernel guard (autograder/kernel_guard.py) against the tricks a notebook can play on it.

An audit hook cannot be removed, so the guard is installed in a Python process of its
own (an IPython shell without a kernel); the program below plays the notebook and the
worker and prints what happened as JSON.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from autograder.layout import REPO_ROOT

PROGRAM = textwrap.dedent('''
    import ctypes, gc, importlib, inspect, json, os, subprocess, sys, types
    import numpy as np
    from IPython.core.interactiveshell import InteractiveShell
    import course_lib.cases.nb01
    from course_lib import games, judge
    from autograder import kernel_guard

    shell = InteractiveShell.instance()
    shown = []
    shell.display_pub.publish = lambda data, metadata=None, **kwargs: shown.append(data)
    alias = games.best_response  # bound before judging, as in an earlier cell
    read, write = os.pipe()
    kernel_guard.install(shell, write, os.path.dirname(os.path.abspath(__file__)) + os.sep)
    secret = os.read(read, kernel_guard.KEY_BYTES)
    out = {}

    def attempt(what, action):
        try:
            action()
            out[what] = "allowed"
        except Exception as exc:
            out[what] = f"{type(exc).__name__}: {exc}"

    attempt("function copy", lambda: types.FunctionType(games.best_response.__code__, games.__dict__))
    attempt("code copy", lambda: games.best_response.__code__.replace(co_filename="elsewhere.py"))
    attempt("reload", lambda: importlib.reload(games))
    attempt("source copy", lambda: exec(inspect.getsource(games.best_response), {"np": np}))
    attempt("gc", gc.get_objects)
    attempt("other threads' frames", sys._current_frames)
    attempt("audit hook", lambda: sys.addaudithook(lambda *a: None))
    attempt("alias outside judging", lambda: alias(np.zeros((2, 2, 2)), 0, (0, 0)))

    KEY = "nb01.best_response"

    def judged(answer, token=None, nonce=None):
        shell.user_ns["best_response"] = answer
        nonce = nonce or os.urandom(16)
        token = token or kernel_guard.make_token(secret, KEY, "best_response", judge.case_seed(KEY, 7), nonce)
        shown.clear()
        sys.audit(kernel_guard.EVENT, token)
        return [kernel_guard.read_record(secret, nonce, d.get(kernel_guard.MIME)) for d in shown], shown

    def honest(payoffs, player, profile):
        payoffs = np.asarray(payoffs, dtype=float)
        index = [int(a) for a in profile]
        index[player] = slice(None)
        values = payoffs[tuple(index) + (player,)]
        return [int(a) for a in np.flatnonzero(values >= values.max() - 1e-9)]

    def via_alias(payoffs, player, profile):
        return alias(payoffs, player, profile)

    def via_subprocess(payoffs, player, profile):
        subprocess.run([sys.executable, "-c", "pass"])
        return honest(payoffs, player, profile)

    def via_ctypes(payoffs, player, profile):
        ctypes.CDLL(None).getpid()
        return honest(payoffs, player, profile)

    def unpatches(payoffs, player, profile):
        games.best_response.__code__ = via_alias.__code__
        return honest(payoffs, player, profile)

    records, _ = judged(honest)
    out["honest"] = records
    out["honest verdict"] = judge.verdict(KEY, 7, records[0]["outputs"]) if records and records[0] else "no record"
    for name, answer in [("alias", via_alias), ("subprocess", via_subprocess), ("ctypes", via_ctypes),
                         ("unpatching", unpatches)]:
        records, _ = judged(answer)
        out[name] = records[0] if records else None
    nonce = os.urandom(16)
    token = kernel_guard.make_token(secret, KEY, "best_response", 123, nonce)
    records, raw = judged(honest, token=token[:-2] + ("00" if token[-2:] != "00" else "11"), nonce=nonce)
    out["bad token"] = records[0] if records else None
    forged = dict(raw[0][kernel_guard.MIME])
    forged["payload"] = forged["payload"].replace('"key": ', '"key":  ', 1)  # same JSON, other bytes
    out["forged record"] = kernel_guard.read_record(secret, nonce, forged)
    out["other nonce"] = kernel_guard.read_record(secret, os.urandom(16), raw[0][kernel_guard.MIME])
    attempt("alias after judging", lambda: alias(np.zeros((2, 2, 2)), 0, (0, 0)))
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    program = tmp_path_factory.mktemp("guard") / "notebook.py"
    program.write_text(PROGRAM)
    run = subprocess.run([sys.executable, str(program)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("what", ["function copy", "code copy", "reload", "source copy", "gc",
                                  "other threads' frames"])
def test_copies_of_a_reference_and_views_of_the_guard_are_refused(seen, what):
    assert seen[what].startswith("Refused: not allowed while grading"), seen[what]


def test_an_audit_hook_of_the_notebook_is_not_added(seen):
    assert seen["audit hook"] == "allowed"  # refused silently, as Python does for a RuntimeError
    assert any("adding an audit hook" in line for line in seen["honest"][0]["log"])


def test_a_judged_call_records_the_answers_own_outputs(seen):
    assert seen["honest verdict"] is None
    record = seen["honest"][0]
    assert record["key"] == "nb01.best_response" and not record.get("error")


@pytest.mark.parametrize("how, words", [("alias", "calls the course_lib reference"),
                                        ("subprocess", "starting a process"), ("ctypes", "ctypes"),
                                        ("unpatching", "changing a function's code")])
def test_a_judged_answer_cannot_reach_the_reference(seen, how, words):
    record = seen[how]
    assert record and words in record["error"]["message"], record
    assert record["error"]["input"] == 0 and not record.get("outputs")


def test_only_the_workers_requests_and_the_guards_records_count(seen):
    assert seen["bad token"]["problem"] == "the judge's request could not be read"
    assert "outputs" not in seen["bad token"]
    assert seen["forged record"] is None and seen["other nonce"] is None


def test_references_work_again_after_judging(seen):
    assert seen["alias outside judging"] == "allowed" and seen["alias after judging"] == "allowed"
