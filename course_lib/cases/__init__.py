"""Judge cases, one module per notebook (see course_lib/judge.py)."""
