# Two commands: `make run` and `make test`. Everything else is a helper for them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
SIMULATE ?= 1
SIM_COUNT ?= 3
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run test test-fast lint bench migrations-check chromium haproxy

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py load_demo
	DEBUG=true $(PY) manage.py load_demo_billing
	DEBUG=true $(PY) manage.py load_demo_power
	DEBUG=true $(PY) manage.py serve --port $(PORT) --simulate $$( [ "$(SIMULATE)" = "0" ] && echo 0 || echo $(SIM_COUNT) )

# Browser tests drive Debian's Chromium; install it when it is missing (CI runs as root).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The TLS end-to-end tests (security profiles 2 and 3) run Debian's HAProxy with deploy/haproxy/ocpp.cfg.
haproxy:
	@command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }

# With CI=true the suite runs against PostgreSQL and Redis (and fails if they are missing).
# The test process itself runs without the connection pool (DB_POOL=false): its many short-lived
# threads (communicators, sync_to_async) each keep a connection, as Django's test runner expects,
# and a bounded pool there runs dry; the servers the tests start run the production pool
# (tests/conftest.py, start_live_server). Then the zero-config setup (SQLite, in-memory channel layer) runs the tests of the code that
# differs by backend: the OCPP consumer, connection state and message log (ORM writer instead of
# COPY), the settings, and the real server on SQLite over a socket. The rest of the suite does
# not branch on the backend; running all of it twice doubled CI's time.
SQLITE_TESTS ?= tests/chargers tests/backoffice tests/e2e/test_charger_over_socket.py \
	tests/e2e/test_durability.py tests/e2e/test_ocpp201_charger.py tests/perf/test_sigterm_flush.py
test: install chromium haproxy
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run >/dev/null || { echo "Missing migrations: run manage.py makemigrations"; exit 1; }
	DEBUG=true $(VENV)/bin/lint-imports --no-cache >/dev/null || { $(VENV)/bin/lint-imports --no-cache; exit 1; }
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet . || { echo "Unformatted files: run .venv/bin/ruff format ."; exit 1; }
	DEBUG=true $(VENV)/bin/mypy
	@if [ "$$CI" = "true" ]; then \
	  echo "== PostgreSQL + Redis ==" && \
	  DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) REQUIRE_SERVICES=true CONN_MAX_AGE=0 DB_POOL=false BENCH_SMOKE=1 \
	    $(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS) && \
	  DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) REQUIRE_SERVICES=true CONN_MAX_AGE=0 DB_POOL=true \
	    $(PY) -m pytest -p no:cacheprovider -q $(PYTEST_ARGS) tests/backoffice/test_db_threads_pool.py && \
	  echo "== SQLite, in-memory channel layer ==" && \
	  env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -p no:cacheprovider -m "not browser" $(PYTEST_ARGS) $(SQLITE_TESTS); \
	else \
	  $(PY) -m pytest $(PYTEST_ARGS); \
	fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

migrations-check: install
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run

# `make bench` runs every scenario (docs/performance.md); BENCH_ARGS picks, e.g.
# BENCH_ARGS="--only scaleout" or BENCH_ARGS=--soak (only the 1-hour soak, bench/soak.py).
bench: install
	$(PY) -m bench $(BENCH_ARGS)
