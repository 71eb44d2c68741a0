"""Typed readers of environment variables: one parser per type for settings and commands.

Every value is validated the same way wherever it is read: a typo such as
BEHIND_TLS_PROXY=flase raises ImproperlyConfigured at start-up instead of being taken
as "set, so true".
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_str(name: str, default: str = "") -> str:
    """Return NAME from the environment, or `default` when it is unset."""
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    """Return NAME as a boolean: true/false, yes/no, on/off or 1/0 (any case); unset or empty: default."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    normalized = value.strip().lower()
    if normalized in _TRUE:
        return True
    if normalized in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: use true/false or 1/0")


def env_int(name: str, default: int) -> int:
    """Return NAME as a whole number; unset or empty: default."""
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from exc


def env_float(name: str, default: float) -> float:
    """Return NAME as a number (decimals allowed); unset or empty: default."""
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    """Return NAME split on commas, blanks dropped; unset or empty: default."""
    value = os.environ.get(name, "")
    if value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    """Return NAME, one of `choices` (any case); unset or empty: default. Anything else (a typo
    such as PAYMENT_GATEWAY=strpe) raises ImproperlyConfigured instead of picking a fallback."""
    value = os.environ.get(name, "").strip()
    if value == "":
        return default
    if value.lower() not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value.lower()


def env_secret(name: str, default: str = "") -> str:
    """Return NAME from the environment, or the contents of the file NAME_FILE points to."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def env_prefix_for_test_worker(name: str, default: str) -> None:
    """Give the Redis key prefix `name` this test process's own value, in the environment, so
    that the servers and Celery workers the tests start inherit it (tests/parallel.py): under
    the suite's parallel workers (pytest-xdist) its run's id and the worker's name, otherwise
    the process id. A run without workers kept the bare default, and its per-test cleanup of
    "<prefix>*" deleted every other run's keys on the same Redis database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker:
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8]
        os.environ[name] = f"{os.environ.get(name) or default}-{run}-{worker}-"
    else:
        os.environ[name] = f"{os.environ.get(name) or default}-pid{os.getpid()}-"
