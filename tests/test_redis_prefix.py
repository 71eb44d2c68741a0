"""Each test process keeps its Redis keys under a prefix of its own (backoffice/env.py
`env_prefix_for_test_worker`), with or without xdist's workers. A run without workers (`-n 0`,
a developer's single test) kept the bare "evportal", and its per-test cleanup of "evportal*"
deleted the keys of every other run on the same Redis database: a parallel run beside it lost
its channel layer's messages ("No answer within 5 s" from every charger)."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = (
    "import os, pytest, django; django.setup(); from django.conf import settings; "
    "print(settings.CHANNEL_LAYERS['default']['CONFIG']['prefix'], settings.CACHES['default']"
    "['KEY_PREFIX'], os.getpid())"
)


def _prefixes(**extra: str) -> tuple[str, str, int]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_XDIST") and not k.endswith("_PREFIX")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        REDIS_URL="redis://127.0.0.1:1/0",  # read, never connected to
        **extra,
    )
    out = subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], out[1], int(out[2])


def test_two_runs_without_workers_never_share_a_prefix():
    layer, cache, pid = _prefixes()
    assert layer == f"evportal-pid{pid}-"
    assert cache.startswith(f"evportal-pid{pid}-")
    other, _, _ = _prefixes()
    assert not other.startswith(layer) and not layer.startswith(other)


def test_a_worker_of_a_parallel_run_has_its_run_and_name_in_its_prefix():
    layer, _, _ = _prefixes(PYTEST_XDIST_WORKER="gw1", PYTEST_XDIST_TESTRUNUID="abcdef0123")
    assert layer == "evportal-abcdef01-gw1-"
