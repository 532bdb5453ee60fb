# The two commands of the README: `make run` and `make test`. Each creates .venv and installs
# first, from the lock: requirements/dev.lock (`make lock` regenerates it from pyproject.toml),
# then the gateway and its development tools (devtools/: sandbox timebank, demo site), editable.
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEV_LOCK := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
PYTEST_ARGS ?=
# The locks: every platform's wheels hashed, for Python 3.11 and newer (markers leave out what
# a version does not need). LOCK_ARGS=--upgrade moves every pin to the newest release.
UV := uv==0.13.9
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock"
LOCK_ARGS ?=

.PHONY: run test lint bench lock clean

$(STAMP): pyproject.toml devtools/pyproject.toml $(DEV_LOCK)
	@test -n "$(PYTHON)" || { echo "Error: Python 3.11 or newer is needed (3.11: the lock's own)." >&2; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if $(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK); then :; \
	elif $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] == (3, 11))'; then \
		echo "$(DEV_LOCK) does not install on $$($(BIN)/python -V): installing the newest" \
			"releases pyproject.toml allows instead (unpinned, not what CI tests)." >&2; \
		$(BIN)/python -m pip install --quiet -e '.[dev]'; \
	else exit 1; fi
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@# The sandbox timebank and the demo site: development tools, never in the wheel or image;
	@# everything they import is in the dev lock.
	$(BIN)/python -m pip install --quiet --no-deps -e ./devtools
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# The runtime lock is resolved within the dev lock, so the image runs the versions CI tested.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(UV)"
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) $(LOCK_ARGS) -o $(DEV_LOCK)
	$(BIN)/uv pip compile pyproject.toml -c $(DEV_LOCK) $(LOCK_FLAGS) $(LOCK_ARGS) \
		-o $(RUNTIME_LOCK)

clean:
	rm -rf $(VENV) var .pytest_cache
