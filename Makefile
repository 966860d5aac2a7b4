# Quickstart: `make run` (a backtest on a real trace, embedded defaults) and `make test`.
# Both create .venv when missing and install the project into it; the second time they
# only reinstall when pyproject.toml changed.

VENV ?= .venv
# The first Python >= 3.11 on PATH; override with `make PYTHON=/path/to/python3.12 ...`.
PYTHON ?= $(shell for candidate in python3.13 python3.12 python3.11 python3; do \
	$$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& { command -v $$candidate; break; }; done)
BIN := $(VENV)/bin
STAMP := $(VENV)/.harmony-installed

.PHONY: install run test lint typecheck pytest clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Harmony needs Python >= 3.11 on PATH (python3.11 or newer)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The main job on embedded defaults: GenTD26's request trace as GPU demand for a pool of
# 8-GPU nodes (peak = 32 nodes), 5-minute decisions, 10-minute provisioning, SLA 1%,
# Harmony against the baseline policies with their knobs swept; prints the table and
# the report's path. The trace comes from ../shared/data, or is fetched once.
run: install
	$(BIN)/harmony db upgrade
	$(BIN)/harmony trace fetch gentd26
	$(BIN)/harmony backtest gentd26:requests --sweep

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy forecaster decision

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
