"""Building blocks of notebooks/06_advanced, one module per idea:

* :mod:`.attention` -- multi-head attention with gated integration (TarMAC extended; TODO 1);
* :mod:`.gat` -- a graph attention layer matching ``torch_geometric``'s ``GATConv`` (TODO 2);
* :mod:`.scaling` -- GNN communication against all-to-all attention for 3 to 30 agents
  (learner ``scaling`` on the task ``neighbour_majority``; its rounds are TODOs 1 and 2);
* :mod:`.drqn` -- a recurrent Q-network trained on whole sequences (learner ``drqn`` on
  ``cue_corridor``; TODO 3);
* :mod:`.curiosity` -- ICM (TODO 4) and RND bonuses on a sparse-reward grid (learner
  ``curiosity`` on ``sparse_goal_grid``);
* :mod:`.experiments` -- the notebook's measured runs and its comparison table, shared with
  ``bench/advanced.py``.

Each TODO function has the same name and signature here as in the notebook, and is a field
of its learner's ``Parts``: the notebook's experiment cells pass the student's functions.
"""
