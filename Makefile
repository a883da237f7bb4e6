# The two commands of the README: `make demo` and `make test` (lint, then the tests). Both set up what they need first.
VENV   ?= .venv
PYTHON ?= python3
# This machine kind's CPU build of torch (constraints-cpu.txt); on a GPU machine use `make setup CONSTRAINTS=`.
CONSTRAINTS ?= -c constraints-cpu.txt

.PHONY: setup demo test test-fast system-deps lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(CONSTRAINTS) -e ".[dev]"
	touch $@

demo: setup
	$(VENV)/bin/aerotune demo

# The PostgreSQL and browser tests need Debian's postgresql and chromium: installed here when missing.
system-deps:
	bash scripts/system-deps.sh

# Lint first: `.ci/run` calls `make test`, so CI lints too. The whole suite runs in file order (-p no:randomly):
# only the unit tier has been proven independent of the order of its tests.
test: setup lint system-deps
	$(VENV)/bin/python -m pytest -q -p no:randomly --durations=20

# The unit tier, for every change: under a minute on 2 cores, in a random order (pytest-randomly; to repeat the last
# order, add --randomly-seed=last). The slow end-to-end tier (marker slow) runs in `make test`.
test-fast: setup
	$(VENV)/bin/python -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
