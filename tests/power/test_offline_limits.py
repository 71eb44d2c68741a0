"""The Power page's live card for chargers that did not take their limit: one offline (nothing
reaches it: it said "sending" for as long as it stayed away) and one that did not answer its
SetChargingProfile (it said "refused the limit" without why). The host reads which, and why."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.models import Charger, ChargingSession
from power import enforcement, services
from power.models import ConnectorAllocation, SiteBudget
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def _charging(prop, station_id: str, **fields):
    charger = ChargerFactory(property=prop, station_id=station_id, **fields)
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=abs(hash(station_id)) % 10_000 + 1,
        id_tag="TAG",
        started_at=timezone.now() - timedelta(minutes=10),
        meter_start_wh=0,
    )
    return charger


def _row(body: str, station_id: str) -> str:
    row = body[body.index(f">{station_id}</a>") :]
    return row[: row.index("</tr>")]


def test_the_live_card_says_which_charger_is_offline_and_why_one_refused(client, host, prop):
    SiteBudget.objects.create(property=prop, limit_a=Decimal(32))
    away = _charging(prop, "AWAY-1")
    silent = _charging(prop, "SILENT-1")
    services.recompute(prop.pk)
    enforcement.site_pass(prop.pk)  # AWAY-1 is offline: nothing is sent to it
    # SILENT-1 is online and did not answer its SetChargingProfile in time.
    Charger.objects.filter(pk=silent.pk).update(connection_id="conn-1", last_seen_at=timezone.now())
    ConnectorAllocation.objects.filter(charger=silent).update(
        refused=True, refused_reason="No answer to SetChargingProfile within 30 s."
    )
    client.force_login(host)

    body = client.get(f"/locations/{prop.pk}/power/live/").content.decode()

    offline = _row(body, away.station_id)
    assert "sending" not in offline
    assert "offline" in offline and "safe default" in offline
    refused = _row(body, silent.station_id)
    assert "refused the limit" in refused
    assert "No answer to SetChargingProfile within 30 s." in refused
