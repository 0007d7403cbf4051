# One entry point for people and CI. Everything installs into .venv and .cache/ in this repo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup up test check proto asyncapi api-docs bench bench-pipeline clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## setup: Python packages, Kafka jars (Maven) and PostgreSQL binaries (apt, when root)
setup: $(STAMP)
	bash deploy/local/setup.sh

## up: set up, then run Kafka and the four services until Ctrl-C
up: setup
	$(BIN)/xiezuo up

## proto: regenerate gen/python from proto/
proto: $(STAMP)
	$(BIN)/python tools/gen_proto.py

## asyncapi: regenerate docs/asyncapi.yaml and schemas/events/ from services/contracts
asyncapi: $(STAMP)
	$(BIN)/python tools/gen_asyncapi.py

## api-docs: regenerate docs/api/ (gRPC reference) from proto/
api-docs: $(STAMP)
	$(BIN)/python tools/gen_api_docs.py

## check: generated code, event catalogue, event schemas, k8s components and API reference current, buf lint,
## compatibility with the last release tag (buf breaking, event schemas), doc links, ruff, mypy
check: $(STAMP)
	$(BIN)/python tools/gen_proto.py --check
	$(BIN)/python tools/gen_asyncapi.py --check
	$(BIN)/python tools/gen_k8s.py --check
	$(BIN)/python tools/gen_api_docs.py --check
	$(BIN)/buf lint proto
	$(BIN)/python tools/check_compat.py
	$(BIN)/python tools/check_links.py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: set up, check, then every test (unit, integration, e2e) on real Kafka and PostgreSQL
test: setup check
	$(BIN)/pytest -p no:cacheprovider -ra

## bench: the bus ceiling benchmark (JSON on stdout)
bench: setup
	$(BIN)/python bench/bus_ceiling.py

## bench-pipeline: the whole pipeline under stepped open-loop load (table; see bench/README.md)
bench-pipeline: setup
	$(BIN)/python bench/pipeline.py $(ARGS)

clean:
	rm -rf $(VENV) .state .mypy_cache .ruff_cache
