# Everything a newcomer needs: `make demo` and `make test` work from a clean clone
# with only Python 3.11, pip and make present.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench typecheck clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

typecheck: $(STAMP)
	$(BIN)/pip install --quiet mypy
	$(BIN)/mypy --ignore-missing-imports meerkat actors

clean:
	rm -rf $(VENV) build *.egg-info
