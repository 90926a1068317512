# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration tools prometheus crds clean-cluster mutation

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# setup-node.sh: the real node's Debian packages (containerd, runc, CNI plugins, iptables,
# mmdebstrap), installed as root when missing; setup-registry.sh: docker-registry and
# apache2-utils (htpasswd), for the dev cluster's OCI registry.
tools:
	bash scripts/setup-node.sh
	bash scripts/setup-registry.sh
	bash scripts/build-tools.sh >/dev/null

# setup-prometheus.sh: Debian's prometheus package (promtool, and the server the tests run on
# loopback), installed as root when missing; the package's own service is left stopped.
prometheus:
	bash scripts/setup-prometheus.sh

# The chart carries the same CRDs (helm installs a chart's crds/ before its templates).
crds: $(STAMP)
	$(PY) -m enclave_operator.api.crds --write config/crd
	$(PY) -m enclave_operator.api.crds --write charts/enclave-operator/crds

demo: $(STAMP) tools
	bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	PYTHONPATH=src $(BIN)/lint-imports  # the layer contracts in .importlinter, on this tree

# Mutation testing of the pure core (minutes; not part of `make test`, so not in CI).
mutation: $(STAMP)
	VENV=$(VENV) bash scripts/mutation.sh

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) prometheus
	$(BIN)/pytest -m 'not integration' tests

integration: $(STAMP) tools prometheus
	$(BIN)/pytest -m integration tests

test: lint typecheck tools prometheus
	$(BIN)/pytest tests

clean-cluster: $(STAMP)
	$(BIN)/enclavectl dev-cluster down
