"""One site's enforcement pass run by two processes at once (a sweep on one node, a recompute's
pass on another): they take turns through the database, so a pass that read an older allocation
never sends it after a newer one, nor records it as what the charger holds. The other node is a
real second process on its own connection (a thread of this one shares its memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from chargers.devices import commands
from chargers.models import Charger, ChargingProfile, ChargingSession, Command
from power import enforcement, profiles
from power.models import ConnectorAllocation, ConnectorPower, SiteBudget
from tests import parallel
from tests.conftest import _test_database_url
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db(transaction=True)

# The other node: one pass over the site, its charger answering Accepted at once.
OTHER_NODE = """
import json, sys
import django
django.setup()
from chargers.devices import commands
from chargers.models import Command
from power import enforcement
sent = []
async def answer(charger, action, payload, **kwargs):
    body = payload.get("csChargingProfiles") or payload["chargingProfile"]
    sent.append(body["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])
    return Command(status=Command.Status.ANSWERED, response={"status": "Accepted"})
commands.send_command = answer
count = enforcement.site_pass(int(sys.argv[1]))
print(json.dumps({"count": count, "sent": sent}))
"""


def _other_node_pass(property_id: int) -> dict:
    share = object()
    parallel.acquire_connections(share, 1)
    try:
        done = subprocess.run(
            [sys.executable, "-c", OTHER_NODE, str(property_id)],
            cwd=Path(__file__).resolve().parents[2],
            env={
                **os.environ,
                "DATABASE_URL": _test_database_url(),
                "DEBUG": "true",
                "DB_POOL": "false",
                "CONN_MAX_AGE": "0",
                "POWER_PROFILE_MIN_INTERVAL_S": "0",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        parallel.release_connections(share)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def site(settings):
    settings.POWER_PROFILE_MIN_INTERVAL_S = 0
    now = timezone.now()
    charger = ChargerFactory(
        connection_id="c1",
        connected_at=now - timedelta(seconds=60),
        last_boot_at=now - timedelta(seconds=59),
        last_seen_at=now + timedelta(minutes=5),  # online through the test
        registration_status=Charger.Registration.ACCEPTED,
    )
    SiteBudget.objects.create(property=charger.property, limit_a=Decimal(63))
    ConnectorPower.objects.create(charger=charger, connector_id=1, max_a=Decimal(16))
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=5,
        id_tag="TAG",
        started_at=now - timedelta(seconds=30),
        meter_start_wh=0,
    )
    ChargingSession.objects.filter(pk=session.pk).update(
        received_start_at=now - timedelta(seconds=30)
    )
    # The charger holds its safe default and fresh leases, and its session's 16 A.
    for profile in [
        profiles.safe_default(profiles.V16, 16, now=now),
        *profiles.leases(profiles.V16, 16, now=now, valid_to=now + timedelta(seconds=120)),
    ]:
        body = profile.payload["csChargingProfiles"]
        ChargingProfile.objects.create(
            charger=charger,
            profile_id=body["chargingProfileId"],
            stack_level=body["stackLevel"],
            purpose=body["chargingProfilePurpose"],
            kind=body["chargingProfileKind"],
            valid_to=now + timedelta(seconds=120) if "validTo" in body else None,
            profile={"chargingSchedule": [body["chargingSchedule"]]},
            updated_at=now - timedelta(seconds=30),
        )
    row = ConnectorAllocation.objects.create(
        charger=charger,
        connector_id=1,
        property=charger.property,
        session=session,
        limit_a=Decimal(16),
        applied_limit_a=Decimal(16),
        applied_at=now - timedelta(seconds=20),
    )
    return charger, row


@pytest.mark.usefixtures("postgresql_only")
def test_a_pass_on_another_node_waits_its_turn_and_the_newest_limit_is_sent_last(site, monkeypatch):
    charger, row = site
    # A recompute lowered the limit to 10 A; this node's pass sends it, and its charger is slow
    # to answer.
    ConnectorAllocation.objects.filter(pk=row.pk).update(limit_a=Decimal(10))
    held: list[float] = []  # what the charger received, in order
    sending, release = threading.Event(), threading.Event()

    async def slow_charger(charger, action, payload, **kwargs):
        body = payload.get("csChargingProfiles") or payload["chargingProfile"]
        if body["chargingProfilePurpose"] == "TxProfile":
            sending.set()
            assert release.wait(timeout=60)
            held.append(body["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])
        return Command(status=Command.Status.ANSWERED, response={"status": "Accepted"})

    monkeypatch.setattr(commands, "send_command", slow_charger)
    first: list[int] = []

    def this_node() -> None:
        try:
            first.append(enforcement.site_pass(charger.property_id))
        finally:
            connection.close()

    thread = threading.Thread(target=this_node)
    thread.start()
    try:
        assert sending.wait(timeout=60)
        # Meanwhile another recompute lowers it to 8 A, and the other node runs a pass.
        ConnectorAllocation.objects.filter(pk=row.pk).update(limit_a=Decimal(8))
        other = _other_node_pass(charger.property_id)
    finally:
        release.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    # The site's turn was taken: the other node sent nothing (before, it sent 8 A, then this
    # node's 10 A arrived last and was recorded as held over the 8 A).
    assert other == {"count": 0, "sent": []}
    assert first == [1] and held == [10.0]
    row.refresh_from_db()
    assert row.applied_limit_a == Decimal(10)
    # The next pass (the sweep) sends the newest limit: it is the last the charger received.
    assert enforcement.site_pass(charger.property_id) == 1
    assert held == [10.0, 8.0]
    row.refresh_from_db()
    assert row.applied_limit_a == Decimal(8)
    site_row = SiteBudget.objects.get(property=charger.property)
    assert (site_row.pass_owner, site_row.pass_until) == ("", None)  # the turn was given back


def test_a_turn_left_by_a_pass_that_died_lapses(site, monkeypatch):
    """A process killed mid-pass never gives its turn back: the site waits at most that turn."""
    charger, row = site
    ConnectorAllocation.objects.filter(pk=row.pk).update(limit_a=Decimal(10))
    sent: list[float] = []

    async def charger_answers(charger, action, payload, **kwargs):
        body = payload.get("csChargingProfiles") or payload["chargingProfile"]
        sent.append(body["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])
        return Command(status=Command.Status.ANSWERED, response={"status": "Accepted"})

    monkeypatch.setattr(commands, "send_command", charger_answers)
    now = timezone.now()
    SiteBudget.objects.filter(property=charger.property).update(
        pass_owner="gone", pass_until=now + timedelta(seconds=30)
    )
    assert enforcement.site_pass(charger.property_id) == 0 and sent == []
    SiteBudget.objects.filter(property=charger.property).update(
        pass_until=now - timedelta(seconds=1)
    )
    assert enforcement.site_pass(charger.property_id) == 1 and sent == [10.0]
