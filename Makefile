# `make run`  - install what running needs into .venv and serve the gateway on 127.0.0.1:7071.
#               Without CONFIG_PATH it serves config/local.yaml against a local
#               Azure OpenAI simulator started alongside (no Azure account needed).
# `make test` - install into .venv, run the lint and type gate (`make lint`), then every test.
# `make lint` - ruff (lint and format check) and mypy over every Python file: core/, function_app.py, azure_sim/,
#               tests/, bench/ (settings in pyproject.toml).
# `make bench` - measure added latency, throughput, CPU, memory, against a naive proxy (see bench/README.md).
# `make mutate` - mutation testing of every module that serves or counts a call (mutmut; hours, not in CI; docs/testing.md, "Mutation testing").
# `make lock` - pin requirements.txt (what Azure installs) from requirements.in.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# What `make run` needs alone: the app and the local host (requirements-run.txt), not the test and lint tools.
RUN_STAMP := $(VENV)/.installed-run
# checkov pins many packages of its own: it gets a venv of its own, for the infra checks.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7071
# The simulator's port for `make run` (config/local.yaml names 8081; `core demo` points it elsewhere when asked).
SIM_PORT ?= 8081
# The Function App's Python (infra/main.bicep's pythonVersion); Flex Consumption runs Linux.
LOCK_PYTHON := 3.11
# `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest version requirements.in allows.
LOCK_FLAGS ?=
# Every Python file: the simulator, tests and benchmarks are code too (mypy's own list is in pyproject.toml).
LINTED := core function_app.py azure_sim tests bench

.PHONY: install run lint test check bench mutate schema lock clean

$(RUN_STAMP): requirements.txt requirements-run.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements-run.txt
	touch $(RUN_STAMP)

$(STAMP): requirements.txt requirements-run.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $(STAMP) $(RUN_STAMP)

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q "checkov>=3.2,<4"
	touch $(CHECKOV_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	@if [ -n "$$CONFIG_PATH" ]; then \
	  exec $(BIN)/python -m core serve --host $(HOST) --port $(PORT); \
	fi; \
	echo ""; \
	echo "Try it (in another terminal):"; \
	echo "  curl http://$(HOST):$(PORT)/v1/chat/completions -H 'Authorization: Bearer local-dev-key' \\"; \
	echo "       -H 'Content-Type: application/json' -d '{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'"; \
	echo ""; \
	exec $(BIN)/python -m core demo --host $(HOST) --port $(PORT) --sim-port $(SIM_PORT)

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

test: lint $(CHECKOV_STAMP)
	$(BIN)/python -m pytest -q

check: install
	$(BIN)/python -m core check

bench: install
	$(BIN)/python -m bench

# The tests run their gateways in-process, so mutmut sees which test reaches which function.
# MUTANTS narrows the run to some modules, e.g. MUTANTS='core.inbound*'.
MUTANTS ?=
mutate: install
	GATEWAY_IN_PROCESS=1 $(BIN)/mutmut run $(MUTANTS)
	$(BIN)/mutmut results

schema: install
	$(BIN)/python -m core schema > config/schema.json
	$(BIN)/python -m core schema --doc docs/configuration.md

# Keeps the current pins where requirements.in still allows them, so a new dependency moves only what it must.
lock: install
	$(BIN)/uv pip compile requirements.in -o requirements.txt --python-version $(LOCK_PYTHON) \
	  --python-platform linux --custom-compile-command "make lock" --quiet $(LOCK_FLAGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .cache mutants
