# llmopt-exporter: every habit has one entry point. `make help` lists them.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv tools run test lint format generate bench soak clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	$(VENV)/bin/pip install --quiet -e ./client
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv and install the project with its dev tools

tools: ## Install what the tests run when missing: Prometheus, Alertmanager, docker-compose, the dashboard schema check
	@scripts/ensure-tools.sh

run: venv ## Start the exporter with the default settings (ARGS="--port 9500" to change them)
	$(VENV)/bin/llmopt-exporter $(ARGS)

test: venv tools lint ## Lint, then run every test: unit, contract, promtool/amtool, end-to-end (what CI runs)
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

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
