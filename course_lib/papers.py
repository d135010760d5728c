"""Published numbers the course compares with, one constant per table, each with its source.

Notebooks and benches print these beside their own measurements; nothing here is
measured by the course.
"""
from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------- value decomposition (notebook 03)
# Rashid et al. 2018, "QMIX: Monotonic Value Function Factorisation for Deep Multi-Agent
# Reinforcement Learning", Table 1b (two-step game): QMIX's learned Q_tot in the first state
# (rows: agent 1's action, which picks state 2A or 2B; columns: agent 2's action).
QMIX_TWO_STEP_STATE1 = np.array([[6.93, 6.93], [7.92, 7.92]])

# ------------------------------------------------------------------------ MADDPG (notebooks 04, 07)
# The Method I project this course grew from, as published by its authors (shared/SPECS.md,
# "Method I"): team return on simple_spread_v3 after 200k environment steps, the mean of the
# last 5 evaluations of its own evaluation protocol.
SEED_PROJECT_SPREAD_200K = {"Method I": -80.70, "MADDPG": -82.89}
# The same source: training environment steps per second it reported for both methods.
SEED_PROJECT_SPREAD_STEPS_PER_S = {"Method I": 2300, "MADDPG": 470}

# ---------------------------------------------------------------- learned communication (notebook 05)
# Sukhbaatar, Szlam & Fergus 2016, "Learning Multiagent Communication with Backpropagation"
# (CommNet), Table 1: lever pulling, score (#distinct - 1) / (m - 1) with m = 5 agents of 500.
LEVER_PAPER = {"independent, supervised": 0.59, "independent, REINFORCE": 0.59,
               "CommNet, supervised": 0.99, "CommNet, REINFORCE": 0.94}
# CommNet paper, Table 2 (MLP modules): failure rate in % on the easy traffic junction.
TJ_EASY_FAILURE_PAPER = {"independent": 15.8, "discrete comm.": 1.1, "CommNet": 0.3}
# CommNet paper, Table 2 (MLP modules): failure rate in % on the medium traffic junction.
TJ_MEDIUM_FAILURE_PAPER = {"independent": 20.6, "fully connected": 12.5, "discrete comm.": 15.8, "CommNet": 2.2}
# Das et al. 2019, "TarMAC: Targeted Multi-Agent Communication", traffic junction results:
# success rate in % on the easy version.
TJ_EASY_SUCCESS_PAPER = {"no communication": 84.9, "TarMAC": 99.9}
# TarMAC paper, traffic junction results: success rate in % on the hard version.
TJ_HARD_SUCCESS_PAPER = {"no communication": 74.1, "TarMAC (2 rounds)": 97.1}
# IC3Net's run script for the easy traffic junction (Singh et al. 2019; github.com/IC3Net/IC3Net, README
# "traffic_junction ... --difficulty easy" and main.py's defaults): 2,000 epochs of 10 updates, each on
# 16 processes x 500 steps (160 M env steps), LSTM agents of 128 units, RMSprop lr 0.001, vision 0 (a car
# sees only its own cell), arrival rate 0.1 -> 0.3 over epochs 250 -> 1250.
IC3NET_TJ_EASY_SCRIPT = {"epochs": 2000, "updates_per_epoch": 10, "steps_per_update": 16 * 500, "hidden": 128,
                         "lr": 0.001, "vision": 0, "curriculum_epochs": (250, 1250)}
# The CommNet code's script for the medium junction ("crossing"; github.com/facebookarchive/CommNet, README
# "Train LSTM CommNet on crossing task" and its option defaults): 300 epochs of 100 updates of 288 episodes
# (--nworker 18 x --batch_size 16) = 8.64 M episodes, RMSprop lr 0.003, hidden 50, no entropy bonus,
# baseline weight 0.03, arrival rate raised over epochs 100 -> 200, vision 1.
COMMNET_TJ_MEDIUM_SCRIPT = {"epochs": 300, "updates_per_epoch": 100, "episodes_per_update": 288, "hidden": 50,
                            "lr": 0.003, "vision": 1, "curriculum_epochs": (100, 200)}
