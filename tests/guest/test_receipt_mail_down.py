"""The mail server is down when a guest's session closes: the session still closes (card charged
once), and the receipt email is not lost: the sweep sends it once mail works again."""

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from billing.models import LedgerTransaction, Payment
from chargers.models import ChargingSession
from guest import services
from guest.models import GuestSession
from tests.guest.test_start_flow import APPROVE, FakeCharger

pytestmark = pytest.mark.django_db(transaction=True)

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


class MailDown(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


@pytest.fixture
def fake_charger(monkeypatch):
    fake = FakeCharger()
    monkeypatch.setattr(services, "send_command_sync", fake)
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    return fake


def test_a_receipt_the_mail_server_refused_is_sent_by_the_sweep_once(
    guest_charger, rate, fake_charger, settings
):
    gs = services.guest_start(
        charger=guest_charger,
        connector_id=1,
        email="guest@example.com",
        payment_method=APPROVE,
        site_url="https://charge.example",
    )
    started = timezone.now() - timedelta(hours=1)
    session = ChargingSession.objects.create(
        charger=guest_charger,
        connector_id=1,
        transaction_id=4343,
        id_tag=gs.id_tag,
        token_id=gs.token_id,
        started_at=started,
        meter_start_wh=1000,
    )
    services.guest_session_link(session_id=session.pk)
    ChargingSession.objects.filter(pk=session.pk).update(
        status=ChargingSession.Status.COMPLETED,
        stopped_at=started + timedelta(minutes=50),
        meter_stop_wh=11_000,
    )
    settings.EMAIL_BACKEND = "tests.guest.test_receipt_mail_down.MailDown"
    services.guest_session_finish(session_id=session.pk)
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FINISHED
    assert Payment.objects.get(pk=gs.payment_id).status == Payment.Status.CAPTURED

    # Still down at the first sweep: the receipt stays unsent for the next one.
    services.guest_finish_unsettled(now=timezone.now() + timedelta(minutes=12))
    assert GuestSession.objects.get(pk=gs.pk).receipt_sent_at is None

    # Mail works again: the sweep sends the receipt (before: marked sent, so never), once.
    settings.EMAIL_BACKEND = LOCMEM
    mail.outbox.clear()
    later = timezone.now() + timedelta(minutes=15)
    services.guest_finish_unsettled(now=later)
    services.guest_finish_unsettled(now=later + timedelta(minutes=5))
    assert [m.to for m in mail.outbox] == [["guest@example.com"]]
    services.guest_session_finish(session_id=session.pk)  # a repeated signal: no second one
    assert len(mail.outbox) == 1
    assert f"/s/receipt/{gs.key}/" in mail.outbox[0].body
    assert LedgerTransaction.objects.filter(kind="guest_charge").count() == 1
