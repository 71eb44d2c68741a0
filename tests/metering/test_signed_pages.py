"""Where a driver and a host see the meter's signature: the session API, the host's session
page, the guest receipt, the driver's history, and the transparency file behind each link."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from chargers.management.ocmf_meter import (
    SigningMeter,
    change_one_digit,
    generate_key,
    oca_public_key,
    public_key_hex,
    signed_meter_value,
)
from chargers.models import ChargingSession
from guest.models import GuestSession
from metering import display, transparency
from metering.services import meter_key_put, session_signed_ingest
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db


def _sampled(record: str, context: str, key) -> dict:
    value = signed_meter_value(record, public_key=oca_public_key(key))
    return {
        "value": json.dumps(value),
        "format": "SignedData",
        "context": context,
        "measurand": "Energy.Active.Import.Register",
        "unit": "Wh",
    }


def _signed_session(charger, key, *, tamper=False, transaction_id=1) -> ChargingSession:
    started = timezone.now() - timedelta(hours=1)
    stopped = started + timedelta(minutes=40)
    meter = SigningMeter(key, serial=f"SIM-{charger.station_id}-1")
    begin = meter.sign(wh=10_000, tx="B", when=started, id_tag="CARD-1")
    end = meter.sign(wh=14_500, tx="E", when=stopped, id_tag="CARD-1")
    if tamper:
        end = change_one_digit(end)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=transaction_id,
        id_tag="CARD-1",
        started_at=started,
        stopped_at=stopped,
        meter_start_wh=10_000,
        meter_stop_wh=14_500,
        status="completed",
        stop_reason="Local",
        transaction_data=[
            {
                "timestamp": stopped.isoformat(),
                "sampledValue": [
                    _sampled(begin, "Transaction.Begin", key),
                    _sampled(end, "Transaction.End", key),
                ],
            }
        ],
    )
    session_signed_ingest(session_id=session.pk)
    return session


@pytest.fixture
def signed(db):
    prop = PropertyFactory(name="Garage", timezone="Europe/Berlin")
    owner = MembershipFactory(organization=prop.organization, role="owner").user
    charger = ChargerFactory(property=prop, station_id="EICH-1")
    key = generate_key()
    meter_key_put(charger=charger, meter_serial="SIM-EICH-1-1", public_key=public_key_hex(key))
    good = _signed_session(charger, key, transaction_id=11)
    bad = _signed_session(charger, key, tamper=True, transaction_id=12)
    return {"owner": owner, "charger": charger, "key": key, "good": good, "bad": bad}


def test_the_transparency_file_is_what_the_safe_software_opens():
    xml = transparency.transparency_xml(
        transaction_id=7,
        values=[("Transaction.Begin", 'OCMF|{"A":"<&>"}|{"SD":"01"}'), ("Transaction.End", "X")],
        public_key_hex="30aa",
    )
    root = ET.fromstring(xml)
    assert root.tag == "values"
    first = root.find("value")
    assert first.attrib == {"transactionId": "7", "context": "Transaction.Begin"}
    assert first.find("signedData").attrib == {"format": "OCMF", "encoding": "plain"}
    assert first.find("signedData").text == 'OCMF|{"A":"<&>"}|{"SD":"01"}'  # verbatim, no padding
    assert first.find("publicKey").attrib == {"encoding": "hex"}
    assert first.find("publicKey").text == "30AA"
    assert transparency.file_name("CP 1/x", 7) == "CP-1-x-session-7-signed.xml"


def test_the_session_api_shows_verified_and_the_changed_digit(client, signed):
    client.force_login(signed["owner"])
    good = client.get(f"/api/v1/sessions/{signed['good'].pk}/").json()["signed_meter_values"]
    assert good["status"] == "verified" and good["energy_wh"].startswith("4500")
    assert good["public_key"].upper() == public_key_hex(signed["key"])
    assert [v["nature"] for v in good["values"]] == ["start", "end"]
    assert good["transparency_url"].startswith("/metering/signed/")
    bad = client.get(f"/api/v1/sessions/{signed['bad'].pk}/").json()["signed_meter_values"]
    assert bad["status"] == "invalid_signature" and bad["energy_wh"] is None
    assert bad["text"].startswith("Signed by the meter: not verified")


def test_a_session_without_a_signing_meter_says_nothing(client, signed):
    other = ChargerFactory(property=signed["charger"].property, station_id="PLAIN-1")
    session = ChargingSession.objects.create(
        charger=other,
        connector_id=1,
        transaction_id=99,
        id_tag="X",
        started_at=datetime(2026, 11, 1, 8, tzinfo=UTC),
        status="active",
    )
    client.force_login(signed["owner"])
    assert client.get(f"/api/v1/sessions/{session.pk}/").json()["signed_meter_values"] is None
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    assert "Signed by the meter" not in page


def test_the_host_page_says_verified_and_offers_the_download(client, signed):
    client.force_login(signed["owner"])
    page = client.get(f"/sessions/{signed['good'].pk}/").content.decode()
    assert "Signed by the meter: verified" in page
    assert "start 10.000 kWh, end 14.500 kWh: <strong>4.500 kWh</strong> signed and billed" in page
    link = display.transparency_path(signed["good"].pk)
    assert f'href="{link}"' in page and "transparency software" in page
    download = client.get(link)
    assert download.status_code == 200
    assert download["Content-Disposition"] == (
        f'attachment; filename="EICH-1-session-{signed["good"].pk}-signed.xml"'
    )
    values = ET.fromstring(download.content).findall("value")
    assert [v.get("context") for v in values] == ["Transaction.Begin", "Transaction.End"]
    assert all(v.find("signedData").text.startswith("OCMF|") for v in values)
    bad = client.get(f"/sessions/{signed['bad'].pk}/").content.decode()
    assert "The signature does not match the readings" in bad


def test_a_sessions_link_is_the_same_whenever_it_is_made_and_old_links_still_open(client, signed):
    from django.core import signing

    pk = signed["good"].pk
    assert display.transparency_token(pk) == display.transparency_token(pk)
    assert display.transparency_token(pk).count(":") == 1  # no timestamp in it
    old = signing.dumps(pk, salt=display.SALT)  # a link made before, stamped with its second
    assert display.session_id_of(old) == pk


def test_a_made_up_or_other_link_finds_nothing(client, signed):
    token = display.transparency_token(signed["good"].pk)
    assert client.get(f"/metering/signed/{token}x/transparency.xml").status_code == 404
    assert client.get("/metering/signed/123/transparency.xml").status_code == 404
    unsigned = ChargingSession.objects.create(
        charger=ChargerFactory(station_id="PLAIN-2"),
        connector_id=1,
        transaction_id=5,
        id_tag="X",
        started_at=datetime(2026, 11, 1, 8, tzinfo=UTC),
    )
    assert client.get(display.transparency_path(unsigned.pk)).status_code == 404


def test_the_guest_receipt_says_verified_with_the_download(client, signed):
    gs = GuestSession.objects.create(
        charger=signed["charger"],
        connector_id=1,
        email="guest@example.com",
        state=GuestSession.State.FINISHED,
        charging_session=signed["good"],
    )
    page = client.get(f"/s/receipt/{gs.key}/").content.decode()
    assert "Signed by the meter: verified" in page
    assert display.transparency_path(signed["good"].pk) in page
    assert "S.A.F.E. transparency software" in page


def test_the_drivers_history_says_verified(client, signed):
    from drivers.models import ClaimedSession, DriverProfile
    from tests.drivers.conftest import sign_up

    gs = GuestSession.objects.create(
        charger=signed["charger"],
        connector_id=1,
        email="driver@example.com",
        state=GuestSession.State.FINISHED,
        charging_session=signed["good"],
    )
    sign_up(client, "driver@example.com")
    profile = DriverProfile.objects.get(user__email="driver@example.com")
    ClaimedSession.objects.get_or_create(profile=profile, guest_session=gs)
    history = client.get("/driver/sessions/").content.decode()
    assert "Signed by the meter: verified" in history
    receipt = client.get(f"/driver/sessions/{gs.pk}/receipt/").content.decode()
    assert display.transparency_path(signed["good"].pk) in receipt


def test_the_assistants_session_facts_include_the_signature(signed):
    from support.assistant.diagnosis import Viewer, diagnose
    from support.assistant.topics import Topic

    host = Viewer.for_user(signed["owner"])
    good = diagnose(Topic.COST_BREAKDOWN, viewer=host, session_id=signed["good"].pk)
    assert any(
        fact.startswith(
            "Signed by the meter: verified: signed start 10.000 kWh, signed end "
            "14.500 kWh, so 4.500 kWh billed"
        )
        for fact in good.facts
    ), good.facts
    bad = diagnose(Topic.COST_BREAKDOWN, viewer=host, session_id=signed["bad"].pk)
    assert any("not verified" in fact and "held for review" in fact for fact in bad.facts)


def test_admin_shows_the_verification_result(client, signed):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin_user)
    page = client.get(f"/admin/chargers/chargingsession/{signed['bad'].pk}/change/")
    text = page.content.decode()
    assert "Signed by the meter: not verified" in text and "each reading" in text
    readings = client.get(
        f"/admin/metering/signedreading/?session__id__exact={signed['bad'].pk}"
    ).content.decode()
    assert "invalid_signature" in readings or "Invalid signature" in readings


def test_the_emailed_receipt_says_verified(signed, mailoutbox):
    from guest.services import receipt_email

    gs = GuestSession.objects.create(
        charger=signed["charger"],
        connector_id=1,
        email="guest@example.com",
        state=GuestSession.State.FINISHED,
        charging_session=signed["good"],
    )
    receipt_email(gs=gs)
    body = mailoutbox[-1].body
    assert "Signed by the meter: verified. The receipt page below offers the transparency" in body


def test_the_session_list_reads_signatures_per_page_not_per_session(client, signed):
    """Two signed sessions or twelve: a page of sessions reads their signatures and settlements
    in the same number of queries, and each row says what its own detail says."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chargers.web.api import SESSION_ROW_RELATED, SessionSerializer

    def listed() -> tuple[int, dict]:
        # The rows as the sessions API selects them (its payer column reads their relations).
        page = ChargingSession.objects.select_related(
            "charger__property", *SESSION_ROW_RELATED
        ).order_by("pk")
        with CaptureQueriesContext(connection) as queries:
            rows = SessionSerializer(page, many=True).data
        return len(queries), {r["id"]: r for r in rows}

    few, rows = listed()
    assert rows[signed["good"].pk]["signed_meter_values"]["status"] == "verified"
    assert rows[signed["bad"].pk]["signed_meter_values"]["status"] == "invalid_signature"
    for n in range(10):
        _signed_session(signed["charger"], signed["key"], transaction_id=100 + n)
    many, rows = listed()
    assert len(rows) == 12 and many == few
    client.force_login(signed["owner"])
    detail = client.get(f"/api/v1/sessions/{signed['good'].pk}/").json()
    assert {k: detail[k] for k in rows[signed["good"].pk]} == rows[signed["good"].pk]
