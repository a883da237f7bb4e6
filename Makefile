# The two commands of the README: `make demo` and `make test` (lint, then the tests). Both set up what they need first.
VENV   ?= .venv
PYTHON ?= python3
# This machine kind's CPU build of torch (constraints-cpu.txt); on a GPU machine use `make setup CONSTRAINTS=`.
CONSTRAINTS ?= -c constraints-cpu.txt

.PHONY: setup demo test system-deps lint

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

# Lint first: `.ci/run` calls `make test`, so CI lints too.
test: setup lint system-deps
	$(VENV)/bin/python -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
