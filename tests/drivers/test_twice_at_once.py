"""A driver charging on a partner network pays each CDR once: the CPO posting the same CDR twice
at once, or the charge task and the sweep charging one due CDR at the same moment, take the
driver's money once. Threads released together by a barrier, each with its own connection
(PostgreSQL: row locks and unique indexes across connections)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from billing.models import LedgerTransaction, Payment, Refund
from drivers import roaming as driver_roaming
from drivers.models import DriverProfile
from roaming import emsp_driving
from roaming.models import PartnerCdr, PartnerCommand, PartnerLocation, PartnerSession
from tests.concurrency import at_once
from tests.drivers.conftest import save_card, sign_up
from tests.drivers.test_roaming import partner_network
from tests.factories import OrganizationFactory
from tests.roaming.conftest import auth
from tests.roaming.cpo_stub import CpoStub
from tests.roaming.test_emsp_tokens import CPO_TOKEN, cpo_partner, with_identity

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]

START = "2026-03-02T10:00:00Z"


@pytest.fixture
def driver(settings):
    """A driver account with a saved card and its app token, and a CPO partner whose tariff
    T1 (1.00 a session + 0.30 a kWh) its CDRs are checked against."""
    settings.OCPI_EMSP_MARGIN_PERCENT = 10
    settings.OCPI_EMSP_VAT_PERCENT = 21
    settings.OCPI_EMSP_ROAMING_FEE_CENTS = 0
    org = OrganizationFactory()
    identity = with_identity(org)
    emsp_driving.driver_accounts_set(identity_id=identity.pk)
    partner = cpo_partner(org)
    partner_network(partner)
    browser = Client()
    sign_up(browser, "twice@example.com")
    save_card(browser)
    profile = DriverProfile.objects.get(user__email="twice@example.com")
    token = driver_roaming.roaming_token(profile, identity)
    return {"org": org, "partner": partner, "token": token}


def cdr(cdr_id: str, uid: str, *, excl_vat: float = 4.0) -> dict:
    """A CDR that agrees with T1: 1.00 + 10 kWh x 0.30 = 4.00 (5.32 to the driver)."""
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
        "total_cost": {"excl_vat": excl_vat},
        "total_energy": 10,
        "total_time": 1,
        "last_updated": "2026-03-02T11:01:00Z",
    }


def post_cdr(body: dict) -> Callable[[], Any]:
    def call() -> Any:
        answer = Client(raise_request_exception=False).post(
            "/ocpi/2.2.1/emsp/cdrs",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(CPO_TOKEN),
        )
        return answer.status_code, answer.json()["status_code"]

    return call


def test_a_cdr_posted_twice_at_once_is_stored_once_and_charged_once(driver):
    token = driver["token"]

    answers = at_once(*[post_cdr(cdr("C1", token.uid)) for _ in range(4)])

    assert all(code == 1000 for _, code in answers), answers
    row = PartnerCdr.objects.get()
    # The charge queued after the commit (eager in tests) ran for the one new CDR only.
    assert (row.payment_status, row.price_total) == ("paid", Decimal("5.32"))
    assert Payment.objects.get().amount_captured == Decimal("5.32")
    assert LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.ROAMING_CHARGE).count() == 1


def test_a_due_cdr_charged_by_the_task_and_the_sweep_at_once_is_paid_once(driver):
    token = driver["token"]
    due = PartnerCdr.objects.create(
        organization=driver["org"],
        partner=driver["partner"],
        country_code="BE",
        party_id="CPX",
        cdr_id="C2",
        token=token,
        data=cdr("C2", token.uid),
        currency="EUR",
        status=PartnerCdr.Status.AGREES,
        claimed=Decimal("4.00"),
        price_excl=Decimal("4.40"),
        price_vat=Decimal("0.92"),
        price_total=Decimal("5.32"),
        payment_status=PartnerCdr.PaymentStatus.DUE,  # its charge task was lost: the sweep's
    )

    results = at_once(
        *[lambda: driver_roaming.roaming_cdr_charge(cdr_id=due.pk)] * 2
        + [driver_roaming.roaming_charges_collect] * 2
    )

    assert not [r for r in results if isinstance(r, BaseException)], results

    due.refresh_from_db()
    assert due.payment_status == PartnerCdr.PaymentStatus.PAID
    assert Payment.objects.filter(session_ref=f"partner-cdr:{due.pk}").count() == 1
    assert LedgerTransaction.objects.filter(kind=LedgerTransaction.Kind.ROAMING_CHARGE).count() == 1


def test_a_credit_cdr_handled_twice_at_once_refunds_the_driver_once(driver):
    token = driver["token"]
    assert post_cdr(cdr("C3", token.uid))()[1] == 1000  # charged at once (eager task)
    paid = PartnerCdr.objects.get(cdr_id="C3")
    assert paid.payment_status == PartnerCdr.PaymentStatus.PAID
    # Stored without its signal (bulk_create), as when the credit task was queued and is now
    # delivered three times at once.
    (credit,) = PartnerCdr.objects.bulk_create(
        [
            PartnerCdr(
                organization=driver["org"],
                partner=driver["partner"],
                country_code="BE",
                party_id="CPX",
                cdr_id="C3-C",
                token=token,
                data={
                    **cdr("C3-C", token.uid, excl_vat=-4.0),
                    "credit": True,
                    "credit_reference_id": "C3",
                },
                currency="EUR",
                status=PartnerCdr.Status.CREDIT,
                claimed=Decimal("-4.00"),
            )
        ]
    )

    results = at_once(*[lambda: driver_roaming.roaming_credit(cdr_id=credit.pk)] * 3)

    assert not [r for r in results if isinstance(r, BaseException)], results
    paid.refresh_from_db()
    assert paid.payment_status == PartnerCdr.PaymentStatus.REFUNDED
    refund = Refund.objects.get()
    assert refund.amount == Decimal("5.32") == refund.payment.amount_refunded


@pytest.fixture
def cpo(settings, driver):
    """The CPO partner's Commands receiver: an independent CPO over real HTTP."""
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    stub = CpoStub()
    stub.emsp_token = "our-token-at-cpo"  # what we call it with (cpo_partner's outgoing token)
    partner = driver["partner"]
    partner.endpoints = {
        **partner.endpoints,
        "commands": {"RECEIVER": f"{stub.base}/2.2.1/commands"},
    }
    partner.save(update_fields=["endpoints"])
    yield stub
    stub.close()


def test_stop_tapped_twice_at_once_sends_one_stop_session(driver, cpo):
    token = driver["token"]
    running = PartnerSession.objects.create(
        organization=driver["org"],
        partner=driver["partner"],
        country_code="BE",
        party_id="CPX",
        session_id="S1",
        token=token,
        status="ACTIVE",
        data={"id": "S1", "location_id": "LOC1", "evse_uid": "E1", "status": "ACTIVE"},
        last_updated="2026-03-02T10:00:00Z",
    )
    profile = DriverProfile.objects.get(roaming_token=token)

    def stop() -> Any:
        return driver_roaming.roaming_stop(
            profile=profile, session_pk=running.pk, site_url="https://evb.example"
        )

    results = at_once(*[stop] * 4)

    sent = [r for r in results if isinstance(r, PartnerCommand)]
    refused = [str(r) for r in results if isinstance(r, emsp_driving.CommandRefused)]
    assert (len(sent), refused) == (1, ["Your session is already stopping."] * 3), results
    assert PartnerCommand.objects.filter(type="STOP_SESSION").count() == 1
    assert [command for command, _ in cpo.commands] == ["STOP_SESSION"]


def test_start_tapped_twice_at_once_sends_one_start_session(driver, cpo):
    profile = DriverProfile.objects.get(roaming_token=driver["token"])
    location = PartnerLocation.objects.get(location_id="LOC1")

    def start() -> Any:
        return driver_roaming.roaming_start(
            profile=profile,
            location_pk=location.pk,
            evse_uid="E1",
            connector_id="1",
            site_url="https://evb.example",
        )

    results = at_once(*[start] * 4)

    sent = [r for r in results if isinstance(r, PartnerCommand)]
    refused = {str(r) for r in results if isinstance(r, emsp_driving.CommandRefused)}
    assert (len(sent), refused) == (
        1,
        {"You already have a session starting or running: stop it first."},
    ), results
    assert PartnerCommand.objects.filter(type="START_SESSION").count() == 1
    assert [command for command, _ in cpo.commands] == ["START_SESSION"]
