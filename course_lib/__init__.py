"""course_lib: the shared library of the MARL course kit.

Kept light at import time: submodules (``games``, ``envs``, ``algos``...) are
imported where they are used, so a notebook that needs no PyTorch never loads it.
"""
__version__ = "0.1.0"
