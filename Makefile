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
# Python keeps the bytecode it compiles (__pycache__, ignored by git) even where the machine's
# environment says not to (PYTHONDONTWRITEBYTECODE=1 here): without it every process compiled
# the project's sources again: a server a test starts spent 1 s of its 3.7 s start on it, and
# each pytest worker 20 s of its 34 s collection (pytest caches its rewritten tests only then).
export PYTHONDONTWRITEBYTECODE :=

# uv installs the pinned packages (pyproject.toml) into the venv: the same versions pip picks
# (checked by `pip freeze` on both), in 22 s instead of pip's 40 s on a fresh clone, which every
# CI run starts from (docs/testing.md). The bytecode is compiled at install, once, rather than by
# the first processes of the run that import each module at the same time.
UV ?= uv==0.9.30

.PHONY: install run test checks test-fast lint bench bench-curves migrations-check chromium haproxy

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(UV)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/uv pip install -q --compile-bytecode -e '.[dev]'
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

# The checks before the tests run at once, each into its own log; every one that fails is shown
# with its output and fails the run. Their caches (mypy, ruff) live outside the checkout, in one
# directory for every checkout of the user (CHECK_CACHE): mypy and ruff check each file against
# its hash, so a fresh clone starts warm; import-linter keeps none.
CHECK_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/evportal-checks
checks: install
	@cache="$(CHECK_CACHE)"; out=$$(mktemp -d); mkdir -p "$$cache"; \
	run() { name=$$1; shift; "$$@" > "$$out/$$name.log" 2>&1; echo $$? > "$$out/$$name.rc"; }; \
	run migrations env DEBUG=true $(PY) manage.py makemigrations --check --dry-run & \
	run imports env DEBUG=true $(VENV)/bin/lint-imports --no-cache & \
	run ruff $(VENV)/bin/ruff check --quiet --cache-dir "$$cache/ruff" . & \
	run format $(VENV)/bin/ruff format --check --quiet --cache-dir "$$cache/ruff" . & \
	run mypy env DEBUG=true $(VENV)/bin/mypy --cache-dir "$$cache/mypy" & \
	wait; failed=0; \
	hint_migrations="Missing migrations: run manage.py makemigrations"; \
	hint_format="Unformatted files: run .venv/bin/ruff format ."; \
	for name in migrations imports ruff format mypy; do \
	  if [ "$$(cat "$$out/$$name.rc")" != 0 ]; then \
	    failed=1; echo "== $$name failed"; cat "$$out/$$name.log"; \
	    hint="hint_$$name"; [ -z "$${!hint:-}" ] || echo "$${!hint}"; \
	  fi; \
	done; rm -rf "$$out"; \
	[ $$failed = 0 ] && echo "checks passed: migrations, import contracts, ruff check, ruff format, mypy"; \
	exit $$failed

# With CI=true the suite runs against PostgreSQL and Redis (and fails if they are missing), in
# parallel (pytest-xdist, TEST_WORKERS processes; tests/parallel.py and docs/testing.md): each
# worker has its own database cloned from one template built from the models (the migrations
# run in one test per pass), its own Redis key prefixes and ports, and the servers the tests
# start share TEST_DB_CONNECTIONS PostgreSQL connections (the server's max_connections is 100
# for everything on the machine). The order is random
# (pytest-randomly): the seed is printed at the top of each pass, and PYTEST_ARGS="-p randomly
# --randomly-seed=N" repeats it ("-p no:randomly" turns it off).
# The test process itself runs without the connection pool (DB_POOL=false): its many short-lived
# threads (communicators, sync_to_async) each keep a connection, as Django's test runner expects,
# and a bounded pool there runs dry; the servers the tests start run the production pool
# (tests/conftest.py, start_live_server); one test checks the pool in the test process itself.
# Then the zero-config setup (SQLite, in-memory channel layer) runs the tests of the code that
# differs by backend: the OCPP consumer, connection state and message log (ORM writer instead of
# COPY), the settings, the real server on SQLite over a socket, and the harness's flush of the
# reference rows (tests/test_reference_data.py). The rest of the suite does
# not branch on the backend; running all of it twice doubled CI's time.
# Every pass runs even when one fails (the pool check beside the SQLite pass: they share
# nothing); the tests executed are added up at the end.
TEST_WORKERS ?= 3
TEST_DB_CONNECTIONS ?= 80
XDIST = -n $(TEST_WORKERS) --dist worksteal
SQLITE_TESTS ?= tests/chargers tests/backoffice tests/e2e/test_charger_over_socket.py \
	tests/e2e/test_durability.py tests/e2e/test_ocpp201_charger.py tests/perf/test_sigterm_flush.py \
	tests/test_reference_data.py
PG_ENV = DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) REQUIRE_SERVICES=true CONN_MAX_AGE=0 \
	TEST_DB_CONNECTIONS=$(TEST_DB_CONNECTIONS)
# The checks run beside the tests, not before them (on two cores the tests leave a core idle
# while they wait on servers and browsers); their result is printed after the tests and a failed
# check fails the run as before. TEST_DURATIONS_OUT=tests/durations.json records each slow test's
# time for the slowest-first order (tests/schedule.py).
test: install chromium haproxy
	@checks=$$(mktemp -d); ( $(MAKE) --no-print-directory checks > $$checks/log 2>&1; \
	  echo $$? > $$checks/rc ) & checks_pid=$$!; \
	finish_checks() { wait $$checks_pid; echo "== checks (beside the tests) =="; cat $$checks/log; \
	  rc=$$(cat $$checks/rc); rm -rf $$checks; return $$rc; }; \
	if [ "$$CI" = "true" ]; then \
	  tmp=$$(mktemp -d); failed=""; start=$$(date +%s); \
	  echo "== PostgreSQL + Redis =="; \
	  $(PG_ENV) DB_POOL=false BENCH_SMOKE=1 TEST_COUNT_FILE=$$tmp/1 \
	    $(PY) -m pytest -p no:cacheprovider $(XDIST) $(PYTEST_ARGS) || failed="$$failed PostgreSQL"; \
	  ( $(PG_ENV) DB_POOL=true TEST_COUNT_FILE=$$tmp/2 \
	    $(PY) -m pytest -p no:cacheprovider -q $(PYTEST_ARGS) tests/backoffice/test_db_threads_pool.py \
	    > $$tmp/pool.log 2>&1; echo $$? > $$tmp/pool.rc ) & pool_pid=$$!; \
	  echo "== SQLite, in-memory channel layer (the pool check runs meanwhile) =="; \
	  env -u DATABASE_URL -u REDIS_URL TEST_COUNT_FILE=$$tmp/3 \
	    $(PY) -m pytest -p no:cacheprovider $(XDIST) -m "not browser" $(PYTEST_ARGS) $(SQLITE_TESTS) \
	    || failed="$$failed SQLite"; \
	  wait $$pool_pid; echo "== PostgreSQL, the pool in the test process =="; cat $$tmp/pool.log; \
	  [ "$$(cat $$tmp/pool.rc)" = 0 ] || failed="$$failed pool"; \
	  finish_checks || failed="$$failed checks"; \
	  counts=$$(cat $$tmp/1 $$tmp/2 $$tmp/3 2>/dev/null | cut -d' ' -f1 | paste -sd+); \
	  fails=$$(cat $$tmp/1 $$tmp/2 $$tmp/3 2>/dev/null | cut -d' ' -f2 | paste -sd+); \
	  echo "tests executed: $$counts = $$(( $${counts:-0} )) (PostgreSQL + pool + SQLite)" \
	    "in $$(( $$(date +%s) - start )) s"; \
	  echo "total: $$(( $${counts:-0} - $${fails:-0} )) passed, $$(( $${fails:-0} )) failed"; \
	  rm -rf $$tmp; \
	  if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; \
	else \
	  $(PY) -m pytest $(XDIST) $(PYTEST_ARGS); rc=$$?; finish_checks && exit $$rc; exit 1; \
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

# The closed loop as a curve for ours, the peer and the echo, each point three times, and its
# pictures in docs/benchmarks/ (docs/benchmarks.md: the method, the figures, the knee). About
# 15 minutes; run it on a quiet machine. CURVE_ARGS changes the counts, e.g. "--curve-repeat 5".
bench-curves: install
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/uv pip install -q -e '.[dev,plots]'
	$(PY) -m bench --only curve $(CURVE_ARGS) --out bench/results/curve.json
	$(PY) -m bench.plot bench/results/curve.json docs/benchmarks
