"""A slow mail server: the alerts sweep is still sending when the beat starts the next one (it
fires every RELIABILITY_ALERT_SECONDS whatever the last run is doing). Each alert email goes out
once: a delivery the first sweep is sending is not taken by the second. A mail server that never
answers holds a sweep for a bounded time: the delivery waits for its retry, the next delivery
is tried too."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from reliability.models import Alert, AlertDelivery, AlertRecipient, AlertRule
from reliability.services import alerts
from tests.factories import ChargerFactory

T0 = timezone.now()
ADDRESSES = ["ops1@example.com", "ops2@example.com", "ops3@example.com"]


class SlowServer(EmailBackend):
    """Each message takes the mail server two minutes; while the third is sent, the beat starts
    the next sweep."""

    traveller: time_machine.Coordinates | None = None
    sent = 0
    overlapping: list[int] = []

    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        assert SlowServer.traveller is not None
        SlowServer.traveller.shift(timedelta(minutes=2))
        SlowServer.sent += 1
        if SlowServer.sent == 3:
            SlowServer.overlapping.append(alerts.deliveries_send())
        return super().send_messages(messages)


def _alert_for(addresses: list[str]) -> Alert:
    charger = ChargerFactory()
    organization = charger.property.organization
    rule = AlertRule.objects.create(
        organization=organization,
        kind="faulted",
        after_s=60,
        email=addresses,
    )
    for address in addresses:
        AlertRecipient.objects.create(
            organization=organization, email=address, key=address, confirmed_at=T0
        )
    alert = Alert.objects.create(
        rule=rule, charger=charger, connector_id=1, kind="faulted", since=T0, opened_at=T0
    )
    for address in addresses:
        AlertDelivery.objects.create(
            alert=alert, event="opened", channel="email", target=address, next_try_at=T0
        )
    return alert


@pytest.mark.django_db
def test_an_alert_email_is_sent_once_while_a_slow_sweep_overlaps_the_next(settings):
    settings.EMAIL_BACKEND = f"{__name__}.SlowServer"
    SlowServer.sent, SlowServer.overlapping = 0, []
    _alert_for(ADDRESSES)
    mail.outbox.clear()

    with time_machine.travel(T0, tick=False) as traveller:
        SlowServer.traveller = traveller
        alerts.deliveries_send()

    # Before: the first sweep claimed each delivery until its own start + 30 s, long past when it
    # reached the third address, so the overlapping sweep sent that one again.
    assert sorted(m.to[0] for m in mail.outbox) == ADDRESSES
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sent"}
    assert SlowServer.overlapping == [0]  # it ran, and found nothing of the first sweep's to take


@pytest.fixture
def silent_mail_server():
    """A mail server that takes the connection and never says a word (no SMTP greeting)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.mark.django_db
def test_a_mail_server_that_never_answers_does_not_hold_the_alerts_sweep(
    settings, silent_mail_server
):
    # The project bounds every SMTP conversation; this test shortens the bound to stay quick.
    assert settings.EMAIL_TIMEOUT
    settings.EMAIL_TIMEOUT = 0.5
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", silent_mail_server
    _alert_for(["ops1@example.com", "ops2@example.com"])

    # Before: no EMAIL_TIMEOUT, the SMTP client waited for the greeting for ever: the sweep (and
    # the worker running it) never came back, nor did any sweep the beat started after it.
    assert alerts.deliveries_send(now=T0) == 2

    for delivery in AlertDelivery.objects.all():
        assert delivery.status == "pending" and delivery.attempts == 1
        assert delivery.next_try_at > T0  # tried again later, with back-off
        assert "mail server" in delivery.last_error and "Traceback" not in delivery.last_error


class Unreachable(EmailBackend):
    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.mark.django_db
def test_the_alerts_page_says_which_recipient_the_alerts_do_not_reach(settings, client):
    """A webhook that refuses and a mail server that is down: the alerts are retried, and the
    host reads on the Alerts page that they are not reaching those recipients (it said only
    'Webhook https://…', as if they were)."""
    from tests.factories import MembershipFactory

    settings.EMAIL_BACKEND = f"{__name__}.Unreachable"
    settings.OUTBOUND_URL_ALLOWLIST = []
    alert = _alert_for(["ops1@example.com"])
    AlertRule.objects.filter(pk=alert.rule_id).update(webhook_url="http://127.0.0.1:9/hook")
    AlertDelivery.objects.create(
        alert=alert,
        event="opened",
        channel="webhook",
        target="http://127.0.0.1:9/hook",
        next_try_at=T0,
    )
    alerts.deliveries_send(now=T0)
    viewer = MembershipFactory(organization=alert.rule.organization, role="viewer").user
    client.force_login(viewer)

    page = client.get("/uptime/alerts/").content.decode()
    row = page[page.index(f'data-rule="{alert.rule_id}"') :]
    row = row[: row.index("</tr>")]
    assert "Not delivered to ops1@example.com" in row and "mail server" in row
    assert "Not delivered to the webhook" in row and "private network" in row
    assert "trying again" in row

    # Both reach their recipient again: the warnings go.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1:9"]
    AlertDelivery.objects.filter(channel="webhook").delete()
    alerts.deliveries_send(now=T0 + timedelta(hours=1))
    page = client.get("/uptime/alerts/").content.decode()
    assert "Not delivered" not in page
