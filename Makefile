# The two commands of the quick start: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# `serve` needs the package and its runtime dependencies; `test` (and `bench`) the test
# extras too. Each stamp is renewed when pyproject.toml changes.
RUNTIME := $(VENV)/.installed-runtime
TESTING := $(VENV)/.installed-test

.PHONY: serve test lint bench image clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUNTIME): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[native]'
	touch $(RUNTIME)

$(TESTING): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TESTING) $(RUNTIME)

# The data plane's hot modules compiled with mypyc (src/memcloud/native.py); where there is
# no C compiler the build says so and the service runs their pure Python sources. CI
# (MEMCLOUD_REQUIRE_ALL_TOOLS=1) and the benchmark require the build.
NATIVE := $(BIN)/python tools/build_native.py
NATIVE_REQUIRED := $(if $(MEMCLOUD_REQUIRE_ALL_TOOLS),--required,)
# The tests of the compiled modules' behaviour, run a second time on their sources.
DATA_PLANE_TESTS := tests/protocol tests/session tests/storage tests/server tests/binary \
	tests/cluster/test_wire.py tests/cluster/test_channel.py tests/cluster/test_forwarding.py \
	tests/cluster/test_replicas.py tests/test_native.py

serve: $(RUNTIME)
	$(NATIVE)
	$(BIN)/memcloud serve $(ARGS)

test: $(TESTING)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy
	$(NATIVE) $(NATIVE_REQUIRED)
	@if $(NATIVE) --check; then \
		echo "== the data-plane tests on the pure Python sources (MEMCLOUD_PURE_PYTHON=1)"; \
		MEMCLOUD_PURE_PYTHON=1 $(BIN)/pytest -q $(DATA_PLANE_TESTS) || exit 1; \
		echo "== the whole suite on the compiled data plane"; \
	fi
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(TESTING)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy

bench: $(TESTING)
	$(NATIVE) --required
	$(BIN)/python -m bench.run $(ARGS)

# The container image (docs/packaging.md): needs root, debootstrap and a running Docker
# engine (DOCKER_HOST honoured); the Debian base is cached under ~/.cache/memcloud/base.
image: $(RUNTIME)
	PYTHON=$(BIN)/python packaging/build-image.sh $(TAG)

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
	find src -name '*.so' -delete
