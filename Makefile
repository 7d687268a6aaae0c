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

# The CLI with the offline mock provider, in a throw-away state root: a streamed
# first turn, a resumed turn, the session list; then the same host from Python.
demo: $(STAMP)
	@root=$$(mktemp -d); trap 'rm -rf "$$root"' EXIT; \
	rkat="$(BIN)/rkat --state-root $$root/realms"; \
	export RKAT_MOCK_TOKEN_DELAY_MS=40; set -e; \
	echo '$$ rkat run --stream "What is the capital of France?"'; \
	$$rkat run --stream "What is the capital of France?"; \
	echo; echo '$$ rkat run --resume last --stream "Now explain it in more detail"'; \
	$$rkat run --resume last --stream "Now explain it in more detail"; \
	echo; echo '$$ rkat c "What time is it? tool:datetime"'; \
	$$rkat c "What time is it? tool:datetime"; \
	echo; echo '$$ rkat run --label demo=yes "A second session"'; \
	$$rkat run --label demo=yes "A second session"; \
	echo; echo '$$ rkat session list'; \
	$$rkat session list; \
	echo; echo '$$ rkat session show ~2'; \
	$$rkat session show ~2; \
	echo; echo '### the same host from Python (examples/demo.py)'; \
	RKAT_MOCK_TOKEN_DELAY_MS= $(BIN)/python examples/demo.py "$$root/python"

# The published meerkat-sdk 0.9.6, for tests/test_sdk_published.py. Its package is also
# named `meerkat`, so it lives in a venv of its own; the tests only run it as a client.
SDK_VENV := .venv-sdk
SDK_STAMP := $(SDK_VENV)/.installed

$(SDK_STAMP):
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet meerkat-sdk==0.9.6
	touch $(SDK_STAMP)

test: $(STAMP) $(SDK_STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

typecheck: $(STAMP)
	$(BIN)/pip install --quiet mypy
	$(BIN)/mypy --ignore-missing-imports meerkat actors

clean:
	rm -rf $(VENV) $(SDK_VENV) build *.egg-info
