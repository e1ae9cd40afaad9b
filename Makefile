# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the tests).
# Both create the virtual environment in .venv on first use.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint docs clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/prunelab demo

# The report's browser test needs Debian's chromium; it is installed where this machine allows, skipped otherwise.
# pytest exits 5 when it collects no test: that is reported, not hidden, but is not a failure of the code.
test: $(BIN)/.installed
	./tools/install-test-browser.sh
	$(BIN)/pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

# ruff's rules are in pyproject.toml; .ci/run lints before it tests.
lint: $(BIN)/.installed
	$(BIN)/ruff check prunelab tests benchmarks tools

# The documentation site (mkdocs.yml, docs/); --strict fails on a broken link or a page left out of the nav.
docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict --site-dir site

clean-venv:
	rm -rf $(VENV)
