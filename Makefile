# Every target installs what it needs: a fresh clone needs only `make test` / `make run`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The first of python3.11 / python3 that really is 3.11 (a pyenv shim may exist but fail).
PYTHON ?= $(or $(shell for p in python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null \
	&& { command -v $$p; break; }; done),python3)
VENV := .venv
BIN := $(VENV)/bin
# The stamp carries a hash of pyproject.toml: a changed dependency list reinstalls,
# an unchanged one costs nothing.
PYPROJECT_HASH := $(shell sha256sum pyproject.toml | cut -c1-16)
STAMP := $(VENV)/.installed-$(PYPROJECT_HASH)
SYSTEM_DEPS := bash scripts/ensure-system-deps.sh

PYTEST_ARGS ?=
RUN_ARGS ?=
BENCH_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv run test lint bench bench-dashboard screenshots i18n clean distclean system-deps

help:
	@echo "make venv     create .venv and install the project with its dev extras"
	@echo "make run      start api, dispatcher, worker, scheduler (and the Ollama simulator if needed)"
	@echo "make test     run the test suite on real Redis/PostgreSQL (PYTEST_ARGS=... to pass options)"
	@echo "make lint     ruff check, ruff format --check, mypy --strict"
	@echo "make bench    run the benchmarks (BENCH_ARGS=...)"
	@echo "make bench-dashboard  the dashboard's usage report over 2 million seeded usage rows"
	@echo "make screenshots  the main pages in English and Arabic into screenshots/"
	@echo "make i18n     extract new messages into the catalogs (then translate portal/locale/ar)"
	@echo "make clean    remove caches and build output; make distclean also removes .venv"

venv: $(STAMP)

$(STAMP):
	@if [[ ! -x $(BIN)/python ]]; then \
		echo "creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

system-deps:
	$(SYSTEM_DEPS) redis postgres chromium

run: venv
	$(SYSTEM_DEPS) redis
	$(BIN)/resayil run $(RUN_ARGS)

test: venv
	$(SYSTEM_DEPS) redis postgres chromium
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: venv
	$(SYSTEM_DEPS) redis postgres
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-dashboard: venv
	$(SYSTEM_DEPS) postgres
	$(BIN)/python -m bench --scenario dashboard $(BENCH_ARGS)

screenshots: venv
	$(SYSTEM_DEPS) redis chromium
	$(BIN)/python -m scripts.screenshots

i18n: venv
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header \
		-o portal/locale/messages.pot .
	$(BIN)/pybabel update -i portal/locale/messages.pot -d portal/locale --no-fuzzy-matching \
		--ignore-obsolete

clean:
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist ./*.egg-info

distclean: clean
	rm -rf $(VENV)
