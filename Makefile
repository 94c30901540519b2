# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
AWAN := $(VENV)/bin/awan
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test-deps run test test-fast bench lint clean

$(STAMP): pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv
	@test -x $(PY) || (command -v uv >/dev/null 2>&1 && uv venv -q $(VENV) || python3 -m uv venv -q $(VENV))
	@(command -v uv >/dev/null 2>&1 && uv pip install -q --python $(PY) -e '.[dev]') || python3 -m uv pip install -q --python $(PY) -e '.[dev]'
	@touch $@

# Python packages only: what running needs.
install: $(STAMP)

# kubectl and chromium, which only the tests drive (Debian packages; see the script).
test-deps:
	@bash scripts/system-deps.sh

run: install
	@$(AWAN) demo

test: install test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install test-deps
	$(PY) -m pytest -m "not slow" -x $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check controlplane providers infra mockclouds tests bench
	$(VENV)/bin/mypy controlplane providers infra mockclouds

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
