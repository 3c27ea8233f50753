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

clean:
	rm -rf $(VENV) .pytest_cache
