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

.PHONY: install run test check lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install  ## build the index if it is missing or stale, then serve on QA_HOST:QA_PORT (127.0.0.1:8000)
	$(BIN)/qa-service build --if-stale
	$(BIN)/qa-service serve

test: install  ## the full test suite
	$(BIN)/python -m pytest

check: install  ## lint and type-check
	$(BIN)/ruff check qa_service tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) index/builds index/CURRENT
