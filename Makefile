# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  := torch==2.13.0

.PHONY: run test setup setup-test clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The CPU wheel of torch lies on this disk; install it first so that no range can pull a CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --disable-pip-version-check $(TORCH)
	$(PY) -m pip install --disable-pip-version-check -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install --disable-pip-version-check -e '.[test,scale]'
	touch $@

setup: $(VENV)/.base
setup-test: $(VENV)/.test

run: setup
	$(VENV)/bin/diffusion-gui

test: setup-test
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
