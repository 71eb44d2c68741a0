"""Security profiles at the handshake: what each profile demands, TLS and client certificates
from a trusted proxy only, no downgrade after an upgrade, refusals kept as security events."""

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chargers.connections import handshake
from chargers.models import Charger, ChargerCertificate, SecurityEvent
from chargers.security import pki
from tests.chargers.security_helpers import (
    PASSWORD,
    PROXY,
    client_certificate,
    communicator,
    foreign_ca,
    handshake_status,
    long_ago,
    scope,
    via_proxy,
)
from tests.factories import ChargerFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _ca_and_proxy(settings, tmp_path):
    settings.OCPP_CA_DIR = str(tmp_path / "ca")
    settings.OCPP_TRUSTED_PROXIES = [PROXY]


async def make(station_id: str, profile: int, password: str | None = PASSWORD) -> Charger:
    return await sync_to_async(ChargerFactory)(
        station_id=station_id, security_profile=profile, ocpp_password=password
    )


async def status_of(station_id: str, **kwargs) -> int:
    try:
        await handshake.admit(scope(station_id, **kwargs), station_id)
    except handshake.Refused as refused:
        return refused.status
    return 101


async def test_profile_1_needs_the_password_and_the_station_id_as_username():
    await make("SP1-A", 1)
    assert await status_of("SP1-A") == 401
    assert await status_of("SP1-A", password="wrong-" + PASSWORD[6:]) == 401
    assert (
        await status_of("SP1-A", headers=[(b"authorization", b"Basic U1AxLUI6eA==")]) == 401
    )  # SP1-B:x
    assert await status_of("SP1-A", password=PASSWORD) == 101


async def test_an_impostor_without_the_password_cannot_displace_the_real_charger():
    await make("SP1-REAL", 1)
    real = communicator("SP1-REAL", password=PASSWORD)
    assert await handshake_status(real) == 101
    await real.send_to(
        text_data='[2,"b1","BootNotification",{"chargePointVendor":"Real","chargePointModel":"R"}]'
    )
    await real.receive_from(5)
    impostor = communicator("SP1-REAL", address="192.0.2.66")
    assert await handshake_status(impostor) == 401
    impostor_booting = communicator("SP1-REAL", address="192.0.2.66", password="x" * 20)
    assert await handshake_status(impostor_booting) == 401
    # The real charger is still connected and its identity untouched.
    await real.send_to(text_data='[2,"h1","Heartbeat",{}]')
    assert '"h1"' in await real.receive_from(5)
    charger = await Charger.objects.aget(station_id="SP1-REAL")
    assert charger.connection_id and charger.vendor == "Real"
    await real.disconnect()


async def test_profile_0_is_open_to_anyone():
    await make("SP0-A", 0, password=None)
    assert await status_of("SP0-A") == 101


async def test_profile_2_refuses_plain_ws_even_with_the_right_password():
    await make("SP2-A", 2)
    assert await status_of("SP2-A", password=PASSWORD) == 403


async def test_profile_2_connects_over_tls_through_the_trusted_proxy():
    await make("SP2-B", 2)
    assert await status_of("SP2-B", address=PROXY, headers=via_proxy(), password=PASSWORD) == 101
    assert await status_of("SP2-B", address=PROXY, headers=via_proxy()) == 401


async def test_proxy_headers_from_anyone_else_are_ignored():
    await make("SP2-C", 2)
    assert (
        await status_of("SP2-C", address="198.51.100.99", headers=via_proxy(), password=PASSWORD)
        == 403
    )


async def test_tls_older_than_1_2_does_not_count_as_tls():
    await make("SP2-D", 2)
    assert (
        await status_of("SP2-D", address=PROXY, headers=via_proxy(tls="TLSv1.1"), password=PASSWORD)
        == 403
    )


async def test_profile_3_needs_a_certificate_from_our_ca_for_this_station():
    await make("SP3-A", 3, password=None)
    await make("SP3-OTHER", 3, password=None)
    ca = await sync_to_async(pki.get_ca)()
    good = client_certificate(ca, "SP3-A")
    assert await status_of("SP3-A", address=PROXY, headers=via_proxy(good)) == 101
    assert await status_of("SP3-A", address=PROXY, headers=via_proxy()) == 403
    assert (
        await status_of(
            "SP3-A", address=PROXY, headers=via_proxy(client_certificate(foreign_ca(), "SP3-A"))
        )
        == 403
    )
    assert (
        await status_of(
            "SP3-A", address=PROXY, headers=via_proxy(client_certificate(ca, "SP3-OTHER"))
        )
        == 403
    )
    expired = client_certificate(ca, "SP3-A", days=30, now=long_ago())
    assert await status_of("SP3-A", address=PROXY, headers=via_proxy(expired)) == 403
    # The certificate is public: presented by anyone but the TLS proxy, it proves nothing.
    assert await status_of("SP3-A", address="198.51.100.99", headers=via_proxy(good)) == 403


async def test_a_revoked_certificate_no_longer_connects():
    await make("SP3-R", 3, password=None)
    ca = await sync_to_async(pki.get_ca)()
    certificate = client_certificate(ca, "SP3-R")
    charger = await Charger.objects.aget(station_id="SP3-R")
    await ChargerCertificate.objects.acreate(
        charger=charger,
        serial_number="1",
        fingerprint_sha256=pki.fingerprint(certificate),
        subject="CN=SP3-R",
        not_before=timezone.now(),
        not_after=timezone.now(),
        certificate_pem="",
        revoked_at=timezone.now(),
    )
    assert await status_of("SP3-R", address=PROXY, headers=via_proxy(certificate)) == 403


async def test_after_an_accepted_upgrade_the_lower_profile_is_refused():
    charger = await make("SP-UP", 1)
    charger.security_profile_pending = 2
    await charger.asave()
    # A05.FR.08: until it manages the new profile, the charger may fall back to the old one.
    assert await status_of("SP-UP", password=PASSWORD) == 101
    assert await status_of("SP-UP", address=PROXY, headers=via_proxy(), password=PASSWORD) == 101
    charger = await Charger.objects.aget(station_id="SP-UP")
    assert (charger.security_profile, charger.security_profile_pending) == (2, None)
    # A05.FR.09: never lower again.
    assert await status_of("SP-UP", password=PASSWORD) == 403


async def test_refusals_of_a_known_charger_become_security_events_once_a_minute():
    charger = await make("SP-EV", 1)
    for _ in range(3):
        assert await status_of("SP-EV", address="192.0.2.1") == 401
    events = [e async for e in SecurityEvent.objects.filter(charger=charger)]
    assert len(events) == 1
    assert events[0].source == "csms" and events[0].event_type == "InvalidChargePointCredentials"
    assert "192.0.2.1" in events[0].tech_info


async def test_refusal_status_reaches_the_client_over_the_consumer():
    await make("SP-WIRE", 1)
    assert await handshake_status(communicator("SP-WIRE")) == 401
    client = OcppTestClient("SP-WIRE", password=PASSWORD)
    assert (await client.connect())[0]
    await client.close()


async def test_refused_connections_show_on_the_dashboard():
    from django.test import AsyncClient
    from django.urls import reverse

    from tests.factories import MembershipFactory

    charger = await make("SP-DASH", 1)
    owner = await sync_to_async(
        lambda: MembershipFactory(organization=charger.property.organization).user
    )()
    assert await status_of("SP-DASH", address="192.0.2.5") == 401
    web = AsyncClient()
    await web.aforce_login(owner)
    page = (await web.get(reverse("backoffice:dashboard"))).content.decode()
    assert "SP-DASH" in page and "Refused connections" in page
