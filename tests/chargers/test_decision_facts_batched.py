"""The facts a card decision needs, read in batches (chargers.sessions.starts): on PostgreSQL they are read
by three plain statements for every start and Authorize waiting, and must be exactly what the
ORM path (`services.start_prepare` / `decision_inputs`) reads, charger by charger and card by card."""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import timezone

from chargers.models import ConnectorReservation
from chargers.sessions import opening, starts
from chargers.sessions.starts import FactsQuery
from stays.models import Reservation, Unit
from tests.factories import (
    ChargerFactory,
    MspFactory,
    PropertyFactory,
    TokenFactory,
    TokenGroupFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the batched read runs on PostgreSQL (elsewhere the ORM path is the only one)")


def _world():
    """Two hosts whose chargers and cards differ in every fact a decision reads."""
    home = PropertyFactory()
    org = home.organization
    other = PropertyFactory(roaming_enabled=True, guest_charging_enabled=True)
    plain = ChargerFactory(property=home)
    grouped = ChargerFactory(property=home, access_mode="private")
    restricted = ChargerFactory(property=other, roaming_enabled=None)
    loose = ChargerFactory(property=None, access_mode="guest")
    reserved = ChargerFactory(property=home)
    team = TokenGroupFactory(organization=org)
    vip = TokenGroupFactory(organization=other.organization)
    grouped.token_groups.add(team)
    vip.restricted_properties.add(other)
    own = TokenFactory(uid="AA-11", organization=org)
    team.tokens.add(own)
    msp = MspFactory(organization=org, live_validation_url="https://msp.example/tokens")
    TokenFactory(uid="aa11", organization=None, msp=msp)  # the same card as an MSP's token
    TokenFactory(uid="AA11", organization=other.organization)  # and as another host's
    roamer = TokenFactory(uid="R-1", organization=None, msp=MspFactory(blocked=True))
    vip.tokens.add(roamer)
    TokenFactory(uid="BLOCKED", organization=org, blocked=True, expires_at=T0 + timedelta(days=3))
    once = TokenFactory(uid="ONCE", organization=org, single_session=True)
    # A guest's card for a stay: its allowance is counted by the ORM path.
    unit = Unit.objects.create(property=home, name="Cabin 1", kind="cabin")
    stay = Reservation.objects.create(
        property=home,
        unit=unit,
        guest_name="Anna Smith",
        check_in=T0 - timedelta(days=1),
        check_out=T0 + timedelta(days=2),
    )
    TokenFactory(uid="STAY-1", organization=org, reservation=stay)
    opening.open_orm(
        opening.OpenRequest(
            charger_id=grouped.pk,
            connector_id=3,
            id_tag="ONCE",
            meter_start=0,
            started_at=T0,
            token=once,
        )
    )  # charging elsewhere: a one-session card counts it
    ConnectorReservation.objects.create(
        charger=reserved,
        connector_id=1,
        reservation_id=7,
        id_tag="AA11",
        expires_at=T0 + timedelta(days=1),
        status=ConnectorReservation.Status.ACTIVE,
    )
    repeat = opening.open_orm(
        opening.OpenRequest(
            charger_id=plain.pk, connector_id=2, id_tag="AA11", meter_start=5, started_at=T0
        )
    )
    queries = []
    for charger in (plain, grouped, restricted, loose, reserved):
        for uid in ("AA11", "aa-11", "R-1", "BLOCKED", "ONCE", "STAY-1", "NOBODY"):
            queries.append(FactsQuery(charger.pk, 1, uid, (100, T0)))
            queries.append(FactsQuery(charger.pk, None, uid))  # Authorize: the charger as a whole
    # A start whose own time was replaced by its receive time (a charger without a set clock):
    # the running session of its connector, card and meterStart opened shortly before is its
    # repeat; one opened longer before, or a start with a time of its own, is not.
    for minutes, clock_wrong in ((5, True), (20, True), (5, False)):
        later = (5, T0 + timedelta(minutes=minutes))
        queries.append(FactsQuery(plain.pk, 2, "AA11", later, clock_wrong))
    queries.append(FactsQuery(plain.pk, 2, "AA11", (5, T0)))  # repeats the session started above
    return queries, repeat


def _same(batched, orm):
    assert batched.repeat == orm.repeat
    assert batched.charger == orm.charger
    assert batched.location_id == orm.location_id
    assert (batched.token is None) == (orm.token is None)
    if orm.token is not None:
        assert batched.token[0].pk == orm.token[0].pk
        assert batched.token[0].msp_id == orm.token[0].msp_id
        assert (batched.token[0].msp.pk if batched.token[0].msp_id else None) == (
            orm.token[0].msp.pk if orm.token[0].msp_id else None
        )
        assert batched.token[1] == orm.token[1]


async def test_the_batched_read_reads_what_the_orm_reads():
    queries, repeat = await sync_to_async(_world)()
    batched = await starts._prepare_pg(queries)
    orm = await sync_to_async(starts._prepare_pool)(queries)
    for one, other in zip(batched, orm, strict=True):
        _same(one, other)
    # The facts that differ did differ (the comparison above compared something).
    assert batched[-1].repeat.pk == repeat.pk
    assert [b.repeat.pk if b.repeat else None for b in batched[-4:-1]] == [repeat.pk, None, None]
    assert len({b.charger for b in batched if b.charger}) > 4
    assert {b.token[0].uid for b in batched if b.token} >= {"AA-11", "R-1", "BLOCKED", "ONCE"}
    assert any(b.charger.reserved for b in batched if b.charger)
    assert any(b.charger.restricted_group_ids for b in batched if b.charger)
    assert any(b.token[1].group_ids for b in batched if b.token)
    assert any(b.token[1].active_sessions for b in batched if b.token)
    assert any(b.token[1].stay for b in batched if b.token)


async def test_starts_waiting_at_once_share_statements():
    chargers = await sync_to_async(lambda: [ChargerFactory() for _ in range(30)])()
    before = starts.batches()
    facts = await asyncio.gather(
        *(
            starts.start_prepare(
                charger_id=c.pk, connector_id=1, id_tag="NOBODY", meter_start=0, started_at=T0
            )
            for c in chargers
        )
    )
    assert [f.charger.station_id for f in facts] == [c.station_id for c in chargers]
    assert starts.batches() - before < len(chargers)
