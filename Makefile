VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pytest-xdist: two worker processes, each integration module whole on one worker
# (tests/conftest.py groups them). `make test XDIST=` runs in one process.
XDIST ?= -n 2 --dist loadgroup

.PHONY: run test test-fast bench lint clean browser

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,all]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/sla-engine serve

test: $(STAMP) browser
	$(VENV)/bin/ruff check sla_engine tests benchmarks
	$(VENV)/bin/ruff format --check sla_engine tests benchmarks
	$(VENV)/bin/mypy sla_engine
	$(VENV)/bin/pytest $(XDIST)

# Headless Chromium and its driver from the system's packages, for the dashboard's browser
# tests (tests/integration/test_dashboard.py); without them those tests skip locally.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	  echo "note: could not install chromium (needs root): the browser tests will skip"

test-fast: $(STAMP)
	$(VENV)/bin/pytest $(XDIST) tests/unit

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
