"""Published numbers the course compares with, one constant per table, with its source.

Notebooks and benches print these beside what they measure; nothing here is computed.
"""
from __future__ import annotations

# ------------------------------------------------ notebook 05: learned communication
#: Lever pulling, (#distinct - 1) / (m - 1) with m = 5 agents of 500: Sukhbaatar, Szlam &
#: Fergus, "Learning Multiagent Communication with Backpropagation" (CommNet), NeurIPS 2016, Table 1.
LEVER_PAPER = {"independent, supervised": 0.59, "independent, REINFORCE": 0.59,
               "CommNet, supervised": 0.99, "CommNet, REINFORCE": 0.94}
#: Traffic junction, easy: failure rate in % (MLP modules): CommNet paper, Table 2.
TJ_EASY_FAILURE_PAPER = {"independent": 15.8, "discrete comm.": 1.1, "CommNet": 0.3}
#: Traffic junction, medium: failure rate in % (MLP modules): CommNet paper, Table 2.
TJ_MEDIUM_FAILURE_PAPER = {"independent": 20.6, "fully connected": 12.5, "discrete comm.": 15.8, "CommNet": 2.2}
#: Traffic junction, easy: success rate in %: Das et al., "TarMAC: Targeted Multi-Agent
#: Communication", ICML 2019, Table 3.
TJ_EASY_SUCCESS_PAPER = {"no communication": 84.9, "TarMAC": 99.9}
#: Traffic junction, hard: success rate in %: TarMAC paper, Table 3.
TJ_HARD_SUCCESS_PAPER = {"no communication": 74.1, "TarMAC (2 rounds)": 97.1}
