# Lianka — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist processes for `make test` (each gets its own test database and Redis databases)
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format bench clean-data clean services-up services-down migrate seed i18n

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

test: install lint ## lint, then the whole suite on real PostgreSQL + Redis (browser tests when chromium is found)
	@command -v chromium >/dev/null 2>&1 || echo "make test: no 'chromium' on PATH, so the browser tests (tests/browser) are SKIPPED; install Debian's chromium (apt-get install chromium) to run them"
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

test-fast: install ## the suite without lint
	$(BIN)/pytest -q -x

lint: install ## ruff + mypy (strict on the package; tests and benchmarks too)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy -p lianka
	$(BIN)/mypy tests bench

format: install ## apply ruff's formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

i18n: install ## console translations: extract the messages, update the zh_CN and en catalogs, compile them
	cd web && ../$(BIN)/pybabel extract -F ../babel.cfg --add-location=file --sort-output --no-wrap -k NP_:1c,2 \
		--project=Lianka -o i18n/messages.pot .
	for locale in zh_CN en; do \
		if [ -f web/i18n/$$locale/LC_MESSAGES/messages.po ]; then \
			$(BIN)/pybabel update -i web/i18n/messages.pot -d web/i18n -l $$locale --no-fuzzy-matching --no-wrap --ignore-obsolete; \
		else $(BIN)/pybabel init -i web/i18n/messages.pot -d web/i18n -l $$locale --no-wrap; fi; \
	done
	$(BIN)/python -m lianka.web.console.catalogs fill-en
	$(BIN)/pybabel compile -d web/i18n --statistics

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
