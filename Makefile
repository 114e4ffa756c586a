# Two-command quick start: `make demo` runs a session on the simulated patient,
# `make test` runs the whole test suite.  Both create .venv when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# LSL stays on this machine: loopback-only liblsl configuration (see README, "LSL scope").
export LSLAPICFG := $(CURDIR)/sensors/lsl_api.cfg

.PHONY: demo test bench clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The DSP's compiled kernels (numba) are built once, at install, into __pycache__: importing
# the pipeline compiles and caches them, so no session compiles on its first tick.
WARM := $(BIN)/python -c "import adaptive.pipeline"

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(WARM)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(WARM)
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(WARM)
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/calmloop demo

test: $(VENV)/.installed-test
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(BIN)/python -m pytest -q
	$(BIN)/lint-imports

bench: $(VENV)/.installed-bench
	$(BIN)/calmloop bench dsp

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
