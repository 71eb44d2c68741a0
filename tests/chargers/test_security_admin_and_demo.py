"""Chargers made by support (Django admin) and by `make run` (load_demo) have passwords; the
demo simulators know them; staff may revoke a certificate."""

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from chargers.connections import handshake
from chargers.management.simulator import SimulatedCharger, demo_password
from chargers.models import Charger, ChargerCertificate
from tests.chargers.security_helpers import scope
from tests.factories import ChargerFactory, PropertyFactory


def test_a_charger_added_in_the_admin_gets_a_password_shown_once(admin_client, db):
    prop = PropertyFactory()
    response = admin_client.post(
        reverse("admin:chargers_charger_add"),
        {
            "station_id": "ADM-1",
            "property": prop.pk,
            "name": "",
            "access_mode": "public",
            "ownership": "network",
            "registration_status": "Accepted",
            "heartbeat_interval": 60,
            "security_profile": 1,
            "identity_conflict_replacements": 0,
            "schema_violations": 0,
            "proxy_leader_timeout_s": 10,
            "connectors-TOTAL_FORMS": 0,
            "connectors-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200, response.content[:2000]
    password = response.context["password"]
    assert password in response.content.decode()
    charger = Charger.objects.get(station_id="ADM-1")
    assert charger.check_ocpp_password(password) and password not in charger.ocpp_password_hash
    page = admin_client.get(
        reverse("admin:chargers_charger_change", args=[charger.pk])
    ).content.decode()
    assert password not in page


def test_the_admin_refuses_to_remove_the_password_of_a_password_profile(admin_client, db):
    charger = ChargerFactory(security_profile=1, ocpp_password="p" * 20)
    response = admin_client.post(
        reverse("admin:chargers_charger_change", args=[charger.pk]),
        {
            "station_id": charger.station_id,
            "property": charger.property_id,
            "access_mode": "public",
            "ownership": "network",
            "registration_status": "Accepted",
            "heartbeat_interval": 60,
            "security_profile": 1,
            "remove_password": "on",
            "identity_conflict_replacements": 0,
            "schema_violations": 0,
            "proxy_leader_timeout_s": 10,
            "connectors-TOTAL_FORMS": 0,
            "connectors-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200 and "keep it" in response.content.decode()
    assert Charger.objects.get(pk=charger.pk).check_ocpp_password("p" * 20)


def test_revoking_a_certificate_in_the_admin(admin_client, db):
    charger = ChargerFactory()
    certificate = ChargerCertificate.objects.create(
        charger=charger,
        serial_number="1",
        fingerprint_sha256="ab" * 32,
        subject="CN=x",
        not_before=timezone.now(),
        not_after=timezone.now(),
        certificate_pem="",
    )
    admin_client.post(
        reverse("admin:chargers_chargercertificate_changelist"),
        {"action": "revoke", "_selected_action": [certificate.pk]},
    )
    assert ChargerCertificate.objects.get(pk=certificate.pk).revoked_at is not None


@pytest.mark.django_db(transaction=True)
async def test_demo_chargers_need_the_password_the_simulators_use():
    await sync_to_async(call_command)("load_demo")
    charger = await Charger.objects.aget(station_id="DEMO-001")
    assert charger.security_profile == 1
    password = demo_password(settings.SECRET_KEY, "DEMO-001")
    with pytest.raises(handshake.Refused) as refused:
        await handshake.admit(scope("DEMO-001"), "DEMO-001")
    assert refused.value.status == 401
    assert (
        await handshake.admit(scope("DEMO-001", password=password), "DEMO-001")
    ).pk == charger.pk
    # What `serve --simulate` and `simulate_chargers` send.
    sim = SimulatedCharger(url="ws://unused/ocpp", station_id="DEMO-001", password=password)
    headers = [(k.lower().encode(), v.encode()) for k, v in sim._headers().items()]
    assert (await handshake.admit(scope("DEMO-001", headers=headers), "DEMO-001")).pk == charger.pk
