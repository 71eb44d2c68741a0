"""Issue 47 item 6: alert emails go only to confirmed addresses, one message per address. A
member's verified account email is confirmed at once; any other address is emailed a link and
confirmed by clicking it; rules named before confirmation existed are carried over the same way."""

import re
from datetime import timedelta

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.core import mail
from django.utils import timezone

from reliability.models import Alert, AlertDelivery, AlertRecipient, AlertRule, PortEvent
from reliability.services import alerts, recipients
from reliability.tasks import alerts_task
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

MEMBER = "ops@harbour.example"
STRANGER = "someone@elsewhere.example"


@pytest.fixture
def member(host):
    # The host's colleague, whose account email is verified (django-allauth).
    user = MembershipFactory(organization=host.memberships.get().organization, role="viewer").user
    user.email = MEMBER
    user.save()
    EmailAddress.objects.create(user=user, email=MEMBER, verified=True, primary=True)
    return user


def faulted(charger):
    PortEvent.objects.create(
        charger=charger,
        connector_id=1,
        kind="status",
        at=timezone.now() - timedelta(seconds=600),
        status="Faulted",
        error_code="GroundFailure",
    )


def link_path(message) -> str:
    url = re.search(r"https?://\S+", message.body).group(0)
    return re.sub(r"^https?://[^/]+", "", url)


def create_rule(api_client, host, charger, emails, capture):
    api_client.force_authenticate(host)
    with capture(execute=True):
        response = api_client.post(
            "/api/v1/alert-rules/",
            {
                "organization": charger.property.organization.pk,
                "kind": "faulted",
                "after_s": 60,
                "email": emails,
            },
            format="json",
        )
    assert response.status_code == 201, response.data
    return response


def test_a_members_address_is_confirmed_and_a_strangers_gets_a_link_first(
    api_client, host, member, charger, client, django_capture_on_commit_callbacks
):
    response = create_rule(
        api_client, host, charger, [MEMBER.upper(), STRANGER], django_capture_on_commit_callbacks
    )
    assert response.data["recipients"] == [
        {"email": MEMBER, "confirmed": True},
        {"email": STRANGER, "confirmed": False},
    ]
    # Only the stranger is asked, in a message of their own.
    assert [m.to for m in mail.outbox] == [[STRANGER]]
    assert "http://testserver/alerts/confirm/" in mail.outbox[0].body  # the site it was set on
    link = link_path(mail.outbox[0])
    mail.outbox.clear()

    faulted(charger)
    alerts.evaluate()
    alerts.deliveries_send()
    # The alert: one message, to the confirmed member only; the stranger gets nothing yet.
    assert [m.to for m in mail.outbox] == [[MEMBER]]
    assert "Port faulted: CP-TEST-1 port 1 (opened)" in mail.outbox[0].subject
    assert list(AlertDelivery.objects.values_list("target", flat=True)) == [MEMBER]

    # Opening the link (a mail scanner does) confirms nothing; the button does.
    page = client.get(link)
    assert page.status_code == 200 and "Confirm this address" in page.content.decode()
    assert not recipients.is_confirmed(charger.property.organization_id, STRANGER)
    done = client.post(link)
    assert done.status_code == 200 and "is confirmed" in done.content.decode()
    assert AlertRecipient.objects.get(email=STRANGER).confirmed_how == "link"
    assert client.get("/alerts/confirm/not-a-key/").status_code == 404

    # The next event (the port recovers) goes to both, one message each, nobody else in To.
    mail.outbox.clear()
    PortEvent.objects.create(
        charger=charger, connector_id=1, kind="status", at=timezone.now(), status="Available"
    )
    alerts.evaluate()
    alerts.deliveries_send()
    assert sorted(m.to for m in mail.outbox) == [[MEMBER], [STRANGER]]
    assert all("(cleared)" in m.subject and not m.cc and not m.bcc for m in mail.outbox)


def test_twenty_addresses_are_twenty_links_not_one_header(
    api_client, host, charger, django_capture_on_commit_callbacks
):
    many = [f"person{n}@example.com" for n in range(20)]
    create_rule(api_client, host, charger, many, django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(many)
    assert all(len(m.to) == 1 for m in mail.outbox)
    mail.outbox.clear()
    faulted(charger)
    alerts.evaluate()
    alerts.deliveries_send()
    assert mail.outbox == [] and not AlertDelivery.objects.exists()  # nobody confirmed yet
    assert Alert.objects.filter(cleared_at__isnull=True).count() == 1


def test_rules_named_before_confirmation_existed_are_carried_over(host, member, charger):
    from importlib import import_module

    organization = charger.property.organization
    rule = AlertRule.objects.create(
        organization=organization, kind="faulted", after_s=60, email=[MEMBER, STRANGER]
    )
    AlertRecipient.objects.all().delete()
    migration = import_module("reliability.migrations.0009_t47_alert_recipients")
    migration.recipients_of_existing_rules(apps, None)
    stored = dict(AlertRecipient.objects.values_list("email", "confirmed_how"))
    assert stored == {MEMBER: "member_account", STRANGER: ""}
    assert recipients.confirmed_emails(rule) == [MEMBER]
    # The alerts sweep sends the pending link, once.
    alerts_task()
    alerts_task()
    assert [m.to for m in mail.outbox] == [[STRANGER]]
    assert "Confirm charger alerts" in mail.outbox[0].subject


def test_a_delivery_queued_for_several_addresses_goes_to_each_confirmed_one_alone(
    host, member, charger
):
    organization = charger.property.organization
    rule = AlertRule.objects.create(
        organization=organization, kind="faulted", after_s=60, email=[MEMBER, STRANGER]
    )
    recipients.recipients_note(organization.pk, rule.email)
    alert = Alert.objects.create(
        rule=rule,
        charger=charger,
        connector_id=1,
        kind="faulted",
        since=timezone.now(),
        opened_at=timezone.now(),
    )
    # A row written before this change: both addresses in one target.
    AlertDelivery.objects.create(
        alert=alert,
        event="opened",
        channel="email",
        target=f"{MEMBER}, {STRANGER}",
        next_try_at=timezone.now(),
    )
    mail.outbox.clear()
    alerts.deliveries_send()
    assert [m.to for m in mail.outbox] == [[MEMBER]]


def test_a_member_who_left_gets_no_more_alerts_until_the_link_confirms(
    api_client, host, member, charger, django_capture_on_commit_callbacks
):
    response = create_rule(api_client, host, charger, [MEMBER], django_capture_on_commit_callbacks)
    assert mail.outbox == [] and response.data["recipients"][0]["confirmed"]
    member.memberships.all().delete()
    faulted(charger)
    alerts.evaluate()
    alerts.deliveries_send()
    assert mail.outbox == [] and not AlertDelivery.objects.exists()
    listed = api_client.get(f"/api/v1/alert-rules/{response.data['id']}/").data
    assert listed["recipients"] == [{"email": MEMBER, "confirmed": False}]
    # The rule saved again: the address is asked by its link, like a stranger's.
    with django_capture_on_commit_callbacks(execute=True):
        api_client.patch(f"/api/v1/alert-rules/{response.data['id']}/", {"after_s": 90})
    assert [m.to for m in mail.outbox] == [[MEMBER]]
    assert "Confirm charger alerts" in mail.outbox[0].subject
