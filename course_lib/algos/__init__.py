"""Reference algorithms of the course, one module per family (iql, idqn, qmix, maddpg, ...).

:data:`LEARNERS` names every learner of the one learning API
(:mod:`course_lib.learning`); :func:`learner` imports one by name (the ``course train``
command and checkpoints use these names).
"""
from __future__ import annotations

import importlib

__all__ = ["LEARNERS", "learner"]

#: learner name -> "module:Class" (imported on first use, so this package stays light)
LEARNERS = {
    "idqn": "course_lib.algos.idqn:IDQN",
    "ippo": "course_lib.algos.ppo:IPPO",
    "method_i": "course_lib.algos.la_ippo:MethodI",
    "stateless_q": "course_lib.algos.iql:StatelessQ",
    "qmix": "course_lib.algos.qmix:ValueDecomposition",
    "reinforce": "course_lib.algos.reinforce:Reinforce",
    "levers": "course_lib.algos.levers:Levers",
    "fictitious_play": "course_lib.selfplay.fictitious:FictitiousPlay",
    "league": "course_lib.selfplay.league:League",
    "maddpg": "course_lib.algos.maddpg:MADDPG",
    "drqn": "course_lib.advanced.drqn:DRQN",
    "curiosity": "course_lib.advanced.curiosity:Curiosity",
    "scaling": "course_lib.advanced.scaling:Scaling",
}


def learner(name: str):
    """The :class:`course_lib.learning.Learner` subclass called ``name``."""
    try:
        module, cls = LEARNERS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; the algorithms are: {', '.join(sorted(LEARNERS))}") from None
    return getattr(importlib.import_module(module), cls)
