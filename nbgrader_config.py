# nbgrader reads this file from the folder it runs in (also for the formgrader);
# the settings live in autograder/nbgrader_config.py, shared with the `course` command.
from autograder.nbgrader_config import configure

configure(get_config())  # noqa: F821 - get_config is provided by nbgrader's config loader
