# Lianka — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format bench clean-data clean services-up services-down migrate seed

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install everything (done by run/test too)

run: install ## services + migrations + demo data + web, worker, relay, scheduler (Ctrl-C stops all)
	$(BIN)/lianka run

test: install lint ## lint, then the whole suite on real PostgreSQL + Redis
	$(BIN)/pytest -q

test-fast: install ## the suite without lint
	$(BIN)/pytest -q -x

lint: install ## ruff + mypy (strict on the package)
	$(BIN)/ruff check .
	$(BIN)/mypy -p lianka

format: install ## apply ruff's formatting and fixes
	$(BIN)/ruff check --fix .

bench: install ## benchmarks: figures and ratios to the raw database baseline
	$(BIN)/python -m bench

migrate: install ## apply migrations
	$(BIN)/lianka db upgrade

seed: install ## seed the demo when the database is empty
	$(BIN)/lianka demo seed

services-up: install ## start embedded PostgreSQL + Redis and print their URLs
	$(BIN)/lianka services up

services-down: install ## stop embedded PostgreSQL + Redis
	$(BIN)/lianka services down

clean-data: ## stop the embedded services and delete their data (.lianka/)
	-@test -x $(BIN)/lianka && $(BIN)/lianka services down
	rm -rf .lianka

clean: clean-data ## also remove the virtualenv
	rm -rf $(VENV)
