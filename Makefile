# The two commands at the top of the README: `make sync` (the main job) and `make test` (the suite).
# Each creates .venv and installs what it needs (redis-server, PostgreSQL, chromium included) from a clean clone.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: sync test test-fast lint compose-config airflow bench-scale bench-scheduled deps redis-server postgresql chromium docker-compose clean

sync: deps redis-server  ## One real sync, end to end, against the local CRM sandboxes (airflow dags test).
	bash scripts/run_sync.sh

# Tests run on every core (pytest-xdist): each worker has its own Redis, PostgreSQL, sandboxes and Airflow project
# (tests/conftest.py). Files go out heaviest first, a file to a worker so its module fixtures stay in one worker;
# the DAG-run files (function fixtures only) go out test by test (tests/xdist_order.py).
XDIST := -n auto --dist loadfile

test: deps redis-server postgresql chromium compose-config  ## Lint (ruff, mypy), then the whole test suite (unit, DAG integrity, integration).
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	bash scripts/run_tests.sh $(XDIST)

test-fast: deps redis-server postgresql  ## The inner loop: unit and DAG tests only (no sandboxes, no Airflow runs).
	bash scripts/run_tests.sh $(XDIST) -m "not integration and not slow" -q

airflow: deps redis-server postgresql  ## The real Airflow (UI, scheduler, dag-processor, triggerer; PostgreSQL, LocalExecutor) wired to the sandboxes.
	bash scripts/run_airflow.sh

bench-scale: deps redis-server postgresql  ## The DAG at scale (3 windows) vs. the minimum of calls, the rate-limit floor and the naive script.
	$(PY) benchmarks/bench_scale.py $(BENCH_ARGS)

bench-scheduled: deps redis-server postgresql  ## bench-scale's initial sync under the scheduler and two Celery workers.
	$(PY) benchmarks/bench_scheduled.py $(BENCH_ARGS)

compose-config: docker-compose  ## Validate docker-compose.yaml without a Docker daemon.
	docker-compose -f docker-compose.yaml config -q

# mypy: strict on plugins/ and include/ (pyproject.toml [tool.mypy]); its cache in .mypy_cache keeps a re-run quick.
lint: deps  ## ruff, then the type checker.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

deps: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# Debian's docker-compose (v1) validates the compose file with no Docker engine.
docker-compose:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  echo "installing docker-compose (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq docker-compose >/dev/null; }

# The tests start their own private PostgreSQL cluster (tests/conftest.py: postgres_url) from these binaries.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "installing postgresql (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# The sync-health view's browser test drives Debian's chromium through its chromedriver (nothing downloads a browser).
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  echo "installing chromium and chromium-driver (Debian packages)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

clean:
	rm -rf .airflow .pytest_cache .ruff_cache .mypy_cache
