"""Self-play and competitive evaluation: exploitability, fictitious play, Elo, opponent pools, leagues.

Taught in notebooks/08_self_play. Modules, read in this order:

* :mod:`~course_lib.selfplay.fictitious` -- exact exploitability (NashConv / 2) of a
  strategy pair in a two-player matrix game; fictitious play and naive self-play as one
  learner (``fictitious.train("matrix_rock_paper_scissors", ...)``);
* :mod:`~course_lib.selfplay.elo` -- Elo expected score and update, the side edge of an
  unequal game, league ratings with anchored players, the performance rating against a
  frozen pool (both take the student's Elo functions as parts);
* :mod:`~course_lib.selfplay.pool` -- who wins on simple_tag, side policies, a match of
  two sides as one policy, win-rate matrices, the exploitability approximation, the
  rolling opponent pool;
* :mod:`~course_lib.selfplay.league` -- the league learner: predators and prey trained
  against rolling pools of their past selves (independent PPO, :mod:`course_lib.algos.ppo`),
  league Elo, and fixed-pool Elo against a league's frozen archive.

"""
