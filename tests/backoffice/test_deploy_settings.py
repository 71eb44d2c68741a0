"""Production settings pass Django's deployment checks; a missing SECRET_KEY is refused."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 20 + "production-secret-key-that-is-long-and-random-0123456789",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "charge.example.com",
    "BEHIND_TLS_PROXY": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "DATABASE_URL": "sqlite:////tmp/evportal-deploy-check.sqlite3",
    "PAYMENT_GATEWAY": "stripe",
    "STRIPE_SECRET_KEY": "sk_test_deploy_check",
}


def run_manage(*args, env):
    base = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "SECRET_KEY",
            "DEBUG",
            "DATABASE_URL",
            "REDIS_URL",
            "PAYMENT_GATEWAY",
            "ALLOW_SANDBOX_PAYMENTS",
            "STRIPE_SECRET_KEY",
        )
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
    )


def test_production_settings_pass_check_deploy():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_key_is_refused_outside_debug():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_a_payment_gateway_typo_refuses_to_start():
    # Before, any value but "stripe" silently selected the sandbox, also in production.
    for debug in ("false", "true"):
        result = run_manage(
            "check", env={**PRODUCTION_ENV, "DEBUG": debug, "PAYMENT_GATEWAY": "strpe"}
        )
        assert result.returncode != 0
        assert "PAYMENT_GATEWAY='strpe': use one of sandbox, stripe" in result.stderr


def test_the_sandbox_outside_debug_needs_allow_sandbox_payments():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "STRIPE_SECRET_KEY"}
    env["PAYMENT_GATEWAY"] = "sandbox"
    refused = run_manage("check", env=env)
    assert refused.returncode != 0 and "ALLOW_SANDBOX_PAYMENTS=true" in refused.stderr
    unset = {k: v for k, v in env.items() if k != "PAYMENT_GATEWAY"}  # the default is the sandbox
    assert run_manage("check", env=unset).returncode != 0
    allowed = run_manage("check", env={**env, "ALLOW_SANDBOX_PAYMENTS": "true"})
    assert allowed.returncode == 0, allowed.stderr
    assert run_manage("check", env={**env, "DEBUG": "true"}).returncode == 0


def test_stripe_without_its_secret_key_refuses_to_start():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "STRIPE_SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0 and "STRIPE_SECRET_KEY" in result.stderr
