"""Settings for the EV charging backoffice, read from environment variables only.

A fresh checkout runs with no configuration at all: SQLite in the repository, the
in-memory channel layer and Celery tasks executed in-process. Production sets
DATABASE_URL (PostgreSQL) and REDIS_URL (channel layer, Celery broker, cache).
"""

import ipaddress
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from backoffice.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_prefix_for_test_worker,
    env_secret,
    env_str,
)
from portal import db_pool  # noqa: F401 - puts the pool's connection check in place

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
TESTING = "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and not TESTING and not env_bool("ALLOW_INSECURE_SECRET_KEY", False):
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=true for local development).")
    SECRET_KEY = "insecure-development-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # the widgets' own templates, for FORM_RENDERER below
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "auditlog",  # who changed what, before/after: every support agent action (docs/support.md)
    "backoffice",
    "authorization",
    "pki",  # Plug & Charge: roots, PKI providers, OCSP (docs/pki.md)
    "chargers",
    "metering",  # signed meter values (OCMF), meter keys (docs/metering.md)
    "billing",
    "reliability",
    "guest",
    "support",
    "roaming",
    "stays",
    "power",
    "fleet",  # firmware campaigns (docs/firmware.md)
    # Driver accounts (docs/drivers.md): django-allauth for sign-up, email verification and change.
    "allauth",
    "allauth.account",
    "drivers",
]

MIDDLEWARE = [
    # GET /healthz for load balancers: before the https redirect and the host check.
    "backoffice.health.HealthCheckMiddleware",
    # GET /metrics for Prometheus (token or allow-listed network), for the same reason.
    "backoffice.metrics_endpoint.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # 400 for a JSON body nested deeper than backoffice.parsers.MAX_JSON_DEPTH, before it is decoded.
    "backoffice.middleware.RejectDeepJsonMiddleware",
    # 400 for a NUL character in path, query or text fields, before any view or query runs.
    "backoffice.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Drivers are signed-in users too: keep them on the driver pages, never in the host portal.
    "drivers.middleware.DriverBoundaryMiddleware",
    # Pages show times in the viewer's zone (their locations' when they share one, else UTC).
    "backoffice.middleware.ViewerTimezoneMiddleware",
    # Records the signed-in user as the actor of audit log entries.
    "auditlog.middleware.AuditlogMiddleware",
    # An API write sent again with its Idempotency-Key gets the first answer, not a second write.
    "backoffice.idempotency.IdempotencyKeyMiddleware",
    # A unique violation lost in a race (a double submit) is a 409 with a sentence, not a 500.
    "backoffice.conflicts.UniqueConflictMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "backoffice.content_security.SelfWebsocketCSPMiddleware",
    # Last, as django-axes asks: turns a lockout flagged during sign-in into the 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # Tag libraries kept outside an app's templatetags/ package ({% load energy %}).
            "libraries": {
                "energy": "chargers.web.energy_tags",
                "charger_state": "chargers.web.state_tags",
            },
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "backoffice.context_processors.portal",
                "billing.context_processors.payments",
                "drivers.context_processors.roaming",
            ],
        },
    },
]

# Default database is SQLite so a fresh checkout runs with no setup at all.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("CONN_MAX_AGE", 60))
}
IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
# Threads that run ORM work for the websocket path. SQLite allows one writer at a time.
DB_EXECUTOR_THREADS = env_int("DB_EXECUTOR_THREADS", 8 if IS_POSTGRES else 1)
# PostgreSQL connections of one process (README, "Connections"): Django's psycopg pool, shared
# by request threads, database threads and the scheduler, plus the event loop's own pool for
# the OCPP path's batched writers (backoffice/async_pg.py). Nothing else opens one.
DB_POOL = IS_POSTGRES and env_bool("DB_POOL", True)
DB_POOL_SIZE = env_int("DB_POOL_SIZE", DB_EXECUTOR_THREADS + 4)
DB_POOL_TIMEOUT = env_int("DB_POOL_TIMEOUT", 10)  # seconds a request waits for a free connection
DB_ASYNC_POOL_SIZE = env_int("DB_ASYNC_POOL_SIZE", 8)
# Seconds a batch of the OCPP path waits for a connection of that pool before it fails as an
# outage (its callers journal): never a wait without end (issue 48, the restart-storm hang).
DB_ASYNC_BORROW_TIMEOUT_S = env_float("DB_ASYNC_BORROW_TIMEOUT_S", 10.0)
DB_APPLICATION_NAME = env_str("DB_APPLICATION_NAME", "evportal")
# PgBouncer in transaction mode: no server-side cursors or prepared statements (README).
PGBOUNCER_TRANSACTION_POOLING = env_bool("PGBOUNCER_TRANSACTION_POOLING", False)
if DB_POOL and DB_POOL_SIZE <= DB_EXECUTOR_THREADS:
    raise ImproperlyConfigured(
        f"DB_POOL_SIZE={DB_POOL_SIZE} leaves no connection for web requests: make it larger "
        f"than DB_EXECUTOR_THREADS={DB_EXECUTOR_THREADS}"
    )
if IS_POSTGRES and DB_ASYNC_POOL_SIZE < 1:
    raise ImproperlyConfigured("DB_ASYNC_POOL_SIZE must be at least 1")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            # IMMEDIATE avoids "database is locked" when a read transaction upgrades to write.
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not :memory:, so the database threads and a live server process share it.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
else:
    # Test a reused connection first, so one that went stale in a database outage is replaced
    # instead of failing a request; with the pool, the pool tests it (portal/db_pool.py).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    # An unreachable database must fail fast, so the OCPP path journals instead of hanging.
    _db_options.setdefault("connect_timeout", 5)
    _db_options.setdefault("application_name", DB_APPLICATION_NAME)  # pg_stat_activity
    if DB_POOL:
        # Each request and database-thread call takes a connection and gives it back: under
        # ASGI every request runs on a thread of its own, and persistent connections (one per
        # thread) leaked until PostgreSQL refused new clients (issue 33 item 3).
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        _db_options["pool"] = {
            "min_size": 1,
            "max_size": DB_POOL_SIZE,
            "timeout": DB_POOL_TIMEOUT,
            "max_idle": 60,  # an idle process shrinks back to min_size
            "name": DB_APPLICATION_NAME,
        }
    # PgBouncer in transaction mode gives each transaction any server connection: a cursor
    # kept across transactions (iterator()) would be lost there. Django already sends no
    # prepared statements (prepare_threshold None).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = PGBOUNCER_TRANSACTION_POOLING
    if TESTING:  # one test database per pytest process, so parallel runs never collide
        DATABASES["default"]["TEST"] = {
            "NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
if TESTING:
    # The test suite's parallel workers share one Redis database: each keeps its keys under
    # prefixes of its own, which the servers and Celery workers it starts inherit.
    for _name in ("CHANNEL_LAYER_PREFIX", "CACHE_PREFIX", "CELERY_KEY_PREFIX"):
        env_prefix_for_test_worker(_name, "evportal")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 defaults (5 s socket timeout, 100-connection pool) close idle
                # consumers and fail under a connect storm; see docs/performance.md.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        "max_connections": 10000,
                    }
                ],
                "capacity": 1000,
                "expiry": 30,
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "evportal"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_PREFIX", "evportal"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
# Celery's keys in Redis (queues, unacknowledged tasks) under a prefix, for deployments that
# share one Redis database (as CACHE_PREFIX and CHANNEL_LAYER_PREFIX); none by default.
CELERY_KEY_PREFIX = env_str("CELERY_KEY_PREFIX", "")
# Seconds a send to the broker (a .delay() in a request) waits for Redis to connect and answer:
# kombu's Redis transport waits without end by default, so a Redis that stops answering without
# closing the connection (failover, a firewall) held every request that queued work. Above the
# workers' BRPOP timeout (1 s), which answers on its own.
CELERY_BROKER_SOCKET_TIMEOUT_S = env_float("CELERY_BROKER_SOCKET_TIMEOUT_S", 5.0)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "socket_timeout": CELERY_BROKER_SOCKET_TIMEOUT_S,
    "socket_connect_timeout": CELERY_BROKER_SOCKET_TIMEOUT_S,
}
if CELERY_KEY_PREFIX:
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = CELERY_KEY_PREFIX
CELERY_RESULT_BACKEND = None
# Without a broker, tasks run in-process. The test suite runs them in-process too (it starts
# no worker); tests/e2e/test_celery_worker.py drives a real worker through Redis.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL or TESTING)
# What runs in-process without a broker (below: IN_PROCESS_BEAT), decided before the URL is set.
_NO_BROKER = not CELERY_BROKER_URL
if _NO_BROKER:
    # An eager task still takes a producer from the broker's pool; kombu's in-memory transport
    # never connects anywhere (with no URL it assumed amqp://localhost and warned on every start).
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Task modules a worker (and the in-process beat, backoffice/beat.py) imports besides each app's
# tasks.py (autodiscovery): chargers keeps its tasks in the packages that own them.
CELERY_IMPORTS = (
    "chargers.devices.local_list",  # chargers.local_list_push
    "chargers.messagelog.retention",  # chargers.message_log_cleanup
    "chargers.devices.stale",  # chargers.stale_transactions_check
    "chargers.devices.v2g_renewal",  # chargers.v2g_certificates_renew
)
# Reliability (docs/reliability.md): an authorized start with the EV plugged that delivers no
# energy within this many seconds is a failed start (the port is down until energy flows).
RELIABILITY_FAILED_START_AFTER_S = env_int("RELIABILITY_FAILED_START_AFTER_S", 300)
# The success KPIs' rules that are ours, not ChargeX's (docs/reliability.md, "Success KPIs"):
# the visit windows, what counts as an attempt and a completion, the autocharge id prefixes.
RELIABILITY_KPI_VISIT_DRIVER_S = env_int("RELIABILITY_KPI_VISIT_DRIVER_S", 1800)
RELIABILITY_KPI_VISIT_ANONYMOUS_S = env_int("RELIABILITY_KPI_VISIT_ANONYMOUS_S", 120)
RELIABILITY_KPI_LINK_S = env_int("RELIABILITY_KPI_LINK_S", 300)
RELIABILITY_KPI_COMPLETION_REASONS = env_list(
    "RELIABILITY_KPI_COMPLETION_REASONS",
    [
        "Local",
        "Remote",
        "EVDisconnected",
        "StoppedByEV",
        "EnergyLimitReached",
        "SOCLimitReached",
        "TimeLimitReached",
        "LocalOutOfCredit",
    ],
)
RELIABILITY_KPI_COMPLETION_NEEDS_ENERGY = env_bool("RELIABILITY_KPI_COMPLETION_NEEDS_ENERGY", True)
RELIABILITY_KPI_REJECTED_AUTHORIZE_COUNTS = env_bool(
    "RELIABILITY_KPI_REJECTED_AUTHORIZE_COUNTS", True
)
RELIABILITY_KPI_FAILED_REMOTE_COUNTS = env_bool("RELIABILITY_KPI_FAILED_REMOTE_COUNTS", True)
RELIABILITY_KPI_AUTOCHARGE_PREFIXES = env_list("RELIABILITY_KPI_AUTOCHARGE_PREFIXES", ["VID:"])
RELIABILITY_KPI_BATCH_SESSIONS = env_int("RELIABILITY_KPI_BATCH_SESSIONS", 20000)

# The power sweeps' periods (docs/power.md): the beat schedule below, and the lease margin
# (power.services.lease_margin) counts on them.
POWER_SWEEP_SECONDS = env_int("POWER_SWEEP_SECONDS", 2)
POWER_ENFORCE_SWEEP_SECONDS = env_int("POWER_ENFORCE_SWEEP_SECONDS", 2)
CELERY_BEAT_SCHEDULE: dict = {
    "msp-token-sync": {
        "task": "authorization.msp_tokens_pull_all",
        "schedule": env_int("MSP_TOKEN_SYNC_SECONDS", 900),
    },
    # Billing: price sessions whose signal was missed (or whose stop arrived late), daily payout run.
    "billing-price-sweep": {
        "task": "billing.sessions_price_missing",
        "schedule": env_int("BILLING_SWEEP_SECONDS", 300),
    },
    "billing-payouts": {
        "task": "billing.payouts_run",
        "schedule": env_int("BILLING_PAYOUT_RUN_SECONDS", 3600),
    },
    # A refund the processor did not answer is asked again with its own key and booked once
    # known (billing.services.refunds): "within minutes" of the processor being back.
    "billing-refunds-unanswered": {
        "task": "billing.refunds_unanswered_settle",
        "schedule": env_int("BILLING_REFUNDS_UNANSWERED_SECONDS", 300),
    },
    "billing-payouts-reconcile": {
        "task": "billing.payouts_reconcile_processor",
        "schedule": env_int("BILLING_PAYOUT_RECONCILE_SECONDS", 86400),
    },
    # Guest QR charging: release holds of starts the car never followed, settle missed finishes.
    "guest-expire-overdue": {
        "task": "guest.expire_overdue",
        "schedule": env_int("GUEST_SWEEP_SECONDS", 60),
    },
    "guest-finish-unsettled": {
        "task": "guest.finish_unsettled",
        "schedule": env_int("GUEST_SWEEP_SECONDS", 60),
    },
    # OCPP message log retention (OCPP_LOG_RETENTION_DAYS; docs/performance.md).
    # The REST API's Idempotency-Keys are kept a day (backoffice/idempotency.py).
    "idempotency-keys-prune": {
        "task": "backoffice.idempotency_keys_prune",
        "schedule": 3600,
    },
    # Jobs queued while the broker was down, sent once it answers (backoffice/queueing.py).
    "pending-tasks-send": {
        "task": "backoffice.pending_tasks_send",
        "schedule": env_int("PENDING_TASKS_SEND_SECONDS", 60),
    },
    "ocpp-log-cleanup": {
        "task": "chargers.message_log_cleanup",
        "schedule": env_int("OCPP_LOG_CLEANUP_SECONDS", 3600),
    },
    # OCPI roaming (docs/ocpi.md): send pushes that waited (back-off over, partner back).
    "roaming-deliveries": {
        "task": "roaming.deliveries_sweep",
        "schedule": env_int("OCPI_DELIVERY_SWEEP_SECONDS", 15),
    },
    # Site power (docs/power.md): sites whose sessions started/stopped, and every site with
    # sessions every POWER_REFRESH_SECONDS (meter values, give-back, schedule, live expiry).
    "power-recompute": {
        "task": "power.recompute_due",
        "schedule": POWER_SWEEP_SECONDS,
    },
    # Power enforcement (docs/power.md): leases renewed, reconnected chargers set up, limits the
    # rate limit held back sent.
    "power-enforce": {
        "task": "power.enforce",
        "schedule": POWER_ENFORCE_SWEEP_SECONDS,
    },
    "roaming-evse-status": {
        "task": "roaming.evse_status_sweep",
        "schedule": env_int("OCPI_STATUS_SWEEP_SECONDS", 5),
    },
    # Our eMSP role (docs/ocpi.md, "eMSP"): cards changed or expired since the last sweep go to
    # partner CPOs (a change the signal missed: a bulk update, an expiry date passing).
    "roaming-emsp-tokens": {
        "task": "roaming.emsp_tokens_sweep",
        "schedule": env_int("OCPI_EMSP_TOKENS_SWEEP_SECONDS", 60),
    },
    # Foreign-exchange reference rates (docs/billing.md): a partner CDR in another currency.
    "billing-exchange-rates": {
        "task": "billing.exchange_rates_fetch",
        "schedule": env_int("EXCHANGE_RATES_FETCH_SECONDS", 6 * 3600),
    },
    # Driver accounts' sessions at partner CPOs (docs/ocpi.md): CDRs still due charged.
    "drivers-roaming-charges": {
        "task": "drivers.roaming_charges_collect",
        "schedule": env_int("DRIVER_ROAMING_CHARGE_SWEEP_SECONDS", 300),
    },
    # Our eMSP role: partner CPOs' Sessions and CDRs pulled, what a lost push left out.
    "roaming-emsp-sessions": {
        "task": "roaming.emsp_sessions_sweep",
        "schedule": env_int("OCPI_EMSP_SESSIONS_PULL_SECONDS", 300),
    },
    "roaming-emsp-network": {
        "task": "roaming.emsp_network_sweep",
        "schedule": env_int("OCPI_EMSP_NETWORK_PULL_SECONDS", 3600),
    },
    "roaming-sessions": {
        "task": "roaming.sessions_sweep",
        "schedule": env_int("OCPI_SESSION_SWEEP_SECONDS", 60),
    },
    # AFIR feeds behind their access point's bound open alerts (docs/afir.md, "Freshness").
    "roaming-access-points-freshness": {
        "task": "roaming.access_points_freshness",
        "schedule": env_int("AFIR_FRESHNESS_SWEEP_SECONDS", 15),
    },
    "roaming-locations": {
        "task": "roaming.locations_reconcile",
        "schedule": env_int("OCPI_LOCATIONS_SWEEP_SECONDS", 300),
    },
    "roaming-log-cleanup": {
        "task": "roaming.log_cleanup",
        "schedule": env_int("OCPP_LOG_CLEANUP_SECONDS", 3600),
    },
    # OCPP 2.0.1 transactions with no event for OCPP_STALE_TRANSACTION_SECONDS (docs/ocpp.md, E14),
    # and 1.6 sessions whose connector went Available without a StopTransaction.
    "ocpp-stale-transactions": {
        "task": "chargers.stale_transactions_check",
        "schedule": env_int("OCPP_STALE_TRANSACTION_CHECK_SECONDS", 300),
    },
    # Plug & Charge (docs/pki.md): V2G certificates that expire within 7 days are renewed (A02).
    "v2g-certificates-renew": {
        "task": "chargers.v2g_certificates_renew",
        "schedule": env_int("V2G_CERTIFICATE_CHECK_SECONDS", 3600),
    },
    # Port timeline (docs/reliability.md): connection changes and any missed status change.
    "reliability-sweep": {
        "task": "reliability.sweep",
        "schedule": env_int("RELIABILITY_SYNC_SECONDS", 15),
    },
    # Alerts (docs/reliability.md): open, clear, first aid, deliveries and their retries.
    "reliability-alerts": {
        "task": "reliability.alerts",
        "schedule": env_int("RELIABILITY_ALERT_SECONDS", 30),
    },
    # Firmware campaigns (docs/firmware.md): follow sent updates, halt or send the next wave.
    "fleet-campaigns": {
        "task": "fleet.campaigns_advance",
        "schedule": env_int("FIRMWARE_CAMPAIGN_SECONDS", 30),
    },
    # Scheduled reports (docs/operations.md): each organization's CSVs, once per period.
    "billing-reports": {
        "task": "billing.reports_send",
        "schedule": env_int("REPORTS_SEND_SECONDS", 3600),
    },
    # Configuration baselines (docs/operations.md): apply after boots and on demand, paced.
    "fleet-baselines": {
        "task": "fleet.baselines_apply",
        "schedule": env_int("FLEET_BASELINE_SECONDS", 30),
    },
    # Driver subscriptions (docs/drivers.md): monthly fees from saved cards, declined ones retried.
    "billing-subscriptions": {
        "task": "billing.subscriptions_collect",
        "schedule": env_int("BILLING_SUBSCRIPTION_SECONDS", 3600),
    },
    # Stays (docs/pms.md): pull calendar feeds and PMS reservations.
    "stays-calendars": {"task": "stays.calendar_feeds_sync_due", "schedule": 60},
    "stays-pms": {"task": "stays.pms_sync_due", "schedule": 60},
    # Guests' access codes a failed email left unsent (docs/pms.md).
    "stays-access-codes": {"task": "stays.access_codes_send", "schedule": 300},
    "stays-kwh-caps": {
        "task": "guest.stay_caps_enforce",
        "schedule": env_int("STAYS_CAP_CHECK_SECONDS", 30),
    },
    # Sessions paid by a hold (guest cards, payment terminals) stop at the ceiling it pays for.
    "guest-held-ceilings": {
        "task": "guest.held_ceilings_enforce",
        "schedule": env_int("HELD_CEILING_CHECK_SECONDS", 30),
    },
}
# Without a broker no `celery beat` runs: `manage.py serve` runs the schedule above itself, in
# one process per deployment (the holder of a database lease; backoffice/beat.py, README).
IN_PROCESS_BEAT = env_bool("IN_PROCESS_BEAT", _NO_BROKER)
BEAT_LEASE_SECONDS = env_int("BEAT_LEASE_SECONDS", 30)
MSP_POSITIVE_CACHE_SECONDS = env_int("MSP_POSITIVE_CACHE_SECONDS", 300)
# How often each calendar feed and PMS integration is pulled (docs/pms.md).
STAYS_CALENDAR_SYNC_SECONDS = env_int("STAYS_CALENDAR_SYNC_SECONDS", 900)
STAYS_PMS_SYNC_SECONDS = env_int("STAYS_PMS_SYNC_SECONDS", 900)
# Guest QR charging (docs/guest.md): seconds to plug in after the remote start was accepted.
GUEST_START_TIMEOUT_S = env_int("GUEST_START_TIMEOUT_S", 60)
# Where billing statements (CSV) are written; a persistent volume in production.
BILLING_STATEMENT_ROOT = env_str("BILLING_STATEMENT_ROOT", str(BASE_DIR / "media" / "statements"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes first: it refuses a locked-out sign-in before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "backoffice.auth.EmailUsernameBackend",
    # Drivers only, and only from the driver sign-in (allauth passes `email`): docs/drivers.md.
    "drivers.auth.DriverEmailBackend",
]
# Sign-in throttling (django-axes, backoffice.login_throttle; docs/security.md). Failures are
# counted per (lower-cased login, client IP) and, with a higher ceiling, per client IP.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_IP_FAILURE_LIMIT = env_int("LOGIN_IP_FAILURE_LIMIT", 50)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "backoffice.login_throttle.normalized_login"
AXES_CLIENT_IP_CALLABLE = "backoffice.login_throttle.client_ip"
AXES_HANDLER = "backoffice.login_throttle.LoginThrottleHandler"
AXES_LOCKOUT_CALLABLE = "backoffice.login_throttle.lockout_response"
AXES_RESET_ON_SUCCESS = True
# Mails anyone can make us send (password reset, email change): at most MAIL_ADDRESS_LIMIT an
# hour to one address and MAIL_CLIENT_LIMIT an hour from one client IP (backoffice/throttle.py).
MAIL_ADDRESS_LIMIT = env_int("MAIL_ADDRESS_LIMIT", 3)
MAIL_CLIENT_LIMIT = env_int("MAIL_CLIENT_LIMIT", 20)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "backoffice:dashboard"
LOGOUT_REDIRECT_URL = "login"

# Driver accounts (django-allauth, docs/drivers.md): email is the login, verified before use;
# a change of email takes effect only once the new address is confirmed, the old one is told.
ACCOUNT_ADAPTER = "drivers.adapter.DriverAccountAdapter"
# A driver is named by their email in allauth's messages, never by the internal username.
ACCOUNT_USER_DISPLAY = "drivers.adapter.user_display"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
# One sign-in policy: driver sign-in failures are counted by django-axes like every other
# sign-in (allauth's own login limits off); allauth's mail limits get the numbers above.
ACCOUNT_RATE_LIMITS = {
    "login": None,
    "login_failed": None,
    "reset_password": f"{MAIL_CLIENT_LIMIT}/h/ip,{MAIL_ADDRESS_LIMIT}/h/key",
    "manage_email": f"{MAIL_CLIENT_LIMIT}/h/ip,{MAIL_ADDRESS_LIMIT}/h/user",
}
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_REDIRECT_URL = "/driver/"
# The product's name in drivers' emails ("Hello from EV charging!", drivers.adapter.brand).
DRIVER_BRAND_NAME = env_str("DRIVER_BRAND_NAME", "EV charging")
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{DRIVER_BRAND_NAME}] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if not DEBUG else "http"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One date format per language (portal/formats/<lang>/formats.py), used by every page.
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Widgets render through the project's templates, so templates/admin/widgets/ can label the
# admin's split date and time inputs (axe: every input has a label).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# Seconds an SMTP server may take to answer: without a bound, one that never answers holds the
# task sending the mail (an alerts sweep, a worker) for ever.
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 20.0)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@localhost")
# Customers' replies to ticket emails (docs/support.md, "Replies by email"): the Reply-To address of
# ticket replies, and the secrets of the two inbound hooks. Neither secret: replies are only sent.
SUPPORT_INBOUND_EMAIL = env_str("SUPPORT_INBOUND_EMAIL", "")
# What the assistant promises when it hands over to a person (docs/support.md).
SUPPORT_REPLY_HOURS = env_int("SUPPORT_REPLY_HOURS", 24)
SUPPORT_INBOUND_SECRET = env_secret("SUPPORT_INBOUND_SECRET")
MAILGUN_SIGNING_KEY = env_secret("MAILGUN_SIGNING_KEY")

API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50)
API_MAX_LIMIT = env_int("API_MAX_LIMIT", 500)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # JSON text must be valid Unicode: a lone surrogate is a 400, never a 500 (backoffice/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "backoffice.parsers.UnicodeJSONParser",
        "rest_framework.parsers.FormParser",
        "backoffice.parsers.HouseMultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "backoffice.parsers.SafeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # A page of API_PAGE_SIZE rows, `limit` up to API_MAX_LIMIT (more is a 400; README, "API").
    "DEFAULT_PAGINATION_CLASS": "backoffice.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"guest_lookup": "20/min", "guest_start": "10/min"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "EV charging backoffice API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files (pinned by drf-spectacular-sidecar), not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "backoffice.idempotency.schema_hook",
    ],
    # security_profile and security_profile_pending share one choice set: one schema enum.
    "ENUM_NAME_OVERRIDES": {
        "SecurityProfileEnum": "chargers.models.Charger.SecurityProfile",
        # An OCPI partner's role and state share field names with other choice sets.
        "PartnerRoleEnum": "roaming.models.Partner.Role",
        "PartnerStateEnum": "roaming.models.Partner.State",
    },
}

# OCPI roaming, 2.2.1 and 2.3.0 (docs/ocpi.md): our CPO party and the calls to partners.
OCPI_COUNTRY_CODE = env_str("OCPI_COUNTRY_CODE", "NL").upper()
OCPI_PARTY_ID = env_str("OCPI_PARTY_ID", "EVB").upper()
OCPI_TIMEOUT_S = env_int("OCPI_TIMEOUT_S", 15)
# Our eMSP role (docs/ocpi.md, "eMSP"): a partner CDR differing from its tariff by more than this
# many cents (before tax) is a dispute; our price to the driver is the partner's cost plus the
# margin (percent) and the fee (cents a session), with our VAT (percent) on top.
OCPI_EMSP_DISPUTE_THRESHOLD_CENTS = env_int("OCPI_EMSP_DISPUTE_THRESHOLD_CENTS", 5)
OCPI_EMSP_MARGIN_PERCENT = env_int("OCPI_EMSP_MARGIN_PERCENT", 10)
OCPI_EMSP_ROAMING_FEE_CENTS = env_int("OCPI_EMSP_ROAMING_FEE_CENTS", 0)
OCPI_EMSP_VAT_PERCENT = env_int("OCPI_EMSP_VAT_PERCENT", 21)
# The euro foreign exchange reference rates (billing/services/exchange_rates.py): a driver's
# partner CDR in another currency than the eMSP identity's is converted at its day's rate.
# Empty: no fetch (support enters rates in Django admin).
EXCHANGE_RATES_URL = env_str(
    "EXCHANGE_RATES_URL", "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
)

# Hosts (or host:port) in private networks that staff allow every configured outbound URL to
# reach: proxy upstreams, PMS, MSP, OCPI partners, calendars (backoffice/outbound.py,
# docs/security.md "Outbound calls"). MSP_URL_ALLOWLIST is the older name; both are read.
OUTBOUND_URL_ALLOWLIST = env_list("OUTBOUND_URL_ALLOWLIST", [])
MSP_URL_ALLOWLIST = env_list("MSP_URL_ALLOWLIST", [])

# Payments (docs/billing.md "Gateways"): "stripe", or "sandbox" (test cards, no real money).
# Outside DEBUG the sandbox runs only when asked for by name, and every payment page then
# says "test mode" (billing.context_processors).
PAYMENT_GATEWAY = env_choice("PAYMENT_GATEWAY", ("sandbox", "stripe"), "sandbox")
ALLOW_SANDBOX_PAYMENTS = env_bool("ALLOW_SANDBOX_PAYMENTS", False)
if PAYMENT_GATEWAY == "sandbox" and not DEBUG and not TESTING and not ALLOW_SANDBOX_PAYMENTS:
    raise ImproperlyConfigured(
        "PAYMENT_GATEWAY is sandbox (the default), which takes no real payments, and DEBUG is "
        "false: set PAYMENT_GATEWAY=stripe with STRIPE_SECRET_KEY, or ALLOW_SANDBOX_PAYMENTS=true "
        "to run a site in test mode."
    )
if PAYMENT_GATEWAY == "stripe" and not TESTING and not env_secret("STRIPE_SECRET_KEY"):
    raise ImproperlyConfigured("PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY (or _FILE).")

# OCPP behaviour.
# Charger identity (docs/security.md): TLS terminators whose headers are believed, the CSMS CA.
OCPP_TRUSTED_PROXIES = env_list("OCPP_TRUSTED_PROXIES", [])
OCPP_CLIENT_CERT_HEADER = env_str("OCPP_CLIENT_CERT_HEADER", "X-SSL-Client-Cert")
OCPP_CA_DIR = env_str("OCPP_CA_DIR", str(BASE_DIR / "var" / "ca"))
OCPP_CPO_NAME = env_str("OCPP_CPO_NAME", "EV Backoffice")
# Plug & Charge (docs/pki.md): how long an OCSP responder and the PKI provider may take. A car
# waits 5 s for its certificate (M01), a charger about as long for a contract's Authorize.
PKI_OCSP_TIMEOUT_S = env_float("PKI_OCSP_TIMEOUT_S", 4.0)
PKI_PROVIDER_TIMEOUT_S = env_float("PKI_PROVIDER_TIMEOUT_S", 4.0)
OCPP_CLIENT_CERT_DAYS = env_int("OCPP_CLIENT_CERT_DAYS", 365)
OCPP_HEARTBEAT_INTERVAL = env_int("OCPP_HEARTBEAT_INTERVAL", 60)
# A charger's last-seen time (a frame or a pong) is written at most this often per charger
# (chargers/messagelog/log.py); keep it well under two heartbeat intervals (is_online).
CHARGER_LAST_SEEN_WRITE_EVERY_S = env_float("CHARGER_LAST_SEEN_WRITE_EVERY_S", 15.0)
OCPP_CALL_TIMEOUT = env_int("OCPP_CALL_TIMEOUT", 30)
# After a 1.6 boot, check (once) that the charger reports its energy register and set it if not,
# unless its organization turned that off (docs/ocpp.md, "Energy reporting").
OCPP_ENERGY_CONFIG_AFTER_BOOT = env_bool("OCPP_ENERGY_CONFIG_AFTER_BOOT", True)
# What a charger needs once after a boot (that check; a 2.0.1 base report) runs after the boot is
# answered, by at most this many workers per process, started at most this many per second
# (chargers/plumbing/follow_ups.py; issue 48): a restart storm is a queue, not 10,000 calls.
OCPP_FOLLOW_UP_CONCURRENCY = env_int("OCPP_FOLLOW_UP_CONCURRENCY", 16)
OCPP_FOLLOW_UP_RATE = env_float("OCPP_FOLLOW_UP_RATE", 20.0)
# ... and while the process used over BUSY_CPU of a core in the last half second (answering
# frames), at most BUSY_RATE per second: frames first, the checks when the load falls.
OCPP_FOLLOW_UP_BUSY_RATE = env_float("OCPP_FOLLOW_UP_BUSY_RATE", 2.0)
OCPP_FOLLOW_UP_BUSY_CPU = env_float("OCPP_FOLLOW_UP_BUSY_CPU", 0.6)
# Configuration baselines (docs/operations.md): chargers given their baseline per beat run and
# at once, so a restart storm of a whole model is applied at a steady pace.
FLEET_BASELINE_BATCH = env_int("FLEET_BASELINE_BATCH", 50)
FLEET_BASELINE_CONCURRENCY = env_int("FLEET_BASELINE_CONCURRENCY", 10)
# Firmware hosted for the chargers (docs/firmware.md "Hosting"): where the files live, how large.
FIRMWARE_ROOT = env_str("FIRMWARE_ROOT", "")
FIRMWARE_MAX_BYTES = env_int("FIRMWARE_MAX_BYTES", 512 * 1024 * 1024)
# Chargers asked for their logs at once by a campaign's log request (docs/firmware.md "Logs").
FLEET_LOG_CONCURRENCY = env_int("FLEET_LOG_CONCURRENCY", 10)
# Seconds a caller of the connection path's batches (lookup, boot, status, ...) waits for its
# result before taking it for an outage (chargers/plumbing/batching.py; issue 48).
OCPP_BATCH_WAIT_S = env_float("OCPP_BATCH_WAIT_S", 30.0)
# Seconds a websocket handshake may take to be decided (lookup, credentials); over it, it is
# refused with 503 + Retry-After rather than parked (chargers/connections/handshake.py).
OCPP_HANDSHAKE_TIMEOUT_S = env_float("OCPP_HANDSHAKE_TIMEOUT_S", 10.0)
# A 2.0.1 transaction silent this long is asked about with GetTransactionStatus (docs/ocpp.md).
OCPP_STALE_TRANSACTION_SECONDS = env_int("OCPP_STALE_TRANSACTION_SECONDS", 3600)
# A 1.6 session whose connector has been Available this long with no StopTransaction is closed at
# its last reading, stop reason NoStopTransaction (docs/ocpp.md, chargers/devices/stale.py).
OCPP_STALE_16_AVAILABLE_SECONDS = env_int("OCPP_STALE_16_AVAILABLE_SECONDS", 900)
OCPP_LOG_RETENTION_DAYS = env_int("OCPP_LOG_RETENTION_DAYS", 90)
# Performance (docs/performance.md): on PostgreSQL the OCPP message log is written with COPY
# on an async connection in the event loop (no GIL convoy with a database thread).
OCPP_LOG_ASYNC_COPY = env_bool("OCPP_LOG_ASYNC_COPY", True)
# Durability (docs/ocpp.md, "Durability"): the local journal of messages acknowledged while the
# database was unreachable, and the byte bounds of the in-memory log buffer.
OCPP_JOURNAL_DIR = Path(env_str("OCPP_JOURNAL_DIR", str(BASE_DIR / "var" / "journal")))
OCPP_LOG_BUFFER_BYTES = env_int("OCPP_LOG_BUFFER_BYTES", 256 * 1024 * 1024)
OCPP_LOG_BUFFER_BYTES_PER_CHARGER = env_int("OCPP_LOG_BUFFER_BYTES_PER_CHARGER", 4 * 1024 * 1024)
# More socket replacements than this per minute for one station id: two clients fight over it.
OCPP_IDENTITY_CONFLICT_REPLACEMENTS = env_int("OCPP_IDENTITY_CONFLICT_REPLACEMENTS", 5)

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp 4 format; docs/security.md). No inline scripts or styles:
# templates load static files and pass data in data-* attributes. A nonce is added only on a
# page that asks for one (the API docs' Swagger UI start-up script). The middleware adds
# ws:// and wss:// of the request's own host to connect-src for the live pages.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# LOG_FORMAT=json: one JSON object per line (time, level, logger, process, message, and the
# traceback as "exc_info"), for a log collector; plain lines by default (docs/operations.md).
LOG_FORMAT = env_choice("LOG_FORMAT", ("plain", "json"), "plain")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"refusal": {"()": "backoffice.log_filters.RefusalWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # axes logs each failure at WARNING (and the lockout); its INFO lines are per-request noise.
        "axes": {"level": "WARNING"},
        # A refused request is one line; a server error keeps its traceback.
        "django.request": {"filters": ["refusal"]},
    },
}
if CELERY_TASK_ALWAYS_EAGER and not TESTING:
    # Tasks run inside the web process (`make run`): Celery's "Task … succeeded" line for each
    # of the periodic schedule's runs (several a second) buried the server's own log. A task
    # that fails still logs at ERROR.
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}

# GET /metrics (Prometheus; docs/operations.md). Closed (404) unless a bearer token or an
# allow-listed network is set; a request needs either the token or an address in a network.
METRICS_TOKEN = env_secret("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", [])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {_network!r}: {_exc}") from None
# How often `manage.py serve` sets its per-process gauges (pools, buffers, connected chargers).
METRICS_SAMPLE_SECONDS = env_float("METRICS_SAMPLE_SECONDS", 5.0)
# prometheus_client's multiprocess mode (several processes on one host, each scrape adding them
# up): the library reads this variable itself when it is imported, so it must be set in the
# environment before the process starts, never here; this only checks it.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is not a directory: create it "
        "(empty) before the processes start"
    )

# Site power (docs/power.md): every site with active sessions is recomputed at least this often.
POWER_REFRESH_SECONDS = env_int("POWER_REFRESH_SECONDS", 10)
# A session whose draw moved this many amperes from its last allocation's measurement gets its
# site recomputed by the next sweep (POWER_SWEEP_SECONDS), not only by the refresh above.
POWER_DRAW_CHANGE_A = env_int("POWER_DRAW_CHANGE_A", 2)
# Enforcement over OCPP (docs/power.md, "Enforcement"): how long a lease (the profiles that lift a
# charger above its safe default) lasts; a charger that loses its connection is back at its safe
# default at most this long after. At most one profile per connector per MIN_INTERVAL; a charger
# that refused is asked again after REFUSED_RETRY; a CALL waits COMMAND_TIMEOUT for its answer.
POWER_SETTLE_SECONDS = env_int("POWER_SETTLE_SECONDS", 60)  # give-back: drawing less this long
POWER_LEASE_SECONDS = env_int("POWER_LEASE_SECONDS", 120)
POWER_PROFILE_MIN_INTERVAL_S = env_int("POWER_PROFILE_MIN_INTERVAL_S", 3)
POWER_REFUSED_RETRY_SECONDS = env_int("POWER_REFUSED_RETRY_SECONDS", 300)
POWER_COMMAND_TIMEOUT = env_int("POWER_COMMAND_TIMEOUT", 10)

# Charger licenses (docs/billing.md, "Charger licenses"): the price of one term per location
# currency, paid by the host organization from its balance (a deduction on its next payout);
# a currency left out is activated by support on request. Term and renewal window in months/days.
CHARGER_LICENSE_PRICES = {
    "EUR": "60.00",
    "USD": "65.00",
    "GBP": "52.00",
    "CHF": "60.00",
    "SEK": "690.00",
    "NOK": "700.00",
    "DKK": "450.00",
}
CHARGER_LICENSE_TERM_MONTHS = env_int("CHARGER_LICENSE_TERM_MONTHS", 12)
CHARGER_LICENSE_RENEW_WITHIN_DAYS = env_int("CHARGER_LICENSE_RENEW_WITHIN_DAYS", 30)
