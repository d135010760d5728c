"""A spy part for the learners' tests: it records its calls, runs the function it wraps,
and can interrupt training at its k-th call."""
from __future__ import annotations

import signal


class Spy:
    """Records its calls and runs ``fn``.  At call ``stop`` it interrupts: with
    ``ctrl_c=True`` it presses Ctrl-C (SIGINT: the driver lets the iteration finish,
    saves and raises KeyboardInterrupt), otherwise it raises KeyboardInterrupt inside the
    part (the learner must roll the unfinished iteration back)."""

    def __init__(self, fn, stop: int | None = None, ctrl_c: bool = False):
        self.fn, self.calls, self.stop, self.ctrl_c = fn, 0, stop, ctrl_c

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.stop:
            if self.ctrl_c:
                signal.raise_signal(signal.SIGINT)
            else:
                raise KeyboardInterrupt
        return self.fn(*args, **kwargs)
