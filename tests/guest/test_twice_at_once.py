"""The guest's writes twice at once: two tabs, a double submit, the return page and the
processor's webhook together, stop pressed twice. Two threads released together by a barrier,
each with its own database connection (and its own browser), call the real view or service
(PostgreSQL only: row locks across connections)."""

import pytest
from django.test import Client

from guest.models import GuestSession
from tests.concurrency import at_once
from tests.guest.test_views_flow import FORM, accepted  # noqa: F401 (fixture)
from tests.stays.test_stay_code_start import fake_charger, stay  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("accepted", "postgresql_only"),
]


@pytest.fixture
def sent(request) -> list:
    """The CALLs the charger was sent (tests.guest.test_views_flow's `accepted`)."""
    return request.getfixturevalue("accepted")


def test_two_tabs_starting_the_same_port_at_once_hold_one_card(guest_charger, rate):
    from billing.models import Payment

    tabs = [Client(), Client()]
    url = f"/s/{guest_charger.station_id}/start/"
    results = at_once(*(lambda c=c: c.post(url, FORM) for c in tabs))
    # The loser is refused either way, depending on who ran first: waiting on the port's lock and
    # then finding it taken (409), or reading the port already taken by the winner's committed
    # start (the start page again, 400). One session, one hold, whatever the order.
    assert sorted(r.status_code for r in results) in ([302, 400], [302, 409]), results
    gs = GuestSession.objects.get()
    assert next(r for r in results if r.status_code == 302)["Location"] == f"/s/pay/{gs.key}/"
    refused = next(r for r in results if r.status_code != 302).content.decode()
    assert (
        "That port is not free right now" in refused or "All ports are in use right now" in refused
    )
    assert Payment.objects.count() == 1


def test_a_stay_code_sent_twice_at_once_starts_the_port_once(request):
    """A double submit of the access code form: one guest session, one remote start."""
    _, own, _, reservation = request.getfixturevalue("stay")
    calls = request.getfixturevalue("fake_charger").calls
    url = f"/s/{own.station_id}/stay/"
    tabs = [Client(), Client()]
    results = at_once(*(lambda c=c: c.post(url, {"code": reservation.access_code}) for c in tabs))
    assert all(not isinstance(r, BaseException) and r.status_code < 500 for r in results), results
    gs = GuestSession.objects.get()
    assert gs.state == GuestSession.State.STARTING
    starts = [call for call in calls if call[1] == "RemoteStartTransaction"]
    assert starts == [("CABIN-1", "RemoteStartTransaction", {"connectorId": 1, "idTag": gs.id_tag})]


def _paid(guest_charger, sent) -> GuestSession:
    """A guest started and confirmed the hold at the processor; neither the return page nor the
    processor's webhook has been handled yet (the charger not started)."""
    from billing.models import SandboxIntent

    client = Client()
    client.post(f"/s/{guest_charger.station_id}/start/", FORM)
    gs = GuestSession.objects.get()
    intent = SandboxIntent.objects.get(pk=gs.payment_reference)
    client.post(
        f"/billing/sandbox/v1/payment_intents/{intent.pk}/confirm",
        {"client_secret": intent.client_secret, "payment_method": "pm_card_visa"},
    )
    GuestSession.objects.filter(pk=gs.pk).update(
        state=GuestSession.State.PENDING, paid_at=None, start_requested_at=None
    )
    sent.clear()
    return GuestSession.objects.get(pk=gs.pk)


def test_the_return_page_and_the_webhook_at_once_start_the_charger_once(guest_charger, rate, sent):
    from guest.services import guest_hold_authorized

    gs = _paid(guest_charger, sent)
    results = at_once(
        lambda: Client().get(f"/s/pay/{gs.key}/return/?payment_intent={gs.payment_reference}"),
        lambda: guest_hold_authorized(reference=gs.payment_reference),
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert results[0].status_code == 302
    assert sent == [("RemoteStartTransaction", {"connectorId": 1, "idTag": gs.id_tag})]
    assert GuestSession.objects.get(pk=gs.pk).state == GuestSession.State.STARTING


def _charging(guest_charger, sent) -> GuestSession:
    from django.utils import timezone

    from chargers.models import ChargingSession
    from guest.services import guest_hold_confirmed, guest_session_link

    gs = guest_hold_confirmed(gs=_paid(guest_charger, sent))
    session = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=4242,
        id_tag=gs.id_tag,
        id_tag_status="Accepted",
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    guest_session_link(session_id=session.pk)
    sent.clear()
    gs = GuestSession.objects.get(pk=gs.pk)
    assert gs.state == GuestSession.State.CHARGING
    return gs


def test_stop_pressed_twice_at_once_sends_one_stop(guest_charger, rate, sent):
    """Two taps (or two tabs) on Stop: one RemoteStopTransaction, both pages back to the
    session (the second is not told the charger refused)."""
    gs = _charging(guest_charger, sent)
    url = f"/s/session/{gs.key}/stop/"
    results = at_once(*(lambda c=c: c.post(url) for c in (Client(), Client())))
    assert [getattr(r, "status_code", r) for r in results] == [302, 302], results
    assert sent == [("RemoteStopTransaction", {"transactionId": 4242})]


def test_a_session_finished_twice_at_once_is_charged_and_emailed_once(guest_charger, rate, sent):
    """The charger's stop (its signal) and the settling sweep finish the session together."""
    from django.core import mail
    from django.utils import timezone

    from billing.models import LedgerTransaction, Payment, SandboxIntent
    from chargers.models import ChargingSession
    from guest.services import guest_session_finish

    gs = _charging(guest_charger, sent)
    ChargingSession.objects.filter(pk=gs.charging_session_id).update(
        status=ChargingSession.Status.COMPLETED, stopped_at=timezone.now(), meter_stop_wh=7500
    )
    mail.outbox.clear()
    finish = lambda: guest_session_finish(session_id=gs.charging_session_id)  # noqa: E731
    results = at_once(finish, finish)
    assert not [r for r in results if isinstance(r, BaseException)], results
    payment = Payment.objects.get(pk=gs.payment_id)
    assert payment.status == Payment.Status.CAPTURED
    intent = SandboxIntent.objects.get(pk=gs.payment_reference)
    assert intent.amount_received == round(payment.amount_captured * 100)
    assert LedgerTransaction.objects.filter(kind="guest_charge").count() == 1
    assert [m.subject for m in mail.outbox] == [
        f"Your charging receipt – {guest_charger.station_id}"
    ]
    assert GuestSession.objects.get(pk=gs.pk).state == GuestSession.State.FINISHED
