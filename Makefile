VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test lint bench

$(VENV)/.installed-run: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-run
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# A local run is a development run: DEBUG on, so no secret key or manifest is needed.
run: export DJANGO_DEBUG ?= true
run: $(VENV)/.installed-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_demo
	exec bash scripts/run.sh

# Tests run with DEBUG off, as in production, so they need a (throwaway) secret key.
test: export DJANGO_SECRET_KEY ?= tests-only-not-a-secret
test: $(VENV)/.installed-dev
	mkdir -p .test-logs
	$(PY) -m pytest --log-file=.test-logs/pytest.log --log-file-level=DEBUG $(PYTEST_ARGS)
	bash scripts/check-log-secrets.sh .test-logs/pytest.log

# Style, the apps' import direction (pyproject's contracts), types, and module and function
# lengths. mypy loads the settings, which need a (throwaway) secret key.
lint: export DJANGO_SECRET_KEY ?= lint-only-not-a-secret
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) scripts/check_layout.py

# Benchmarks print one JSON line per scenario; see bench/run.py for what each measures.
bench: $(VENV)/.installed-dev
	$(PY) -m bench.run
