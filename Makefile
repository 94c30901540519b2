# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
AWAN := $(VENV)/bin/awan
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
comma := ,
PYTEST_ARGS ?=
# `make test` runs in this many pytest-xdist worker processes (the suite is CPU-bound Python: one process
# uses one core); PYTEST_WORKERS=0 runs it in one process. The slow suites stay in one process: they run
# real services whose own processes need the cores.
PYTEST_WORKERS ?= 2
# uv into .venv (pip-installs uv first where it is missing); $(1) is the extras to install.
uv_install = command -v uv >/dev/null 2>&1 || python3 -m pip install -q uv; \
	test -x $(PY) || (command -v uv >/dev/null 2>&1 && uv venv -q $(VENV) || python3 -m uv venv -q $(VENV)); \
	(command -v uv >/dev/null 2>&1 && uv pip install -q --python $(PY) -e '.[$(1)]') \
	  || python3 -m uv pip install -q --python $(PY) -e '.[$(1)]'


.PHONY: install test-deps run test test-slow test-all test-fast bench lint typecheck clean

# Everything: the service, every cloud's SDK, the mock clouds and the test and lint tools.
$(STAMP): pyproject.toml
	@$(call uv_install,dev)
	@touch $@ $(RUN_STAMP)

# What running needs: the service, every cloud's SDK and the mock clouds (no test tools, no browsers).
$(RUN_STAMP): pyproject.toml
	@$(call uv_install,all$(comma)mock)
	@touch $@

install: $(STAMP)

# kubectl and chromium, which only the tests drive (Debian packages; see the script).
test-deps:
	@bash scripts/system-deps.sh

run: $(RUN_STAMP)
	@$(AWAN) demo

# The suite under 10 minutes on 2 cores; the suites marked slow (real processes killed, long
# end-to-end walks) run in `make test-slow`, which CI runs after it (.ci/run).
test: install test-deps
	$(PY) -m pytest -m "not slow" -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-slow: install test-deps
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: install test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install test-deps
	$(PY) -m pytest -m "not slow" -x -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check controlplane providers infra mockclouds tests bench
	$(VENV)/bin/mypy controlplane providers infra mockclouds

typecheck: install
	$(VENV)/bin/mypy --strict controlplane

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
