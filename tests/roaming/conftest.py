"""Fixtures for roaming: an operator with published and unpublished chargers, a connected partner."""

import base64
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.models import Connector
from roaming import ocpi
from roaming.models import LocationProfile, Partner
from tests.factories import ChargerFactory, OrganizationFactory, PropertyFactory

PARTNER_TOKEN = "partner-token-c-0123456789"


def auth(token: str = PARTNER_TOKEN) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


def located(prop, **fields):
    values = {
        "city": "Utrecht",
        "postal_code": "3511 AB",
        "country": "NLD",
        "latitude": Decimal("52.090737"),
        "longitude": Decimal("5.121420"),
        **fields,
    }
    return LocationProfile.objects.create(property=prop, **values)


def online(charger, statuses):
    """Mark the charger connected and store its connectors' OCPP statuses."""
    now = timezone.now()
    type(charger).objects.filter(pk=charger.pk).update(
        connection_id="c1", last_seen_at=now, connected_at=now
    )
    for connector_id, status in statuses.items():
        Connector.objects.create(
            charger=charger, connector_id=connector_id, status=status, status_timestamp=now
        )
    charger.refresh_from_db()
    return charger


@pytest.fixture
def operator(db):
    """Property 'public' (roaming on, OCPI data) with a public, a private and a guest-only charger;
    property 'closed' with roaming off; property 'no data' without OCPI location data."""
    org = OrganizationFactory(name="Operator")
    public = PropertyFactory(organization=org, name="Public garage", roaming_enabled=True)
    located(public)
    closed = PropertyFactory(organization=org, name="Staff only", roaming_enabled=False)
    located(closed)
    nodata = PropertyFactory(organization=org, name="No data", roaming_enabled=True)
    chargers = {
        "public": online(
            ChargerFactory(property=public, station_id="PUB-1"),
            {0: "Available", 1: "Available", 2: "Charging"},
        ),
        "private": online(
            ChargerFactory(property=public, station_id="PRIV-1", access_mode="private"),
            {1: "Available"},
        ),
        "guest": online(
            ChargerFactory(property=public, station_id="GUEST-1", access_mode="guest"),
            {1: "Available"},
        ),
        "closed": online(ChargerFactory(property=closed, station_id="CLOSED-1"), {1: "Available"}),
        "nodata": online(ChargerFactory(property=nodata, station_id="NODATA-1"), {1: "Available"}),
    }
    return {
        "org": org,
        "public": public,
        "closed": closed,
        "nodata": nodata,
        **{f"cp_{k}": v for k, v in chargers.items()},
    }


def connected_partner(
    organization, *, token=PARTNER_TOKEN, base="https://emsp.example/ocpi/emsp/2.2.1", **fields
):
    endpoints = {
        m: {"RECEIVER": f"{base}/{m}"} for m in ("locations", "sessions", "cdrs", "tariffs")
    }
    endpoints["tokens"] = {"SENDER": f"{base}/tokens"}
    endpoints["credentials"] = {"RECEIVER": f"{base}/credentials"}
    from authorization.models import MobilityServiceProvider

    cc, pid = fields.pop("country_code", "DE"), fields.pop("party_id", "EMS")
    msp = MobilityServiceProvider.objects.create(
        organization=organization,
        name=f"MSP {cc}*{pid}",
        country_code=cc,
        party_id=pid,
        live_validation_url=endpoints["tokens"]["SENDER"],
        live_validation_token=base64.b64encode(
            fields.get("outgoing_token", "our-token-at-partner").encode()
        ).decode(),
    )
    values = {
        "name": "eMSP",
        "country_code": cc,
        "party_id": pid,
        "state": Partner.State.CONNECTED,
        "msp": msp,
        "incoming_token_hash": ocpi.token_hash(token),
        "outgoing_token": "our-token-at-partner",
        "endpoints": endpoints,
        "version": "2.2.1",
        "registered_at": timezone.now() - timedelta(days=1),
        **fields,
    }
    return Partner.objects.create(organization=organization, **values)


@pytest.fixture
def partner(operator):
    return connected_partner(operator["org"])
