"""Issue 51 item 2: alert rules (email, webhook, first aid) are set from the portal (Uptime ›
Alerts), with the API's checks in plain words; viewers read; another organization's rule is not
found and changes nothing."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from reliability.models import AlertRecipient, AlertRule
from tests.factories import MembershipFactory, PropertyFactory, UserFactory

pytestmark = pytest.mark.django_db

MEMBER = "ops@harbour.example"


@pytest.fixture
def org():
    return PropertyFactory(name="Harbour").organization


def _client(org, role: str, email: str = "") -> Client:
    user = UserFactory(email=email or f"{role}@harbour.example")
    MembershipFactory(organization=org, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def _form(organization=None, **changes) -> dict:
    data = {
        "organization": organization.pk if organization is not None else "",
        "kind": "faulted",
        "after_minutes": "10",
        "threshold": "",
        "emails": "",
        "webhook_url": "",
        "webhook_secret": "",
        "remediation": "soft_reset",
        "remediation_max_per_day": "2",
        "enabled": "on",
    }
    data.update(changes)
    return data


def test_a_manager_adds_an_alert_with_email_and_first_aid(org, django_capture_on_commit_callbacks):
    manager = _client(org, "manager")
    colleague = MembershipFactory(organization=org, role="viewer").user
    colleague.email = MEMBER
    colleague.save()
    EmailAddress.objects.create(user=colleague, email=MEMBER, verified=True, primary=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = manager.post(
            "/uptime/alerts/",
            _form(org, emails=f"{MEMBER.upper()}, night@elsewhere.example"),
        )
    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.organization_id, rule.kind, rule.after_s, rule.remediation, rule.enabled) == (
        org.pk,
        "faulted",
        600,
        "soft_reset",
        True,
    )
    assert rule.email == [MEMBER, "night@elsewhere.example"]
    # The colleague's verified address is confirmed at once; the other gets its link first.
    assert [m.to for m in mail.outbox] == [["night@elsewhere.example"]]
    page = manager.get("/uptime/alerts/").content.decode()
    assert "Port faulted" in page and "after 10 min" in page
    assert f'{MEMBER} <span class="badge badge-ok">confirmed' in page
    assert 'night@elsewhere.example <span class="badge badge-warn">waits for confirmation' in page
    assert AlertRecipient.objects.filter(organization=org).count() == 2


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"emails": "ops@harbour, x"}, "emails", "Not an email address: “ops@harbour”, “x”."),
        ({"kind": "offline"}, "remediation", "First aid for “Charger offline” can be: None."),
        (
            {"kind": "offline", "remediation": "none", "threshold": "3"},
            "threshold",
            "takes no threshold",
        ),
        (
            {"kind": "uptime_below", "remediation": "none", "threshold": "120"},
            "threshold",
            "between 1 and 100",
        ),
        ({"webhook_url": "https://hooks.example.com/ev"}, "webhook_secret", "needs a secret"),
        ({"webhook_url": "http://hooks.example.com/ev", "webhook_secret": "s"}, "webhook_url", ""),
        ({"webhook_url": "https://127.0.0.1/ev", "webhook_secret": "s"}, "webhook_url", ""),
        ({"after_minutes": "0"}, "after_minutes", ""),
    ],
)
def test_bad_input_is_refused_in_plain_words_and_saves_nothing(org, changes, field, words):
    response = _client(org, "owner").post("/uptime/alerts/", _form(org, **changes))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert words in " ".join(errors[field])
    assert not AlertRule.objects.exists()


def test_a_webhook_rule_keeps_its_secret_when_changed_without_one(org):
    owner = _client(org, "owner")
    owner.post(
        "/uptime/alerts/",
        _form(
            org,
            kind="stuck_session",
            remediation="stop_stuck",
            webhook_url="https://hooks.example.com/ev",
            webhook_secret="s3cret",
        ),
    )
    rule = AlertRule.objects.get()
    page = owner.get(f"/uptime/alerts/{rule.pk}/").content.decode()
    assert "s3cret" not in page
    response = owner.post(
        f"/uptime/alerts/{rule.pk}/",
        _form(
            org,
            kind="stuck_session",
            remediation="stop_stuck",
            after_minutes="120",
            webhook_url="https://hooks.example.com/ev",
            enabled="",
        ),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.after_s, rule.enabled, rule.webhook_secret) == (7200, False, "s3cret")
    assert "after 2 h" in owner.get("/uptime/alerts/").content.decode()
    owner.post(f"/uptime/alerts/{rule.pk}/delete/")
    assert not AlertRule.objects.exists()


def test_viewers_read_and_strangers_find_nothing(org):
    rule = AlertRule.objects.create(organization=org, kind="offline", after_s=900)
    viewer = _client(org, "viewer")
    page = viewer.get("/uptime/alerts/").content.decode()
    assert "Charger offline" in page and "Your role is read-only" in page
    assert f"/uptime/alerts/{rule.pk}/" not in page
    assert viewer.post("/uptime/alerts/", _form(org)).status_code == 403
    assert viewer.post(f"/uptime/alerts/{rule.pk}/", _form(org)).status_code == 403
    assert viewer.post(f"/uptime/alerts/{rule.pk}/delete/").status_code == 403
    other = PropertyFactory().organization
    stranger = _client(other, "owner", email="boss@other.example")
    assert "data-rule=" not in stranger.get("/uptime/alerts/").content.decode()
    assert stranger.get(f"/uptime/alerts/{rule.pk}/").status_code == 404
    assert stranger.post(f"/uptime/alerts/{rule.pk}/", _form(org)).status_code == 404
    assert stranger.post(f"/uptime/alerts/{rule.pk}/delete/").status_code == 404
    # Their own form offers only their organization: ours is not a choice.
    response = stranger.post("/uptime/alerts/", _form(org))
    assert response.status_code == 400
    rule.refresh_from_db()
    assert (rule.after_s, AlertRule.objects.count()) == (900, 1)
