# Set-up and everyday commands. `make run` and `make test` install whatever is missing first.
#
# torch is installed before everything else, pinned to the CPU build: on this project's machines
# `pip install torch==2.13.0` takes a CPU wheel from local disk; elsewhere, override TORCH, e.g.
#   make run TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# axe-core from npm, for the chat widget's accessibility test
BROWSER_DEPS := tests/browser/node_modules/.installed

.PHONY: install browser-deps run test check lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The widget's browser tests inject axe-core from npm (tests/browser/package-lock.json). Without npm
# that one test skips on a developer machine; CI (.ci/run) installs npm and Chromium first.
$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/browser --no-audit --no-fund && touch $@; \
	else \
		echo "npm not found: not installing axe-core (the widget's accessibility test will skip)"; \
	fi

browser-deps: $(BROWSER_DEPS)

run: install  ## build the index if it is missing or stale, then serve on QA_HOST:QA_PORT (127.0.0.1:8000)
	$(BIN)/qa-service build --if-stale
	$(BIN)/qa-service serve

test: install browser-deps  ## the full test suite
	$(BIN)/python -m pytest

check: install  ## lint and type-check
	$(BIN)/ruff check qa_service tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) index/builds index/cache index/CURRENT tests/browser/node_modules
