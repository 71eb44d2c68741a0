"""A partner CDR's charge to the driver's saved card whose answer was lost, and then the
processor stayed out of reach: the sweep asks again with the same idempotency key for as long as
the processor keeps that key (Stripe: at least 24 hours, then it may forget it and a retry is a
new charge). After 23 hours without an answer the CDR is not charged again: it is failed with
words for the driver and left to support to reconcile, as a subscription's month is
(tests/drivers/test_unanswered_for_a_day.py). An answer within the day clears the mark.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing.gateways import PaymentResult
from billing.models import Payment, SandboxIntent
from drivers import roaming as driver_roaming
from drivers.models import DriverProfile
from roaming import emsp_driving
from roaming.models import PartnerCdr
from tests.drivers.conftest import save_card, sign_up
from tests.drivers.test_roaming import network as network  # the fixture
from tests.roaming.conftest import auth
from tests.roaming.test_emsp_tokens import CPO_TOKEN

pytestmark = pytest.mark.django_db

START = "2026-03-02T10:00:00Z"
SWEEP = timedelta(minutes=15)


class OutOfReach:
    """The sandbox gateway behind a network that loses the first charge's answer and then
    reaches nothing until `back`; a key older than 24 hours is forgotten, as Stripe may."""

    def __init__(self, real, back: datetime):
        self.real, self.back, self.now = real, back, back
        self.first_seen: dict[str, datetime] = {}
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def charge_saved(self, **kwargs):
        self.calls += 1
        key = kwargs["idempotency_key"]
        seen = self.first_seen.setdefault(key, self.now)
        lost = PaymentResult(False, "", "No answer from Stripe: APIConnectionError", answered=False)
        if self.calls == 1:
            self.real.charge_saved(**kwargs)  # charged; the answer never comes back
            return lost
        if self.now < self.back:
            return lost  # nothing reaches the processor
        if self.now - seen >= timedelta(hours=24):
            kwargs["idempotency_key"] = f"{key}:after-pruning"  # a new request to the processor
        return self.real.charge_saved(**kwargs)


def session_body(uid: str) -> dict:
    """The CPO's session S1 of the driver's app token, as it ends."""
    return {
        "country_code": "BE",
        "party_id": "CPX",
        "id": "S1",
        "start_date_time": START,
        "kwh": 10,
        "cdr_token": cdr_body("-", uid)["cdr_token"],
        "auth_method": "COMMAND",
        "location_id": "LOC1",
        "evse_uid": "E1",
        "connector_id": "1",
        "currency": "EUR",
        "total_cost": {"excl_vat": 4.0},
        "status": "COMPLETED",
        "last_updated": START,
    }


def cpo_sends(method: str, url: str, body: dict) -> None:
    # The CPO is not the signed-in driver: its calls go without the driver's cookies.
    answer = Client().generic(
        method,
        url,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(CPO_TOKEN),
    )
    assert answer.status_code in (200, 201), answer.content


def cdr_body(cdr_id: str, uid: str) -> dict:
    """A CDR of the driver's app token at the network's LOC1 (10 kWh on tariff T1)."""
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
            "uid": uid,
            "type": "APP_USER",
            "contract_id": "NLEVB000000001",
        },
        "auth_method": "COMMAND",
        "cdr_location": {"id": "LOC1", "evse_uid": "E1", "connector_id": "1"},
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": START,
                "dimensions": [{"type": "ENERGY", "volume": 10}],
                "tariff_id": "T1",
            }
        ],
        "total_cost": {"excl_vat": 4.0},
        "total_energy": 10,
        "total_time": 1,
        "last_updated": "2026-03-02T11:01:00Z",
    }


def due_cdr(client: Client, email: str) -> PartnerCdr:
    """A signed-up driver with a saved card, and a partner CDR of theirs due (its charge task
    not run: the sweep charges it)."""
    sign_up(client, email)
    save_card(client)
    profile = DriverProfile.objects.get(user__email=email)
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    cpo_sends("PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1", session_body(token.uid))
    cpo_sends("POST", "/ocpi/2.2.1/emsp/cdrs", cdr_body("C24", token.uid))
    cdr = PartnerCdr.objects.get(cdr_id="C24")
    assert cdr.payment_status == PartnerCdr.PaymentStatus.DUE
    return cdr


def sweep_until(gateway: OutOfReach, start: datetime, end: datetime) -> datetime:
    at = start
    while at <= end:
        gateway.now = at
        driver_roaming.roaming_charges_collect(now=at)
        at += SWEEP
    return at


def succeeded(cdr: PartnerCdr) -> int:
    return SandboxIntent.objects.filter(
        metadata__partner_cdr=str(cdr.pk), status="succeeded"
    ).count()


def test_a_charge_unanswered_for_a_day_is_left_for_reconciliation_not_charged_again(
    client, network, monkeypatch
):
    cdr = due_cdr(client, "far@example.com")
    start = timezone.now()
    gateway = OutOfReach(driver_roaming.get_gateway(), back=start + timedelta(hours=30))
    monkeypatch.setattr(driver_roaming, "get_gateway", lambda: gateway)

    at = sweep_until(gateway, start, start + timedelta(hours=32))

    cdr.refresh_from_db()
    # Before: asked again at every sweep for ever; once the processor was back, after its key
    # was forgotten, the driver was charged a second time.
    assert succeeded(cdr) == 1
    assert cdr.payment_status == PartnerCdr.PaymentStatus.FAILED
    assert cdr.payment_error == driver_roaming.UNANSWERED_TEXT
    assert cdr.payment_unanswered_since == start  # the first unanswered try
    assert cdr.payment_attempts == 0  # no answer was ever counted
    assert not Payment.objects.filter(session_ref=f"partner-cdr:{cdr.pk}").exists()
    calls = gateway.calls
    # Asked at every sweep of the 23 hours, with the first try's key, and not after.
    assert calls == driver_roaming.ROAMING_CHARGE_UNANSWERED_GIVE_UP // SWEEP
    assert set(gateway.first_seen) == {f"partner-cdr:{cdr.pk}:1"}
    driver_roaming.roaming_charges_collect(now=at + timedelta(days=1))
    assert gateway.calls == calls  # nothing asked any more (idempotent)

    page = client.get("/driver/networks/activity/").content.decode()
    assert "not confirmed: The payment processor did not answer for a day" in page
    assert "your card was refused" not in page


def test_an_answer_within_the_day_charges_once_and_clears_the_mark(client, network, monkeypatch):
    cdr = due_cdr(client, "near@example.com")
    start = timezone.now()
    gateway = OutOfReach(driver_roaming.get_gateway(), back=start + timedelta(hours=2))
    monkeypatch.setattr(driver_roaming, "get_gateway", lambda: gateway)

    sweep_until(gateway, start, start + timedelta(hours=1))
    cdr.refresh_from_db()
    assert (cdr.payment_status, cdr.payment_unanswered_since) == ("due", start)

    sweep_until(gateway, start + timedelta(hours=2), start + timedelta(hours=3))
    cdr.refresh_from_db()
    # The same key came back with the first charge: paid once, the mark gone.
    assert (cdr.payment_status, cdr.payment_unanswered_since) == ("paid", None)
    assert succeeded(cdr) == 1
    assert cdr.payment_attempts == 1
