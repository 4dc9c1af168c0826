# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: demo test lint testdata venv bench freeze clean

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-test.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

## Set up and run the whole pipeline offline on the sample (Airflow DAG run, then validation).
demo: $(STAMP)
	$(PY) -m bigearthnet_s1.demo

## Install what the tests need (incl. a throwaway PostgreSQL), lint and type-check, then run them.
test: lint testdata
	$(PY) -m pytest -q

## Fetch, verify (sha256) and cache the test data from pinned releases; after this the tests run offline.
testdata: $(STAMP)
	$(PY) -m bigearthnet_s1.testdata

## Style (ruff) and types (mypy) on the library, the DAG and the plugins; zero findings.
lint: $(STAMP)
	$(VENV)/bin/ruff check src dags plugins tests bench scripts
	$(VENV)/bin/mypy src/bigearthnet_s1 plugins/bigearthnet_s1_airflow dags

## Benchmarks: each prints its figures and ratios.
bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

## Re-pin requirements.txt from the venv (test-only packages stay in requirements-test.txt).
freeze:
	$(PIP) freeze --exclude-editable | $(PY) scripts/freeze_requirements.py

clean:
	rm -rf $(VENV) demo-work .pytest_cache
