"""The judge's cases and messages (course_lib/judge.py, autograder/judging.py), no kernels."""
from __future__ import annotations

import importlib
import pkgutil

import nbformat
import numpy as np
import pytest

from autograder import judging
from autograder.layout import notebook_ids, source_notebook
from autograder.cells import hidden_line_numbers, is_test_cell
from course_lib import cases, judge

for module in pkgutil.iter_modules(cases.__path__):
    importlib.import_module(f"{cases.__name__}.{module.name}")
KEYS = sorted(judge.registered())


def float32(value):
    """Plain outputs rounded to float32, as an answer computing in float32 records them."""
    if isinstance(value, dict) and "values" in value:
        return {**value, "values": [float(np.float32(v)) if isinstance(v, float) else v for v in value["values"]]}
    if isinstance(value, dict):
        return {k: float32(v) for k, v in value.items()}
    if isinstance(value, list):
        return [float32(v) for v in value]
    return value


@pytest.mark.parametrize("key", KEYS)
def test_a_float32_answer_keeps_its_points(key):
    """No task asks for float64: the reference's outputs in float32 still pass."""
    case = judge.lookup(key)
    outputs = case.outputs(case.reference, seed=5)
    assert judge.verdict(key, 5, outputs) is None
    assert judge.verdict(key, 5, float32(outputs)) is None


def test_a_message_says_in_words_what_the_input_was():
    """An answer right in distribution that draws from a generator of its own, not the one it is given."""
    def epsilon_greedy(q_values, epsilon, rng):
        own = np.random.default_rng()
        q = np.asarray(q_values, dtype=float)
        greedy = (own.random(q.shape) * (q >= q.max(-1, keepdims=True))).argmax(-1)  # uniform among ties
        explore = own.random(q.shape[:-1]) < epsilon
        return np.where(explore, own.integers(q.shape[-1], size=q.shape[:-1]), greedy)

    case = judge.lookup("nb02.epsilon_greedy")
    message = judge.verdict(case.key, 3, case.outputs(epsilon_greedy, 3))
    assert "generators seeded alike" in message and "the actions must depend only on the generator" in message
    assert "same actions from generators seeded alike (1 yes, 0 no)" in message


def test_a_message_shows_the_digits_that_differ():
    """Two numbers that agree to six digits are shown with as many as it takes to differ."""
    message = judge.difference(judge.plain(0.9155350312), judge.plain(0.9155350015), atol=1e-9, rtol=0.0)
    got, want = message.split(" is ")[1].split(" (")[0].split(", expected ")
    assert got != want and got.startswith("0.915535") and want.startswith("0.915535"), message
    assert "off by 3e-08" in message and "allowed 1e-09" in message


def test_the_self_check_fails_an_answer_that_calls_the_reference_under_another_name():
    from course_lib.games import best_response as reference

    def best_response(payoffs, player, profile):
        return reference(payoffs, player, profile)

    with pytest.raises(AssertionError, match="calls the course_lib reference"):
        judge.check("nb01.best_response", best_response)
    assert reference(np.zeros((2, 2, 2)), 0, (0, 0)) == [0, 1]  # back to normal afterwards


@pytest.mark.parametrize("nb_id", notebook_ids())
def test_every_hidden_test_is_a_judge_call(nb_id):
    """The grader runs no other hidden code: a hidden part with more would not be run."""
    nb = nbformat.read(source_notebook(nb_id), as_version=4)
    copy, calls = judging.kernel_copy(nb)
    tests = [i for i, c in enumerate(nb.cells) if is_test_cell(c) and hidden_line_numbers(c.source)]
    assert tests and sorted(calls) == tests
    for i in tests:
        assert all(key in judge.registered() or key.startswith(f"nb{nb_id[:2]}.") for key, _ in calls[i])
        assert all(key and name.isidentifier() for key, name in calls[i]), calls[i]
        lines, kept = nb.cells[i].source.split("\n"), copy.cells[i].source.split("\n")
        assert len(lines) == len(kept)  # line numbers stay
        assert not any("judge.check" in line or "HIDDEN TESTS" in line for line in kept)


def test_hidden_calls_refuse_other_code():
    assert judging.hidden_calls('from course_lib import judge\nassert_written_here(f, "f")\n'
                                'judge.check("nb01.best_response", best_response)') == [
        ("nb01.best_response", "best_response")]
    with pytest.raises(ValueError, match="only call judge.check"):
        judging.hidden_calls('judge.check("nb01.best_response", best_response)\nassert best_response(1) == 2')


def test_a_failing_hidden_test_names_the_function_and_the_input_in_words():
    """Not "on test input 43": the function, the kind of input, and what differs."""
    from course_lib import games

    case = judge.lookup("nb01.pure_nash_equilibria")

    def drops_an_equilibrium(payoffs):
        found = games.pure_nash_equilibria(payoffs)
        return found[:1] if len(found) > 1 else found

    message = judge.verdict(case.key, 7, [case.observed(drops_an_equilibrium, args) for args in case.inputs(7)])
    assert message.startswith("gives a wrong answer for a 2-player game with payoffs of shape"), message
    assert "test input" not in message


def test_a_stub_says_which_function_to_write():
    def best_response(payoffs, player, profile):
        raise NotImplementedError("best_response: replace the stub with your answer")

    with pytest.raises(AssertionError, match="`best_response` is still the stub: replace the stub with your answer"):
        judge.check("nb01.best_response", best_response)
