"""Environment booleans and numbers are parsed one way everywhere (backoffice.env).

The outside test found BEHIND_TLS_PROXY=false switching proxy headers ON in `manage.py serve`,
which let any client set its own address with X-Forwarded-For.
"""

import pytest
from django.core.exceptions import ImproperlyConfigured

from backoffice.env import env_bool, env_float, env_int, env_list
from chargers.management.commands.serve import uvicorn_config


@pytest.mark.parametrize("value", ["false", "False", "0", "no", "off", " OFF ", ""])
def test_behind_tls_proxy_off_means_no_proxy_headers(monkeypatch, value):
    monkeypatch.setenv("BEHIND_TLS_PROXY", value)
    assert uvicorn_config("127.0.0.1", 8000).proxy_headers is False


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", "on"])
def test_behind_tls_proxy_on_means_proxy_headers(monkeypatch, value):
    monkeypatch.setenv("BEHIND_TLS_PROXY", value)
    assert uvicorn_config("127.0.0.1", 8000).proxy_headers is True


def test_behind_tls_proxy_unset_means_no_proxy_headers(monkeypatch):
    monkeypatch.delenv("BEHIND_TLS_PROXY", raising=False)
    assert uvicorn_config("127.0.0.1", 8000).proxy_headers is False


def test_a_typo_stops_start_up_instead_of_meaning_true(monkeypatch):
    monkeypatch.setenv("BEHIND_TLS_PROXY", "flase")
    with pytest.raises(ImproperlyConfigured, match="BEHIND_TLS_PROXY"):
        uvicorn_config("127.0.0.1", 8000)


def test_numbers_and_lists(monkeypatch):
    monkeypatch.setenv("X_INT", " 42 ")
    monkeypatch.setenv("X_FLOAT", "2.5")
    monkeypatch.setenv("X_LIST", "a, b,,c ")
    assert env_int("X_INT", 1) == 42 and env_float("X_FLOAT", 0.0) == 2.5
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    assert env_int("X_UNSET", 7) == 7 and env_bool("X_UNSET", True) is True
    monkeypatch.setenv("X_INT", "4O")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("X_INT", 1)
