"""Reference algorithms of the course, one module per family (iql, qmix, ...)."""
