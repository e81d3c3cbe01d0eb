# Two commands: `make run` and `make test` (see README).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest chromium bench clean

# The project's sources compiled ahead (only what changed): where PYTHONDONTWRITEBYTECODE
# is set, every process would otherwise compile them again, a third of a command's start.
install: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 app wholesale numbering plans migrations bench >/dev/null

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c constraints.txt --config-settings editable_mode=compat -e '.[dev]'
	@touch $(STAMP)
	@echo "installed: $(BIN)/mvno"

run: install
	mkdir -p instance
	$(BIN)/mvno db upgrade
	$(BIN)/mvno demo load
	COOKIE_SECURE=$${COOKIE_SECURE:-0} $(BIN)/gunicorn --bind 127.0.0.1:$(PORT) \
		--workers $${WEB_CONCURRENCY:-2} --no-control-socket --access-logfile - wsgi:app

# Debian's chromium for the browser tests; never a downloaded browser build.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's chromium"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium is missing: run 'sudo apt-get install chromium'" >&2; exit 1; \
		fi; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Every benchmark runs; the target fails if any of them reports a failure.
BENCHES := bench/bench_numbers.py bench/bench_postings.py bench/bench_import.py bench/bench_renewals.py \
	bench/bench_cdr.py bench/bench_settlement.py bench/bench_exit.py

bench: install
	@status=0; for b in $(BENCHES); do $(BIN)/python "$$b" || status=1; done; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
