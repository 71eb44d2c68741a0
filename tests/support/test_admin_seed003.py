"""Each of seed 003's ten questions answered by a support agent through the admin pages only.

The agent is a staff user driving the Django test client: they open the pages, read what the
pages show, and post the forms a browser would post (change forms are read back from the HTML,
as a browser submits them). Nothing here writes to the database behind the admin's back except
the scenario each question starts from.
"""

from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from auditlog.models import LogEntry
from django.core import mail
from django.test import Client
from django.utils import timezone

from authorization.models import AuthorizationDecision, TokenGroup
from billing.models import LedgerTransaction, Payment, Payout, Subscription, SubscriptionPlan
from chargers.models import Charger, ChargingSession, Command, Connector, OcppMessage
from support.assistant.service import assistant_answer
from support.models import Ticket
from tests.billing.helpers import paid_session, unit_rate
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, UserFactory

pytestmark = pytest.mark.django_db


class _FormReader(HTMLParser):
    """Collect the fields of the admin change form as a browser would submit them unchanged."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside or a.get("disabled") is not None:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data):
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            # Browsers drop the newline right after <textarea>.
            self.data.append(
                (self._textarea, self._text[1:] if self._text.startswith("\n") else self._text)
            )
            self._textarea = None


def change_form(response, form_id: str) -> dict:
    reader = _FormReader(form_id)
    reader.feed(response.content.decode())
    data: dict = {}
    for name, value in reader.data:
        data.setdefault(name, []).append(value)
    return data


@pytest.fixture
def agent(db):
    return UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def desk(client, agent):
    client.force_login(agent)
    return client


def toolkit_post(desk, ticket, action, **fields):
    data = {"action": action, f"{action}-action": action}
    data.update({f"{action}-{k}": v for k, v in fields.items()})
    return desk.post(f"/admin/support/ticket/{ticket.pk}/toolkit/", data, follow=True)


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def signs_in(login, password="secret-pass-123"):
    """Return whether the portal's sign-in page accepts these credentials."""
    return (
        Client().post("/accounts/login/", {"username": login, "password": password}).status_code
        == 302
    )


def ticket_from(message, **context):
    answer = assistant_answer(message=message, **context)
    assert answer.ticket is not None, answer
    return Ticket.objects.get(pk=answer.ticket)


def _offline(charger, hours=3):
    at = timezone.now() - timedelta(hours=hours)
    (
        charger.connection_id,
        charger.last_seen_at,
        charger.last_heartbeat_at,
        charger.disconnected_at,
    ) = "", at, at, at
    charger.save()


# 1. Charger is offline or not working ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the command path reads from its own database threads
def test_1_offline_charger_is_confirmed_from_the_charger_list_and_the_ticket(desk):
    charger = ChargerFactory(station_id="Q1-OFF", heartbeat_interval=60)
    ChargerFactory(station_id="Q1-ON", connection_id="c1", last_seen_at=timezone.now())
    _offline(charger)
    ticket = ticket_from(
        "charger is dead, that didn't help", station_id="Q1-OFF", email="g@example.com"
    )
    offline = desk.get("/admin/chargers/charger/", {"connection": "offline"}).content.decode()
    assert "Q1-OFF" in offline and "Q1-ON" not in offline
    page = desk.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert "Charger Q1-OFF has been offline since" in page
    # A remote reset is refused with the reason, and nothing is queued for a charger that is not there.
    reset = toolkit_post(desk, ticket, "command", action_name="soft_reset", connector_id=1)
    assert any("offline" in m for m in messages_of(reset)), messages_of(reset)
    assert not Command.objects.filter(charger=charger, status="sent").exists()


# 2. Plugged in but not charging ----------------------------------------------------------------


def test_2_not_charging_the_ticket_shows_the_fault_in_plain_words_and_the_charger_frames(desk):
    charger = ChargerFactory(
        station_id="Q2-FLT", vendor="Alfen BV", connection_id="c", last_seen_at=timezone.now()
    )
    Connector.objects.create(
        charger=charger,
        connector_id=1,
        status="Faulted",
        error_code="GroundFailure",
        vendor_error_code="101",
        status_timestamp=timezone.now(),
    )
    OcppMessage.objects.create(
        charger=charger,
        direction="in",
        message_type=2,
        unique_id="sn1",
        action="StatusNotification",
        payload={"status": "Faulted"},
    )
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=4242,
        id_tag="G2",
        started_at=timezone.now() - timedelta(minutes=5),
        meter_start_wh=0,
    )
    ticket = ticket_from(
        "plugged in, nothing flows. still not working", station_id="Q2-FLT", email="g@example.com"
    )
    page = desk.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert "GroundFailure" in page and "the 6 mA DC leakage sensor tripped" in page
    assert "StatusNotification" in page  # the recent frames are in the bundle
    sessions = desk.get("/admin/chargers/chargingsession/", {"q": "Q2-FLT"}).content.decode()
    assert "4242" in sessions


# 3. Not allowed / no permission ----------------------------------------------------------------


def test_3_refused_card_is_whitelisted_from_the_ticket(desk, agent):
    prop = PropertyFactory()
    ChargerFactory(property=prop, station_id="Q3-RES")
    AuthorizationDecision.objects.create(
        uid="04A1B2C3",
        uid_normalized="04A1B2C3",
        station_id="Q3-RES",
        context="local",
        status="Invalid",
        reason="not_in_local_group",
        step=9,
        message="Not in a local group",
        organization=prop.organization,
    )
    group = TokenGroup.objects.create(organization=prop.organization, name="Residents")
    ticket = ticket_from(
        "my card was rejected, that didn't help", station_id="Q3-RES", email="r@example.com"
    )
    toolkit_page = desk.get(f"/admin/support/ticket/{ticket.pk}/toolkit/").content.decode()
    assert 'value="04A1B2C3"' in toolkit_page  # the refused card, ready to whitelist
    done = toolkit_post(desk, ticket, "whitelist", group=group.pk, uid="04A1B2C3")
    assert "04A1B2C3 whitelisted into Residents." in messages_of(done)
    assert list(group.tokens.values_list("uid", flat=True)) == ["04A1B2C3"]
    assert LogEntry.objects.filter(actor=agent).exists()


# 4. Overcharge / refund (the sandbox gateway; the Stripe one is below) --------------------------


def test_4_refund_from_the_ticket_moves_money_at_the_gateway_and_emails_a_confirmation(
    desk, prop, charger
):
    unit_rate(prop)
    session, payment = paid_session(charger, wh=10000, email="payer@example.com")
    ticket = Ticket.objects.create(
        email="payer@example.com",
        message="I was overcharged",
        topic="billing",
        session=session,
        organization=prop.organization,
    )
    mail.outbox.clear()
    done = toolkit_post(
        desk, ticket, "refund", payment=payment.pk, amount="4.00", reason="Idle fee while charging"
    )
    assert any(m.startswith("Refunded 4.00") for m in messages_of(done)), messages_of(done)
    refund = payment.refunds.get()
    assert refund.gateway_reference.startswith("re_sbx_")  # the sandbox processor answered
    assert LedgerTransaction.objects.filter(kind="refund", refund=refund).count() == 1
    assert [m.to for m in mail.outbox] == [["payer@example.com"]]
    assert "4.00" in mail.outbox[0].body and "Idle fee while charging" in mail.outbox[0].body
    assert ticket.thread.filter(to_email="payer@example.com").exists()
    too_much = toolkit_post(
        desk, ticket, "refund", payment=payment.pk, amount="7.00", reason="again"
    )
    assert "At most 6.00" in too_much.content.decode()  # 10.00 charged, 4.00 back already
    assert payment.refunds.count() == 1


# 5. Cost breakdown -----------------------------------------------------------------------------


def test_5_payment_found_by_card_last4_and_its_cost_read_as_lines(desk, prop, charger):
    unit_rate(prop)
    session, payment = paid_session(charger, wh=2500, email="cost@example.com")
    for term in ("cost@example.com", charger.station_id):
        found = desk.get("/admin/billing/payment/", {"q": term}).content.decode()
        assert payment.reference in found
    charges = desk.get("/admin/billing/sessioncharge/", {"q": charger.station_id}).content.decode()
    charge = session.charge
    assert f"/admin/billing/sessioncharge/{charge.pk}/change/" in charges
    page = desk.get(f"/admin/billing/sessioncharge/{charge.pk}/change/").content.decode()
    assert "<td>Energy 2.500 kWh" in page and '"kind"' not in page


# 6. Cancel subscription / delete account ---------------------------------------------------------


def test_6_verified_customer_is_unsubscribed_and_erased_from_the_toolkit(desk, prop, charger):
    unit_rate(prop)
    session, payment = paid_session(charger, wh=10000, email="leaver@example.com")
    plan = SubscriptionPlan.objects.create(
        property=prop, name="Residents", monthly_fee=Decimal("20")
    )
    sub = Subscription.objects.create(
        plan=plan, email="leaver@example.com", started_at=timezone.now()
    )
    # The hand-off waits for the section's details: the email and what to do (seed 003 §6).
    ticket = ticket_from(
        "I moved out, stop billing me and delete my account", email="leaver@example.com"
    )
    refused = toolkit_post(desk, ticket, "erase", confirm="on")
    assert "Verify the customer" in refused.content.decode()
    wrong = toolkit_post(desk, ticket, "verify", card_last4="0000")
    assert "Identity NOT verified: the details do not match." in messages_of(wrong)
    ok = toolkit_post(desk, ticket, "verify", session_date=session.started_at.date().isoformat())
    assert "Identity verified." in messages_of(ok)
    mail.outbox.clear()
    erased = toolkit_post(desk, ticket, "erase", confirm="on")
    assert any(m.startswith("Customer data erased") for m in messages_of(erased))
    sub.refresh_from_db()
    payment.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELLED and "leaver" not in sub.email
    assert payment.email == "" and payment.amount_captured == Decimal("10.00")
    assert mail.outbox[0].to == ["leaver@example.com"]


# 7. Change of email ----------------------------------------------------------------------------


def test_7_verified_email_change_moves_receipts_and_the_hosts_sign_in(desk, prop, charger):
    unit_rate(prop)
    session, payment = paid_session(charger, wh=1000, email="Host.Old@example.com")
    UserFactory(username="host.old@example.com", email="Host.Old@example.com")
    # The hand-off waits for the section's details: current and new address (seed 003 §7).
    ticket = ticket_from(
        "I need to change my email to host.new@example.com", email="Host.Old@example.com"
    )
    verified = toolkit_post(
        desk, ticket, "verify", session_date=session.started_at.date().isoformat()
    )
    assert "Identity verified." in messages_of(verified)
    done = toolkit_post(desk, ticket, "email", new_email="Host.New@example.com")
    assert any(m.startswith("Email changed") for m in messages_of(done)), messages_of(done)
    payment.refresh_from_db()
    assert payment.email == "Host.New@example.com"
    assert signs_in("host.new@example.com") and signs_in("Host.New@example.com")  # any case
    assert not signs_in("host.old@example.com")


def test_7_changing_a_hosts_email_on_the_user_page_changes_their_sign_in(desk, agent):
    host = UserFactory(username="owner.old@example.com")
    other = UserFactory(username="taken@example.com")
    page = desk.get(f"/admin/auth/user/{host.pk}/change/")
    data = change_form(page, "user_form")
    data["email"] = ["taken@example.com"]
    clash = desk.post(f"/admin/auth/user/{host.pk}/change/", data)
    assert "Another account signs in with that email." in clash.content.decode()
    data["email"] = ["Owner.New@example.com"]
    saved = desk.post(f"/admin/auth/user/{host.pk}/change/", data)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    host.refresh_from_db()
    assert (host.username, host.email) == ("owner.new@example.com", "Owner.New@example.com")
    assert signs_in("Owner.New@example.com")
    assert not signs_in("owner.old@example.com")
    other.refresh_from_db()
    assert other.username == "taken@example.com"
    # A username that is not the email is the agent's choice and stays.
    named = UserFactory(username="frontdesk", email="desk.old@example.com")
    data = change_form(desk.get(f"/admin/auth/user/{named.pk}/change/"), "user_form")
    data["email"] = ["desk.new@example.com"]
    assert desk.post(f"/admin/auth/user/{named.pk}/change/", data).status_code == 302
    named.refresh_from_db()
    assert (named.username, named.email) == ("frontdesk", "desk.new@example.com")


# 8. Assign a charger to a property ---------------------------------------------------------------


def test_8_new_charger_is_assigned_to_its_property_on_the_charger_page(desk):
    prop = PropertyFactory(name="Beach House")
    charger = ChargerFactory(station_id="Q8-NEW", property=None, serial_number="SN-778")
    ticket = Ticket.objects.create(
        email="host@example.com",
        message="new charger not under our property",
        topic="assignment",
        station_id="Q8-NEW",
    )
    found = desk.get("/admin/chargers/charger/", {"q": "SN-778"}).content.decode()
    assert "Q8-NEW" in found
    page = desk.get(f"/admin/chargers/charger/{charger.pk}/change/")
    data = change_form(page, "charger_form")
    data["property"] = [str(prop.pk)]
    saved = desk.post(f"/admin/chargers/charger/{charger.pk}/change/", data)
    assert saved.status_code == 302, saved.content.decode()[:3000]
    assert Charger.objects.get(pk=charger.pk).property == prop
    reply = toolkit_post(
        desk, ticket, "reply", body="Q8-NEW is now under Beach House.", status="resolved"
    )
    assert "Reply sent to host@example.com." in messages_of(reply)
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.RESOLVED


# 9. Guest can't start ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # the command path reads from its own database threads
def test_9_guest_start_error_shows_the_refusal_and_the_override_form(desk):
    prop = PropertyFactory()
    charger = ChargerFactory(property=prop, station_id="Q9-GST")
    _offline(charger, hours=1)
    AuthorizationDecision.objects.create(
        uid="GUEST-X",
        uid_normalized="GUEST-X",
        station_id="Q9-GST",
        context="remote",
        status="Invalid",
        reason="license_inactive",
        step=2,
        message="License expired",
        organization=prop.organization,
    )
    ticket = ticket_from(
        "my guest can't start a charge after paying, that didn't help",
        station_id="Q9-GST",
        email="guest@example.com",
    )
    decisions = desk.get(
        "/admin/authorization/authorizationdecision/", {"q": "Q9-GST"}
    ).content.decode()
    assert "GUEST-X" in decisions
    toolkit_page = desk.get(f"/admin/support/ticket/{ticket.pk}/toolkit/").content.decode()
    assert f'<option value="{charger.pk}" selected>' in toolkit_page
    # Offline: the agent is told so and the engine's decision on the operator token is on record
    # (the started session over a real socket is tests/e2e/test_support_override.py).
    tried = toolkit_post(desk, ticket, "override", charger=charger.pk, connector_id=1, uid="")
    assert any("is offline: nothing was sent" in m for m in messages_of(tried)), messages_of(tried)
    assert AuthorizationDecision.objects.filter(uid=f"SUPPORT-{ticket.reference}").exists()


# 10. Payouts and reporting -----------------------------------------------------------------------


def test_10_failed_payout_reason_is_found_and_explained_to_the_host(desk):
    prop = PropertyFactory()
    org = prop.organization
    now = timezone.now()
    Payout.objects.create(
        organization=org,
        currency="EUR",
        period_start=now - timedelta(days=30),
        period_end=now,
        net=Decimal("412.50"),
        status="failed",
        reference="po_q10",
        failure_reason="The bank account was rejected",
    )
    host = UserFactory(username="payee@example.com")
    ticket = Ticket.objects.create(
        email=host.email, message="payout failed, why", topic="payouts", organization=org
    )
    listing = desk.get("/admin/billing/payout/", {"q": org.name}).content.decode()
    assert "po_q10" in listing and "The bank account was rejected" in listing
    mail.outbox.clear()
    reply = toolkit_post(
        desk,
        ticket,
        "reply",
        body="Payout po_q10 failed: the bank rejected the account.",
        status="waiting",
    )
    assert "Reply sent to payee@example.com." in messages_of(reply)
    assert mail.outbox[0].to == ["payee@example.com"] and "po_q10" in mail.outbox[0].body


def test_all_ten_questions_are_covered():
    names = [n for n in globals() if n.startswith("test_") and n.split("_")[1].isdigit()]
    assert sorted({int(n.split("_")[1]) for n in names}) == list(range(1, 11))


def test_4_refund_through_stripe_answers_from_the_recorded_api(desk, prop, charger, monkeypatch):
    ticket, payment, http = _stripe_refund_ticket(
        prop, charger, monkeypatch, 8801, [("pi_captured", 200), ("refund_succeeded", 200)]
    )
    done = toolkit_post(
        desk, ticket, "refund", payment=payment.pk, amount="2.00", reason="Failed start"
    )
    assert any(m.startswith("Refunded 2.00") for m in messages_of(done)), messages_of(done)
    assert http.requests[1]["url"].endswith("/v1/refunds")
    assert http.requests[1]["data"] == {
        "payment_intent": ["pi_3QxTestHold0001"],
        "amount": ["200"],
        "metadata[refund_key]": [f"refund:ticket:{ticket.pk}:{payment.pk}:2.00"],
    }
    assert payment.refunds.get().gateway_reference == "re_3QxTestRefund01"
    payment.refresh_from_db()
    assert payment.amount_refunded == Decimal("2.00")
    assert mail.outbox[0].to == ["card@example.com"] and "2.00" in mail.outbox[0].body


def test_2_a_vendor_code_added_in_the_admin_is_explained_by_the_assistant(desk):
    charger = ChargerFactory(
        station_id="Q2-WBX",
        vendor="Wallbox Chargers S.L.",
        connection_id="c",
        last_seen_at=timezone.now(),
    )
    Connector.objects.create(
        charger=charger,
        connector_id=1,
        status="Faulted",
        error_code="OtherError",
        vendor_error_code="E-77",
        status_timestamp=timezone.now(),
    )
    # The charger's host asks (a guest hears only what the guest page shows, issue 47 item 6).
    host = MembershipFactory(organization=charger.property.organization).user
    before = assistant_answer(message="car not charging", station_id="Q2-WBX", user=host)
    assert any("(vendor code E-77)" in f for f in before.facts)
    added = desk.post(
        "/admin/support/vendorerrorcode/add/",
        {
            "vendor": "Wallbox",
            "code": "e-77",
            "explanation": "the charger lost its earth connection",
            "advice": "An electrician must check the earth.",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    after = assistant_answer(message="car not charging", station_id="Q2-WBX", user=host)
    fault = next(f for f in after.facts if f.startswith("Connector 1 reports Faulted"))
    assert (
        "(vendor code E-77: the charger lost its earth connection – An electrician must check the earth.)"
        in fault
    )


def test_4_a_ticket_refund_without_an_answer_is_said_plainly_and_confirmed_when_asked_again(
    desk, prop, charger, monkeypatch
):
    # Stripe does not answer (its 5xx, and the client's two retries): the agent reads what that
    # means and what to do, never an exception's name; the same refund asked again once Stripe
    # answers books it once and emails the confirmation.
    import stripe

    from billing.models import Refund

    monkeypatch.setattr(
        stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, *a, **k: 0
    )
    ticket, payment, http = _stripe_refund_ticket(
        prop, charger, monkeypatch, 8802, [("pi_captured", 200)] + [("api_error", 500)] * 3
    )
    silent = messages_of(
        toolkit_post(desk, ticket, "refund", payment=payment.pk, amount="2.00", reason="Failed")
    )
    assert any("did not answer" in m and "Ask this same refund" in m for m in silent), silent
    assert not any("RefundUnanswered" in m or "Error" in m for m in silent), silent
    assert not Refund.objects.exists() and not mail.outbox

    # Asked again with the same key (the payment intent, then the refund): answered.
    http.replies[:] = [("pi_captured", 200), ("refund_succeeded", 200)]
    done = messages_of(
        toolkit_post(desk, ticket, "refund", payment=payment.pk, amount="2.00", reason="Failed")
    )
    assert any(m.startswith("Refunded 2.00") for m in done), done
    assert Refund.objects.get().payment == payment
    assert mail.outbox[0].to == ["card@example.com"] and "2.00" in mail.outbox[0].body


def _stripe_refund_ticket(prop, charger, monkeypatch, transaction_id, replies):
    """A billing ticket about a captured Stripe payment, the Stripe gateway with only its HTTP
    layer replaced by Stripe-shaped recordings (tests/billing/stripe_recordings): the stripe
    package builds the requests and parses the answers. Returns (ticket, payment, http)."""
    from billing.gateways import StripeGateway
    from billing.services import refunds as billing_services
    from tests.billing.test_stripe_gateway import RecordedHTTP

    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=transaction_id,
        id_tag="G4",
        started_at=timezone.now() - timedelta(hours=1),
        stopped_at=timezone.now(),
        meter_start_wh=0,
        meter_stop_wh=1500,
        status="completed",
    )
    payment = Payment.objects.create(
        organization=prop.organization,
        session=session,
        email="card@example.com",
        currency="EUR",
        amount_held=Decimal("30.00"),
        amount_captured=Decimal("5.45"),
        reference="pi_3QxTestHold0001",
        status="captured",
        gateway="stripe",
    )
    http = RecordedHTTP(replies)
    monkeypatch.setattr(
        billing_services, "get_gateway", lambda: StripeGateway("sk_test_recorded", http_client=http)
    )
    ticket = Ticket.objects.create(
        email="card@example.com",
        message="refund please",
        topic="billing",
        session=session,
        organization=prop.organization,
    )
    mail.outbox.clear()
    return ticket, payment, http
