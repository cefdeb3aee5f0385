# One command to run the app, one to run the whole test suite (see README.md).
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: run test bench

# The official Stripe CLI (npm @stripe/cli, pinned in package.json): the tests drive the sandbox with it.
NODE_TOOLS := node_modules/.installed

$(VENV)/.installed: setup.cfg pyproject.toml requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[test,sandbox,postgres,shop]'
	touch $@

$(NODE_TOOLS): package.json
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.installed
	$(PYTHON) -m demo_shop

test: $(VENV)/.installed $(NODE_TOOLS)
	scripts/ensure-postgres
	scripts/ensure-promtool $(VENV)/bin
	$(PYTHON) -m pytest

bench: $(VENV)/.installed
	$(PYTHON) bench/payments.py
