# One command to run the app, one to run the whole test suite (see README.md).
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: run test lint bench

# The official Stripe CLI (npm @stripe/cli, pinned in package.json): the tests drive the sandbox with it.
NODE_TOOLS := node_modules/.installed

# `make run` installs what running needs, `make test` what testing needs. The package is
# installed as a wheel (no editable install): both run from the checkout, which comes
# first on the import path.
$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip

$(VENV)/.installed-run: setup.cfg pyproject.toml requirements.txt | $(VENV)/bin/python
	$(PYTHON) -m pip install -q '.[sandbox,postgres,shop]'
	touch $@

$(VENV)/.installed: setup.cfg pyproject.toml requirements.txt | $(VENV)/bin/python
	$(PYTHON) -m pip install -q '.[test,sandbox,postgres,shop]'
	touch $@

$(NODE_TOOLS): package.json
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.installed-run
	$(PYTHON) -m demo_shop

# Lint (ruff, over the whole checkout) and types (mypy --strict on the package, as
# pyproject.toml configures it) come first: `make test` fails on either before pytest runs.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . scripts/update-settings-reference
	$(VENV)/bin/mypy

test: lint $(NODE_TOOLS)
	scripts/ensure-postgres
	scripts/ensure-promtool $(VENV)/bin
	$(PYTHON) -m pytest

bench: $(VENV)/.installed
	$(PYTHON) bench/payments.py
