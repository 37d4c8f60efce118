# The Flat Minima book. `make book` builds it, `make test` runs every test; both set up
# the environment (.venv) themselves on a fresh machine that has Python 3.11 and pip.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install book test serve lab browser-deps lint bench clean

# requirements-notebook.txt pins the reader's environment (shared with binder/requirements.txt);
# binder/overrides.json holds the JupyterLab settings Binder installs too (open .md chapters
# as notebooks, save widget state with a notebook).
$(STAMP): requirements.txt requirements-notebook.txt pyproject.toml binder/overrides.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m flatlib.nets.data
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp binder/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

install: $(STAMP)

## Build the HTML book into _build/html, executing every chapter in quick mode (cached).
book: install
	$(BIN)/jupyter-book build . -W -n --keep-going

## Unit, notebook, strict-build and browser tests.
test: install browser-deps
	$(BIN)/python -m pytest

## Serve the built book on http://localhost:8000
serve: book
	$(BIN)/python -m http.server --directory _build/html 8000

## The chapters as live notebooks in JupyterLab (what Binder runs), on http://localhost:8888
lab: install
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=8888 chapters/01_stability.md

## Debian's Chromium for the browser tests (installed when running as root).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "The browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; \
	  fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check flatlib tests benchmarks _ext

## Curvature-engine benchmark against PyHessian and curvlinops.
bench: install
	$(BIN)/python -m pip install -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/bench_hessian.py

clean:
	rm -rf _build test-artifacts
