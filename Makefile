# Two entry points (see README): `make run` and `make test` set up .venv from the
# pinned set on first use, then run. The install commands here are the ones the
# Docker image runs too (docker/Dockerfile), so CI proves them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
AUDIO ?=
ARGS ?=

.PHONY: install run test bench lint clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --no-cache-dir -r requirements.lock
	$(BIN)/python -m pip install --no-cache-dir --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(if $(AUDIO),APCSCALE_AUDIO=$(AUDIO)) $(BIN)/python -m apcscale.recipes.sweep $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

# The benchmark scripts with quick settings (benchmarks/: each prints its figures as ratios against
# a baseline measured in the same run; the figures in README.md come from their default settings).
# 19 minutes measured on 2 cores shared with other work, half of it the two small sweeps of bench_sweep.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_fit.py
	$(BIN)/python benchmarks/bench_extrapolate.py
	$(BIN)/python benchmarks/bench_prepare.py
	$(BIN)/python benchmarks/bench_stream.py --batches 100 --workers 0 1
	$(BIN)/python benchmarks/bench_train.py --width 64 --batches 30 --repeats 2
	$(BIN)/python benchmarks/bench_cooldown.py --lengths 20000 40000 --seeds 0
	$(BIN)/python benchmarks/bench_downstream.py --files 100 --repeats 1
	$(BIN)/python benchmarks/bench_sweep.py --grid small --frames 50000 --eval-points 10 --modes off frontier

# The Dockerfile (hadolint, every finding fails, as tests/test_docker.py holds it), ruff's lint and
# format checks (configuration in pyproject.toml; `ruff format` and `ruff check --fix` repair most),
# and every Python file compiles. tests/test_makefile.py runs this target.
lint: $(STAMP)
	$(BIN)/hadolint --no-color --failure-threshold info docker/Dockerfile
	$(BIN)/ruff check apcscale benchmarks tests
	$(BIN)/ruff format --check apcscale benchmarks tests
	$(BIN)/python -m compileall -q apcscale benchmarks tests

clean:
	rm -rf $(VENV) .pytest_cache
