VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sla-engine serve

test: $(STAMP)
	$(VENV)/bin/ruff check sla_engine tests benchmarks
	$(VENV)/bin/ruff format --check sla_engine tests benchmarks
	$(VENV)/bin/mypy sla_engine
	$(VENV)/bin/pytest

test-fast: $(STAMP)
	$(VENV)/bin/pytest tests/unit

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
