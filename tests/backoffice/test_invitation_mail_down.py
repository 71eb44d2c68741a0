"""An owner invites a member while the mail server does not answer: the member is added (a retry
adds nothing twice) and the owner is told plainly that the invitation email did not go out,
on the portal's page and in the API's answer, instead of "We emailed them a link"."""

import socket

import pytest
from django.core import mail
from rest_framework.test import APIClient

from backoffice.models import Membership
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mail_server_down(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2


@pytest.fixture
def owner():
    return MembershipFactory(role="owner")


def test_the_portal_says_the_invitation_email_was_not_sent(client, owner, mail_server_down):
    client.force_login(owner.user)
    prefix = f"org{owner.organization_id}-"
    answer = client.post(
        "/members/",
        {
            "organization": owner.organization_id,
            f"{prefix}email": "new@example.com",
            f"{prefix}role": "viewer",
        },
        follow=True,
    )
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "the invitation email could not be sent" in page
    assert "We emailed them a link" not in page
    assert Membership.objects.filter(user__email="new@example.com").count() == 1


def test_the_api_says_the_invitation_email_was_not_sent(owner, mail_server_down):
    api = APIClient()
    api.force_authenticate(owner.user)
    url = f"/api/v1/organizations/{owner.organization_id}/members/"
    for _ in range(2):  # the retry adds nothing twice
        answer = api.post(url, {"email": "new@example.com", "role": "viewer"}, format="json")
        assert answer.status_code == 201
        assert answer.json()["invitation_sent"] is False
    assert Membership.objects.filter(user__email="new@example.com").count() == 1


def test_with_mail_working_the_invitation_is_sent(client, owner):
    api = APIClient()
    api.force_authenticate(owner.user)
    url = f"/api/v1/organizations/{owner.organization_id}/members/"
    answer = api.post(url, {"email": "new@example.com", "role": "viewer"}, format="json")
    assert answer.json()["invitation_sent"] is True
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
