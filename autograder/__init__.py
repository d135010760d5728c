"""The course command and its grader (see README, "For instructors")."""
import sys

# jsonschema (under nbformat) imports rfc3987_syntax when installed, which builds a
# parser grammar at import time: about 2 s of every grader process's start (the
# command, each renderer, each worker) for a URI format check nbformat never uses.
# Marking it absent makes jsonschema skip that check. Set here, before any of our
# modules imports nbformat.
sys.modules.setdefault("rfc3987_syntax", None)
