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
