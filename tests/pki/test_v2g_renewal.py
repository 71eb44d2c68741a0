"""A charger's V2G certificate is watched: asked for a new one at 7 days (TriggerMessage
SignV2GCertificate, once a day), and the host's "Certificate expiring" alert sees it even when
the charger's client certificate is newer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chargers.devices import v2g_renewal
from chargers.models import ChargerCertificate
from reliability.services.alerts import certificate_problem
from tests.bounds import GENEROUS_S
from tests.chargers.v201.conftest import connect201


def _certificate(charger, kind: str, days: float, serial: str) -> ChargerCertificate:
    now = timezone.now()
    return ChargerCertificate.objects.create(
        charger=charger,
        certificate_type=kind,
        serial_number=serial,
        fingerprint_sha256=serial.ljust(64, "0"),
        subject=f"CN={serial}",
        not_before=now - timedelta(days=300),
        not_after=now + timedelta(days=days),
        certificate_pem="",
    )


@pytest.mark.django_db
def test_the_expiring_alert_sees_the_v2g_certificate_behind_a_newer_client_one(charger):
    _certificate(charger, "ChargingStationCertificate", 300, "c1")
    _certificate(charger, "V2GCertificate", 20, "v1")
    problem = certificate_problem(charger, 30 * 86400, timezone.now())
    assert problem is not None and problem.details.startswith("V2G certificate v1 ")
    assert certificate_problem(charger, 10 * 86400, timezone.now()) is None


@pytest.mark.django_db(transaction=True)
async def test_a_v2g_certificate_expiring_within_7_days_is_renewed_once_a_day(charger):
    await sync_to_async(_certificate)(charger, "V2GCertificate", 3, "v1")
    client = await connect201()
    sweep = asyncio.create_task(sync_to_async(v2g_renewal.v2g_certificates_renew_task)())
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "TriggerMessage" and call[3] == {"requestedMessage": "SignV2GCertificate"}
    await client.send([3, call[1], {"status": "Accepted"}])
    assert await sweep == {"Accepted": 1}
    # Asked today: not again until tomorrow.
    assert await sync_to_async(v2g_renewal.v2g_certificates_renew_task)() == {}
    await client.close()


@pytest.mark.django_db
def test_a_v2g_certificate_with_weeks_left_is_not_due(charger):
    charger.ocpp_version = "2.0.1"
    charger.save()
    _certificate(charger, "V2GCertificate", 20, "v1")
    assert v2g_renewal.chargers_due(now=timezone.now()) == []
    _certificate(
        charger, "V2GCertificate", 2, "v0"
    )  # an older one expiring soon: the newest counts
    assert v2g_renewal.chargers_due(now=timezone.now()) == []
