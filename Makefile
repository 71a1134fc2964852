# wafleet: `make run` starts standalone mode, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8080
DATA_DIR ?= ./data
TRANSPORT ?= neonize
PYTEST_ARGS ?=
DEB_PACKAGES ?= libmagic1

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := $(VENV)/tools

.DEFAULT_GOAL := help
.PHONY: help setup system-deps run run-sim sim test unit e2e lint format typecheck bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

system-deps: ## Install the Debian packages wafleet needs (libmagic1) when missing
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[neonize,cluster,firestore,dev]'
	touch $(STAMP)

$(TOOLS)/kubectl: scripts/k8s_tools.py | $(STAMP)
	$(BIN)/python scripts/k8s_tools.py $(TOOLS)

setup: system-deps $(STAMP) $(TOOLS)/kubectl ## Create .venv, install everything (helm, kubectl too)

run: setup ## Start standalone mode on PORT (TRANSPORT=neonize|sim)
	$(BIN)/wafleet standalone --transport $(TRANSPORT) --port $(PORT) --data-dir $(DATA_DIR)

run-sim: ## Standalone mode with the simulated WhatsApp (a demo without a phone)
	$(MAKE) run TRANSPORT=sim

sim: setup ## Start the simulated WhatsApp service alone on port 8090
	$(BIN)/wafleet sim --port 8090

lint: setup ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## Format the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: setup ## mypy --strict
	$(BIN)/mypy

unit: setup ## Unit tests only
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

e2e: setup ## Process-level tests only
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

test: setup lint typecheck ## Everything: lint, types, unit and end-to-end tests
	$(BIN)/pytest $(PYTEST_ARGS)

bench: setup ## Benchmarks (print their figures)
	$(BIN)/python bench/standalone.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/ingest.py

clean: ## Remove the virtualenv and caches (not ./data)
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
