# llmopt-exporter: every habit has one entry point. `make help` lists them.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv tools run test lint format generate bench soak clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# TOOLS_DIR: where scripts/ensure-tools.sh puts Prometheus, Alertmanager, docker-compose, Node.js...
include scripts/tools.env

# What make run needs: the service with its runtime dependencies, and the client (standard library
# only) for the examples. The targets that test, lint or measure add the development extras on top.
$(VENV)/.installed-runtime: pyproject.toml client/pyproject.toml
	@echo "make: installing llmopt-exporter with its runtime dependencies (PyPI) and the client into $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e . -e ./client
	touch $@

$(VENV)/.installed: $(VENV)/.installed-runtime pyproject.toml
	@echo "make: installing the development extras of pyproject.toml (pytest, ruff, mypy, ...) into $(VENV)"
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv and install the project with its dev tools

tools: ## Unpack what the tests run into .tools (Prometheus, Alertmanager, docker-compose, Node.js); no root, no service
	@scripts/ensure-tools.sh

run: $(VENV)/.installed-runtime ## Start the exporter (runtime dependencies only; ARGS="--port 9500" to change the settings)
	$(VENV)/bin/llmopt-exporter $(ARGS)

test: tools venv lint ## Lint, then run every test: unit, contract, promtool/amtool, end-to-end (what CI runs)
	$(PY) -m pytest

lint: venv ## ruff (lint and format check) and mypy --strict
	$(VENV)/bin/ruff check app mixin tools client tests examples bench
	$(VENV)/bin/ruff format --check app mixin tools client tests examples bench
	$(VENV)/bin/mypy

format: venv ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix app mixin tools client tests examples bench
	$(VENV)/bin/ruff format app mixin tools client tests examples bench

generate: venv ## Write every generated file (rules, PrometheusRule, dashboards, catalog, runbooks, client events, event docs)
	$(PY) -m tools.generate

bench: venv ## Benchmarks against the real process and Pushgateway; rewrites docs/benchmarks.md (< 10 min)
	$(PY) -m bench.run $(ARGS)

soak: venv ## Soak the real exporter on loopback for 3 minutes: zero 5xx, flat memory; writes docs/benchmarks.md
	$(PY) bench/soak.py $(ARGS)

clean: ## Remove the virtualenv, the tools directory and caches
	rm -rf $(VENV) $(TOOLS_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis
