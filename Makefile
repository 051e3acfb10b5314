# Every target bootstraps .venv itself, so a fresh machine needs only `make demo` / `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test coverage lint typecheck imports bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m evalcore.local.demo

# Prefect server + reference target + served deployments on loopback; Ctrl-C stops all.
serve: $(STAMP)
	$(BIN)/evalcore up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The one-way import rule between the loop's stages (pyproject.toml, [tool.importlinter]).
imports: $(STAMP)
	$(BIN)/lint-imports

# One pytest worker per core (pytest-xdist); each has its own databases, Prefect server,
# fake Slack and ports (tests/conftest.py). Work stealing keeps both cores busy to the end
# when the last tests are long ones (a real Prefect server, the demo).
PYTEST := $(BIN)/pytest -q -n auto --dist worksteal

test: lint typecheck imports
	$(PYTEST)

# Line coverage of the packages, with the test run of `make test` (its data kept in .venv).
coverage: $(STAMP)
	COVERAGE_FILE=$(VENV)/.coverage $(PYTEST) --cov=evalcore --cov=flows --cov=deployments \
		--cov-report=term

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .evalcore .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
