"""A host organization with one of each object, its three roles, and a second organization."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, Command, Connector, MeterValue, OcppMessage
from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    MspFactory,
    PropertyFactory,
    TokenFactory,
    TokenGroupFactory,
    UserFactory,
)


@dataclass
class Site:
    org: object
    prop: object
    charger: object
    token: object
    group: object
    msp: object
    msp_token: object
    session: object
    decision: object
    owner: object
    manager: object
    viewer: object


def make_site(prefix: str) -> Site:
    prop = PropertyFactory(name=f"{prefix} Garage")
    org = prop.organization
    charger = ChargerFactory(
        property=prop,
        station_id=f"{prefix}-CP-1",
        vendor="Acme",
        model="AC22",
        firmware_version="1.2.3",
    )
    Connector.objects.create(charger=charger, connector_id=0, status="Available")
    Connector.objects.create(charger=charger, connector_id=1, status="Available")
    Connector.objects.create(
        charger=charger, connector_id=2, status="Faulted", error_code="GroundFailure"
    )
    token = TokenFactory(uid=f"{prefix}0001", organization=org, label="Reception")
    group = TokenGroupFactory(organization=org, name=f"{prefix} staff")
    group.tokens.add(token)
    msp = MspFactory(organization=org, name=f"{prefix} Roam")
    msp_token = TokenFactory(uid=f"{prefix}MSP01", organization=None, msp=msp)
    now = timezone.now()
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=abs(hash(prefix)) % 100000 + 1,
        id_tag=token.uid,
        token=token,
        started_at=now - timedelta(hours=1),
        stopped_at=now - timedelta(minutes=10),
        meter_start_wh=1000,
        meter_stop_wh=8000,
        status="completed",
        stop_reason="Local",
    )
    for i in range(4):
        MeterValue.objects.create(
            charger=charger,
            session=session,
            connector_id=1,
            timestamp=now - timedelta(minutes=60 - i * 15),
            unit="Wh",
            value=Decimal(1000 + i * 2000),
        )
        MeterValue.objects.create(
            charger=charger,
            session=session,
            connector_id=1,
            timestamp=now - timedelta(minutes=60 - i * 15),
            unit="W",
            measurand="Power.Active.Import",
            value=Decimal(7000 + i),
        )
    OcppMessage.objects.create(
        charger=charger,
        direction="in",
        message_type=2,
        unique_id="u1",
        action="Authorize",
        id_tag="DEADBEEF",
        payload={"idTag": "DEADBEEF"},
    )
    OcppMessage.objects.create(
        charger=charger,
        direction="out",
        message_type=3,
        unique_id="u1",
        action="Authorize",
        payload={"idTagInfo": {"status": "Invalid"}},
    )
    OcppMessage.objects.create(
        charger=charger,
        direction="in",
        message_type=2,
        unique_id="u2",
        action="Heartbeat",
        payload={},
    )
    decision = AuthorizationDecision.objects.create(
        uid="DEADBEEF",
        uid_normalized="DEADBEEF",
        organization=org,
        station_id=charger.station_id,
        context="local",
        status="Invalid",
        reason="unknown_token",
        step=3,
        message="This card is not known here.",
        ocpp_unique_id="u1",
    )
    Command.objects.create(
        charger=charger, action="Reset", payload={"type": "Soft"}, status="offline"
    )
    users = {
        role: MembershipFactory(
            organization=org, role=role, user=UserFactory(username=f"{role}@{prefix}.test")
        ).user
        for role in ("owner", "manager", "viewer")
    }
    return Site(
        org,
        prop,
        charger,
        token,
        group,
        msp,
        msp_token,
        session,
        decision,
        users["owner"],
        users["manager"],
        users["viewer"],
    )


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def site(db) -> Site:
    return make_site("A")


@pytest.fixture
def other(db) -> Site:
    return make_site("B")
