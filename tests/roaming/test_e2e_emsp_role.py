"""End to end, from outside, our eMSP role (issue 55): the real server (`manage.py serve`) and an
independent CPO (tests/roaming/cpo_stub.py, written from the OCPI texts) over real HTTP.

A 2.3.0 CPO registered through the REST API gets our cards and has its locations and tariffs
pulled; it asks us live about a card, pushes a location change, a tariff change, a session's
updates and the CDRs; the CDR that agrees with the tariff as it stood gets our price to the
driver, the one that does not is a dispute; a card blocked here reaches it as `valid: false` and
its live check is refused. A driver account
starts, follows, stops and pays at a 2.3.0 CPO from the driver page (the second test).
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

import httpx
import pytest
from allauth.account.models import EmailAddress
from rest_framework.test import APIClient

from authorization.models import Token
from authorization.services import token_update
from drivers.models import DriverProfile
from roaming import emsp_driving
from roaming.models import PartnerCdr, PartnerLocation, PartnerSession, PartnerTariff
from tests.bounds import GENEROUS_S
from tests.conftest import start_live_server, stop_live_server
from tests.factories import MembershipFactory, OrganizationFactory, TokenFactory, UserFactory
from tests.roaming.cpo_stub import CpoStub
from tests.roaming.test_emsp_tokens import with_identity

pytestmark = [pytest.mark.e2e]

START = "2026-03-02T10:00:00Z"


def _tariff(price: float, last_updated: str) -> dict:
    return {
        "country_code": "BE",
        "party_id": "CPX",
        "id": "T1",
        "currency": "EUR",
        "tax_included": "NO",
        "elements": [
            {
                "price_components": [
                    {"type": "FLAT", "price": 1.00, "step_size": 1},
                    {"type": "ENERGY", "price": price, "step_size": 1},
                ]
            }
        ],
        "last_updated": last_updated,
    }


def _location() -> dict:
    connector = {
        "id": "1",
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 16,
        "tariff_ids": ["T1"],
        "last_updated": "2026-01-01T00:00:00Z",
    }
    return {
        "country_code": "BE",
        "party_id": "CPX",
        "id": "LOC1",
        "publish": True,
        "address": "Grote Markt 1",
        "city": "Brussel",
        "country": "BEL",
        "coordinates": {"latitude": "50.846557", "longitude": "4.351697"},
        "time_zone": "Europe/Brussels",
        "evses": [
            {
                "uid": "E1",
                "status": "AVAILABLE",
                "connectors": [connector],
                "last_updated": "2026-01-01T00:00:00Z",
            }
        ],
        "last_updated": "2026-01-01T00:00:00Z",
    }


def _cdr(cdr_id: str, card, *, before_taxes: float) -> dict:
    card = card or Token(uid="-", pk=0)
    return {
        "country_code": "BE",
        "party_id": "CPX",
        "id": cdr_id,
        "start_date_time": START,
        "end_date_time": "2026-03-02T11:00:00Z",
        "session_id": "S1",
        "cdr_token": {
            "country_code": "NL",
            "party_id": "EVB",
            "uid": card.uid,
            "type": "RFID",
            "contract_id": f"NLEVB{card.pk:09d}",
        },
        "auth_method": "AUTH_REQUEST",
        "cdr_location": {"id": "LOC1", "evse_uid": "E1", "connector_id": "1"},
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": START,
                "dimensions": [{"type": "ENERGY", "volume": 10}],
                "tariff_id": "T1",
            }
        ],
        "total_cost": {"before_taxes": before_taxes, "taxes": [{"name": "VAT", "amount": 0}]},
        "total_energy": 10,
        "total_time": 1,
        "last_updated": "2026-03-02T11:01:00Z",
    }


def test_a_cpo_on_2_3_0_and_our_cards_from_outside(transactional_db, tmp_path, settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    org = OrganizationFactory()
    with_identity(org)
    lost = TokenFactory(organization=org, uid="04L05TCA4D")
    driving = TokenFactory(organization=org, uid="04DR1V1NG0")
    owner = UserFactory()
    MembershipFactory(organization=org, user=owner, role="owner")
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        MSP_URL_ALLOWLIST="127.0.0.1",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    settings.SITE_URL = server.url
    cpo = CpoStub(versions=("2.2.1", "2.3.0"))
    cpo.locations = [_location()]
    cpo.tariffs = [_tariff(0.30, "2026-01-01T00:00:00Z")]
    try:
        # 1. Registered through the API, on the newest version both speak.
        api = APIClient()
        api.force_authenticate(owner)
        created = api.post(
            "/api/v1/roaming/partners/",
            {
                "organization": org.pk,
                "name": "Stub CPO",
                "versions_url": cpo.versions_url,
                "token_a": cpo.token_a,
            },
            format="json",
        )
        assert created.status_code == 201, created.content
        assert (created.json()["role"], created.json()["version"]) == ("CPO", "2.3.0")
        assert cpo.emsp_endpoints[("tokens", "SENDER")].startswith(server.url)

        # 2. Our cards reached it; its locations and tariffs were pulled.
        cpo.wait_for_token(driving.uid, valid=True, timeout=GENEROUS_S)
        cpo.wait_for_token(lost.uid, valid=True, timeout=GENEROUS_S)
        assert PartnerLocation.objects.get(organization=org).location_id == "LOC1"
        assert PartnerTariff.objects.get(organization=org).tariff_id == "T1"

        # 3. It asks us live before letting the card start (the real server answers).
        status, answer = cpo.authorize(
            driving.uid, location={"location_id": "LOC1", "evse_uids": ["E1"]}
        )
        assert (status, answer["data"]["allowed"]) == (200, "ALLOWED")

        # 4. Its pushes: the EVSE charging, a dearer tariff from after the session's start.
        assert (
            cpo.push(
                "PATCH",
                "locations",
                "/BE/CPX/LOC1/E1",
                {"status": "CHARGING", "last_updated": START},
            )[1]["status_code"]
            == 1000
        )
        dearer = _tariff(0.50, "2026-03-02T10:30:00Z")
        assert cpo.push("PUT", "tariffs", "/BE/CPX/T1", dearer)[1]["status_code"] == 1000

        # 5. The session's updates.
        session = {
            "country_code": "BE",
            "party_id": "CPX",
            "id": "S1",
            "start_date_time": START,
            "kwh": 0,
            "cdr_token": _cdr("x", driving, before_taxes=0)["cdr_token"],
            "auth_method": "AUTH_REQUEST",
            "location_id": "LOC1",
            "evse_uid": "E1",
            "connector_id": "1",
            "currency": "EUR",
            "status": "ACTIVE",
            "last_updated": START,
        }
        assert cpo.push("PUT", "sessions", "/BE/CPX/S1", session)[1]["status_code"] == 1000
        done = {"kwh": 10, "status": "COMPLETED", "last_updated": "2026-03-02T11:00:00Z"}
        assert cpo.push("PATCH", "sessions", "/BE/CPX/S1", done)[1]["status_code"] == 1000
        row = PartnerSession.objects.get(organization=org)
        assert (row.status, row.token_id, row.data["kwh"]) == ("COMPLETED", driving.pk, 10)

        # 6. The CDR: 1.00 + 10 kWh at 0.30 (the tariff as it stood at 10:00) = 4.00 before tax.
        assert cpo.push("POST", "cdrs", "", _cdr("C1", driving, before_taxes=4.0))[0] == 200
        billed = PartnerCdr.objects.get(cdr_id="C1")
        assert (billed.status, billed.recomputed) == (PartnerCdr.Status.AGREES, Decimal("4.00"))
        # Our price to the driver: + 10 % margin = 4.40, + 21 % VAT 0.92 = 5.32.
        assert (billed.price_excl, billed.price_vat, billed.price_total) == (
            Decimal("4.40"),
            Decimal("0.92"),
            Decimal("5.32"),
        )
        # 7. A CDR that disagrees with its tariff: a dispute, no price.
        cpo.push("POST", "cdrs", "", _cdr("C2", driving, before_taxes=6.0))
        disputed = PartnerCdr.objects.get(cdr_id="C2")
        assert (disputed.status, disputed.price_total) == (PartnerCdr.Status.DISPUTE, None)

        # 8. A card blocked here reaches the CPO as valid:false, and its live check is refused.
        token_update(token=lost, blocked=True)
        assert cpo.wait_for_token(lost.uid, valid=False, timeout=GENEROUS_S)["valid"] is False
        status, answer = cpo.authorize(lost.uid)
        assert (status, answer["data"]["allowed"]) == (200, "BLOCKED")
        assert {r.organization_id for r in PartnerCdr.objects.all()} == {org.pk}
    finally:
        cpo.close()
        stop_live_server(server)


def _driver_signed_in(base_url: str, email: str) -> httpx.Client:
    """A driver account signed in through the real server's login form, with a saved card
    (the sandbox processor's card element, as the browser drives it)."""
    user = UserFactory(username=email, email=email)
    user.set_password("long-pass-9182")
    user.save()
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    DriverProfile.objects.create(user=user)
    http = httpx.Client(base_url=base_url, timeout=GENEROUS_S)
    http.get("/driver/account/login/")
    signed = http.post(
        "/driver/account/login/",
        data={
            "login": email,
            "password": "long-pass-9182",
            "csrfmiddlewaretoken": http.cookies["csrftoken"],
        },
    )
    assert signed.status_code == 302, signed.text[:500]
    page = http.get("/driver/cards/add/").text
    secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
    confirm = re.search(r'data-confirm-url="([^"]+)"', page).group(1)
    answer = http.post(confirm, data={"client_secret": secret, "payment_method": "pm_card_visa"})
    setup_id = answer.json()["id"]
    assert http.get(f"/driver/cards/return/?setup_intent={setup_id}").status_code == 302
    return http


def _until(check, what: str):
    deadline = time.monotonic() + GENEROUS_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {GENEROUS_S} s: {what}")


def test_a_driver_account_starts_stops_and_pays_at_a_2_3_0_cpo(
    transactional_db, tmp_path, settings
):
    """The driver page over the real server: a 2.3.0 CPO's charger with our price, START_SESSION
    with the driver's app token, the CPO's CommandResult at our response URL, its session and
    STOP_SESSION, the CDR paid at our price with the saved card; the app token blocked here
    reaches the CPO as valid: false."""
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    org = OrganizationFactory()
    identity = with_identity(org)
    emsp_driving.driver_accounts_set(identity_id=identity.pk)
    owner = UserFactory()
    MembershipFactory(organization=org, user=owner, role="owner")
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        MSP_URL_ALLOWLIST="127.0.0.1",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    settings.SITE_URL = server.url
    cpo = CpoStub(versions=("2.3.0",))
    located = _location()
    located["evses"][0]["capabilities"] = ["REMOTE_START_STOP_CAPABLE", "RFID_READER"]
    cpo.locations = [located]
    cpo.tariffs = [_tariff(0.30, "2026-01-01T00:00:00Z")]
    try:
        api = APIClient()
        api.force_authenticate(owner)
        created = api.post(
            "/api/v1/roaming/partners/",
            {
                "organization": org.pk,
                "name": "Stub CPO",
                "versions_url": cpo.versions_url,
                "token_a": cpo.token_a,
            },
            format="json",
        )
        assert created.status_code == 201, created.content
        location = _until(lambda: PartnerLocation.objects.filter(organization=org).first(), "pull")

        # 1. The driver page: the partner's charger and our price (0.30 + 10 % + 21 % VAT).
        http = _driver_signed_in(server.url, "roamer@example.com")
        listed = http.get("/driver/networks/?q=Grote").text
        assert f"/driver/networks/{location.pk}/" in listed
        detail = http.get(f"/driver/networks/{location.pk}/").text
        assert "EUR 0.399 per kWh" in detail and "EUR 1.33 per session" in detail

        # 2. Start: the CPO gets START_SESSION with the driver's app token, already pushed to it.
        started = http.post(
            f"/driver/networks/{location.pk}/start/",
            data={"evse": "E1", "connector": "1", "csrfmiddlewaretoken": http.cookies["csrftoken"]},
        )
        assert started.headers["location"] == "/driver/networks/activity/", started.text[:500]
        start = cpo.wait_for_command("START_SESSION", timeout=GENEROUS_S)
        app_token = start["token"]
        assert (app_token["type"], app_token["valid"], start["location_id"]) == (
            "APP_USER",
            True,
            "LOC1",
        )
        cpo.wait_for_token(app_token["uid"], valid=True, timeout=GENEROUS_S)
        assert start["response_url"].startswith(server.url)
        status, answer = cpo.post_result(start["response_url"], "ACCEPTED")
        assert (status, answer["status_code"]) == (200, 1000)
        assert "plug in if you have not" in http.get("/driver/networks/activity/").text

        # 3. Its session, followed on the page, then STOP_SESSION.
        cdr_token = {
            k: app_token[k] for k in ("country_code", "party_id", "uid", "type", "contract_id")
        }
        session = {
            "country_code": "BE",
            "party_id": "CPX",
            "id": "S7",
            "start_date_time": START,
            "kwh": 4,
            "cdr_token": cdr_token,
            "auth_method": "COMMAND",
            "authorization_reference": start["authorization_reference"],
            "location_id": "LOC1",
            "evse_uid": "E1",
            "connector_id": "1",
            "currency": "EUR",
            "status": "ACTIVE",
            "last_updated": START,
        }
        assert cpo.push("PUT", "sessions", "/BE/CPX/S7", session)[1]["status_code"] == 1000
        page = http.get("/driver/networks/activity/").text
        assert "Charging" in page and "4 kWh" in page
        row = PartnerSession.objects.get(session_id="S7")
        stopped = http.post(
            f"/driver/networks/sessions/{row.pk}/stop/",
            data={"csrfmiddlewaretoken": http.cookies["csrftoken"]},
        )
        assert stopped.status_code == 302
        stop = cpo.wait_for_command("STOP_SESSION", timeout=GENEROUS_S)
        assert stop["session_id"] == "S7"
        cpo.post_result(stop["response_url"], "ACCEPTED")
        done = {"kwh": 10, "status": "COMPLETED", "last_updated": "2026-03-02T11:00:00Z"}
        assert cpo.push("PATCH", "sessions", "/BE/CPX/S7", done)[1]["status_code"] == 1000

        # 4. The CDR agrees with the tariff: 4.00 before tax -> 4.40 + 0.92 VAT = 5.32, paid.
        cdr = {**_cdr("C7", None, before_taxes=4.0), "session_id": "S7", "cdr_token": cdr_token}
        assert cpo.push("POST", "cdrs", "", cdr)[0] == 200
        paid = _until(
            lambda: PartnerCdr.objects.filter(cdr_id="C7", payment_status="paid").first(),
            "the CDR paid",
        )
        assert paid.price_total == Decimal("5.32")
        assert "5.32 EUR (0.92 VAT) · paid" in http.get("/driver/networks/activity/").text

        # 5. The app token blocked here: the CPO gets valid: false and its live check is refused.
        token_update(token=Token.objects.get(uid=app_token["uid"]), blocked=True)
        cpo.wait_for_token(app_token["uid"], valid=False, timeout=GENEROUS_S)
        status, answer = cpo.authorize(app_token["uid"], token_type="APP_USER")
        assert answer["data"]["allowed"] == "BLOCKED"
    finally:
        cpo.close()
        stop_live_server(server)
