"""Settings of the charger-identity features, read from Django settings (portal/settings.py
takes them from the environment through backoffice/env.py), else a default (docs/security.md
lists them)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

from django.conf import settings

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _value(name: str, default: str) -> object:
    value = getattr(settings, name, None)
    return default if value is None else value


def _list(value: object) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [str(item).strip() for item in value or [] if str(item).strip()]  # type: ignore[attr-defined]


def ca_dir() -> Path:
    """Where the CSMS certificate authority keeps its key and certificate (OCPP_CA_DIR)."""
    return Path(str(_value("OCPP_CA_DIR", str(Path(settings.BASE_DIR) / "var" / "ca"))))


def cpo_name() -> str:
    """The organization (O) of our CA and of the certificates it issues (OCPP_CPO_NAME)."""
    return str(_value("OCPP_CPO_NAME", getattr(settings, "SITE_NAME", "") or "EV Backoffice"))


def client_certificate_days() -> int:
    return int(str(_value("OCPP_CLIENT_CERT_DAYS", "365")))


def client_cert_header() -> bytes:
    """The request header a trusted TLS proxy puts the charger's client certificate in."""
    return str(_value("OCPP_CLIENT_CERT_HEADER", "X-SSL-Client-Cert")).lower().encode("latin-1")


def trusted_proxies() -> tuple[IpNetwork, ...]:
    """Addresses whose X-Forwarded-* and client-certificate headers are believed (OCPP_TRUSTED_PROXIES)."""
    return _parse_networks(tuple(_list(_value("OCPP_TRUSTED_PROXIES", ""))))


@lru_cache(maxsize=8)
def _parse_networks(items: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def is_trusted_proxy(address: str) -> bool:
    networks = trusted_proxies()
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
