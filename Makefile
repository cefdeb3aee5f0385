# One command to run the app, one to run the whole test suite (see README.md).
VENV ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: run test bench

$(VENV)/.installed: setup.cfg pyproject.toml requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[test,sandbox,postgres,shop]'
	touch $@

run: $(VENV)/.installed
	$(PYTHON) -m demo_shop

test: $(VENV)/.installed
	scripts/ensure-postgres
	scripts/ensure-promtool $(VENV)/bin
	$(PYTHON) -m pytest

bench: $(VENV)/.installed
	$(PYTHON) bench/payments.py
