# The kit's entry points. Every target creates .venv and installs what it needs
# when they are missing, so a fresh clone needs nothing but Python 3.10+ and make.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lab release check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install when the dependencies change. pip's notes about this machine's local
# package mirrors are filtered out; its errors still stop the build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]' 2>&1 | { grep -v "^WARNING: Location" || true; }
	autograder/install_system_packages.sh
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the kit

demo: setup  ## grade a generated sample class end to end
	$(BIN)/course demo

test: setup  ## the test suite, quick mode
	COURSE_QUICK=1 $(BIN)/python -m pytest -q

lab: setup  ## JupyterLab for the course (notebooks/; the formgrader on the grading workspace)
	$(BIN)/course lab

release: setup  ## regenerate notebooks/ from solutions/
	$(BIN)/course release

check: setup  ## release is current; solutions earn full marks, releases none
	$(BIN)/course release --check
	$(BIN)/course check

bench: setup  ## measure speed and reproduce the papers' tables into bench/results/
	@for script in $(filter-out bench/update_readme.py,$(wildcard bench/*.py)); do echo "== $$script"; $(BIN)/python $$script; done
	$(BIN)/python bench/update_readme.py

clean:  ## remove the grading workspace (keeps .venv)
	rm -rf .workspace
