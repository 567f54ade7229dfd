# Two commands matter: `make start` (run locally) and `make test` (the whole suite, as CI runs it).
# Setup is stamp-based: nothing is reinstalled unless requirements or package files change.
PYTHON ?= python3.12
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PY_STAMP  := $(VENV)/.requirements.stamp
NPM_STAMP := node_modules/.package-lock.stamp
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup start stop test lint demo bench clean

help:
	@echo "make start   run the app locally (Azurite + Core Tools)"
	@echo "make test    run the whole test suite (needs no Core Tools)"
	@echo "make demo    run the clinical scenario locally and show the audit trail (no Core Tools)"
	@echo "make lint    ruff + mypy (strict on shared/ and functions/)"
	@echo "make bench   benchmarks (ratios against bare baselines)"

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found. Install Python 3.12 or run 'make PYTHON=/path/to/python3.12 ...'." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(PY_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

setup: $(PY_STAMP) $(NPM_STAMP)

local.settings.json:
	cp local.settings.sample.json $@
	@echo "Created local.settings.json from local.settings.sample.json (git-ignored)."

start: setup local.settings.json
	@bash scripts/start.sh

stop:
	@bash scripts/azurite.sh stop

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: setup
	$(PY) -m scripts.demo

bench: setup
	$(PY) -m pytest tests/benchmarks -o addopts="--strict-markers --strict-config -ra" --benchmark-only -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .mypy_cache .ruff_cache
