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

# Lint first: `.ci/run` calls `make test`, so CI lints too. The tests run on every core (pytest-xdist; a test
# module's tests stay on one worker, so its shared fixtures are built once), in file order;
# `make test ORDER=--randomly-seed=N` runs them in the random order of seed N (pytest-randomly).
ORDER ?= -p no:randomly
test: setup lint system-deps
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile $(ORDER) --durations=20

# The unit tier, for every change: under a minute on 2 cores, in a random order. The slow end-to-end tier (marker
# slow) runs in `make test`.
test-fast: setup
	$(VENV)/bin/python -m pytest -q -n auto --dist loadfile -m "not slow"

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
