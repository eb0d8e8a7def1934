# Two commands do everything on a fresh machine:  make run   and   make test
# NATS (JetStream), Redis and PostgreSQL must be running at NATS_URL / REDIS_URL / DATABASE_URL
# (defaults: loopback). `make run` says exactly how to start any that is missing.

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PYTEST_ARGS ?=
# Two pytest workers (pytest-xdist), each taking a test file at a time (a whole package where its
# modules share one running system: see conftest.py), in collection order: most of the suite
# waits on real time (calls in real time, timeouts, process starts), so two files share the two
# cores well. Each worker is its own test session, in its own namespace and on its own ports.
PYTEST_WORKERS ?= 2

.PHONY: run install install-test uv migrate seed up test test-deps lint format bench eval compose-up clean

run: install migrate seed up ## install, migrate, seed demo data, start every service, print the URLs

uv:
	@command -v uv >/dev/null 2>&1 || test -x "$(UV)" || python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

install: uv ## install every workspace package and the dev tools from uv.lock (and espeak-ng)
	$(UV) sync --all-packages --frozen
	bash scripts/install-test-deps.sh --speech

migrate: ## apply database migrations (idempotent)
	$(UV) run --frozen callcenter migrate

seed: ## load demo data (idempotent)
	$(UV) run --frozen callcenter seed

up: ## start every service and print the URLs (Ctrl-C stops them)
	$(UV) run --frozen callcenter up

test-deps: ## system tools the tests use (espeak-ng, chromium, helm), installed when missing
	bash scripts/install-test-deps.sh

install-test: uv ## install as `install` does, plus every optional extra (the local-models tests)
	$(UV) sync --all-packages --all-extras --frozen
	bash scripts/install-test-deps.sh --speech

test: install-test test-deps ## lint, then the whole test suite against the real servers
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint:
	$(UV) run --frozen ruff check .

format:
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

bench: install ## run every benchmark in bench/ and write bench/results.md
	$(UV) run --frozen python -m bench

EVAL_ARGS ?=
eval: install migrate seed ## score the assistant on eval/scenarios (starts the services unless they run)
	$(UV) run --frozen callcenter eval --start $(EVAL_ARGS)

compose-up: ## the documented alternative: everything in containers (needs a Docker engine)
	docker compose up --build

clean:
	rm -rf .run test-artifacts .pytest_cache .ruff_cache
