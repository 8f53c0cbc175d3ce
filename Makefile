# netboot: `make run` sets up and serves with the sample configuration; `make test` sets up and runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= $(CURDIR)/.data
CONFIG ?= $(CURDIR)/netboot.yaml

.PHONY: run test venv deps-run deps-test lint typecheck clean mutation fuzz quality

$(VENV)/.installed: pyproject.toml setup.py netboot/servers/_tftp_fast.c
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

deps-run:
	scripts/install-deps.sh run

deps-test:
	scripts/install-deps.sh test

run: deps-run venv
	$(VENV)/bin/netboot serve --config $(CONFIG) --data-dir $(DATA)

lint: venv
	$(VENV)/bin/ruff check netboot tests
	$(VENV)/bin/mypy netboot

test: deps-test venv lint
	$(VENV)/bin/pytest -p no:cacheprovider

# Slower checks of the tests themselves, not part of `make test` (docs/testing.md has the figures).
$(VENV)/.quality: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[quality]'
	touch $@

quality: $(VENV)/.quality

mutation: deps-test quality
	$(PY) tools/mutation.py run

fuzz: quality
	$(PY) tools/fuzz.py

clean:
	rm -rf $(VENV) .data build dist *.egg-info mutants
	find netboot -name '*.so' -delete
