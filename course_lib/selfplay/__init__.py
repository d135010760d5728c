"""Self-play and competitive evaluation: exploitability, fictitious play, Elo, opponent pools, leagues.

Taught in notebooks/08_self_play. Modules, read in this order:

* :mod:`~course_lib.selfplay.matrix_games` -- exact exploitability (NashConv / 2) of a
  strategy pair in a two-player zero-sum matrix game, fictitious play and naive self-play;
* :mod:`~course_lib.selfplay.elo` -- Elo expected score and update, the side edge of an
  unequal game, league ratings with anchored players, the performance rating against a
  frozen pool;
* :mod:`~course_lib.selfplay.pool` -- who wins on simple_tag, win-rate matrices between
  predator and prey policies, the exploitability approximation, the rolling opponent pool;
* :mod:`~course_lib.selfplay.league` -- predators and prey trained against rolling pools of
  their past selves (independent PPO from :mod:`course_lib.algos.ppo`), fixed-pool Elo,
  and MADDPG predators (:mod:`course_lib.algos.maddpg`) trained against a set of prey.
  The learners are imported only when training starts.
"""
