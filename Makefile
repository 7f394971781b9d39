# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := --disable-pip-version-check
# The torch build to install when the virtualenv has none. The default takes whatever pip finds
# for torch==2.13.0: the CPU wheel where one is already on the machine (as on ours), but on Linux
# with only the public index the default (CUDA) build. CPU-only Linux:
#   make run TORCH_INDEX=https://download.pytorch.org/whl/cpu
# an NVIDIA GPU: TORCH_INDEX=https://download.pytorch.org/whl/cu128 (see pytorch.org for others).
TORCH       ?= torch==2.13.0
TORCH_INDEX ?=
TORCH_PIP   := $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
# A second virtualenv without PySide6 / pyqtgraph: the Qt-free layers' tests run there too.
NOQT    ?= .venv-noqt
NOQT_PY := $(NOQT)/bin/python
QT_FREE_TESTS := tests/core tests/sessions tests/export tests/models

.PHONY: run test test-fast test-noqt lint setup setup-test clean

$(VENV)/.base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first (see TORCH above), so that the range in pyproject.toml never pulls another build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install $(PIP) $(TORCH_PIP)
	$(PY) -m pip install $(PIP) -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install $(PIP) -e '.[test,scale]'
	touch $@

$(NOQT)/.base: pyproject.toml
	test -x $(NOQT_PY) || $(PYTHON) -m venv $(NOQT)
	$(NOQT_PY) -c "import torch" 2>/dev/null || $(NOQT_PY) -m pip install $(PIP) $(TORCH_PIP)
	# every dependency but the Qt ones, then the package itself without its dependencies
	$(NOQT_PY) tools/requirements.py --without PySide6-Essentials pyqtgraph pytest-qt import-linter ruff \
	    --extra test > $(NOQT)/requirements.txt
	$(NOQT_PY) -m pip install $(PIP) -r $(NOQT)/requirements.txt
	$(NOQT_PY) -m pip install $(PIP) --no-deps -e .
	touch $@

setup: $(VENV)/.base
setup-test: $(VENV)/.test

run: setup
	$(VENV)/bin/diffusion-gui

lint: setup-test
	$(VENV)/bin/ruff check diffusion_gui tests benchmarks tools
	$(VENV)/bin/lint-imports

# everything: the linters, every test (slow ones included), the Qt-free tests without Qt. The
# Qt-free layers' fast tests run once, there (the main run leaves them out: tests/conftest.py)
test: lint
	DIFFUSION_GUI_QT_FREE_ELSEWHERE="$(QT_FREE_TESTS)" OMP_NUM_THREADS=1 $(PY) -m pytest -q
	$(MAKE) test-noqt

# the edit loop: the linters and the tests not marked slow
test-fast: lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not slow"

test-noqt: $(NOQT)/.base
	$(NOQT_PY) -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('PySide6', 'pyqtgraph')))"
	OMP_NUM_THREADS=1 $(NOQT_PY) -m pytest -q -m "not slow" -p no:cacheprovider $(QT_FREE_TESTS)

clean:
	rm -rf $(VENV) $(NOQT) build *.egg-info
