# The two set-up commands a newcomer needs: `make demo` and `make test`.
# Both install what they need (uv, the locked virtualenv, Debian packages, the S3 server).
SHELL := /bin/bash
UV_VERSION := 0.13.8
# The services' state dir is private to its user (deploy/state_dir.sh); the script names it.
SERVICES_ENV := "$$(deploy/services.sh env-file)"
PYTEST_ARGS ?= -m "not wip" --durations=25

.PHONY: venv venv-torch demo test lint unit unit-under-load integration services-up services-down serving-base bench clean

venv: .venv/.synced
.venv/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install -q "uv==$(UV_VERSION)"
	uv sync --frozen
	@touch $@

# The suite also trains with PyTorch (the `rayline[torch]` extra): PyPI's wheels carry
# CUDA (about 3 GB; half a minute here). `--inexact` keeps what `venv` installed.
venv-torch: .venv/.synced-torch
.venv/.synced-torch: .venv/.synced
	uv sync --frozen --inexact --extra torch
	@touch $@

demo: venv
	uv run rayline demo

lint: venv
	uv run ruff check src tests benchmarks
	uv run mypy

services-up:
	deploy/services.sh install
	deploy/services.sh up
	deploy/zookeeper.sh install
	deploy/monitoring.sh install

services-down:
	deploy/services.sh down

# The serving base image (debootstrap + wheels, `docker build --network none`): built
# once into the Docker engine's data root and reused while its recipe and pins match.
serving-base: venv services-up
	source $(SERVICES_ENV); uv run rayline images build-base --quiet

# Unit tests need no services; integration tests run against the real services,
# which are started here and stopped afterwards even when a test fails.
test: venv venv-torch lint services-up serving-base
	@set -o pipefail; source $(SERVICES_ENV); \
	status=0; uv run pytest $(PYTEST_ARGS) || status=$$?; \
	[ -n "$$KEEP_SERVICES" ] || deploy/services.sh down; exit $$status

unit: venv
	uv run pytest tests/unit $(PYTEST_ARGS)

# The unit suite RUNS times in a row beside two busy processes: races against
# background threads show up here long before they turn CI red.
RUNS ?= 10
unit-under-load: venv
	tests/under_load.sh $(RUNS) 2

integration: venv venv-torch services-up serving-base
	source $(SERVICES_ENV); uv run pytest tests/integration $(PYTEST_ARGS)

bench: venv services-up
	source $(SERVICES_ENV); uv run python benchmarks/artifact_throughput.py

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
