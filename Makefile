# dvt: `make demo` and `make test` do everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo bench lint clean

setup: $(STAMP)

# torch first and pinned (CPU build): pyproject's `torch>=2.4` is then satisfied, where pip
# alone would resolve a CUDA build of several GB.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e .[dev,dask]
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q -ra tests

demo: setup
	$(VENV)/bin/dvt demo

bench: setup
	$(VENV)/bin/dvt bench

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo_out
