"""Sign-up by email with mandatory verification; drivers and hosts stay apart."""

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from drivers.models import DriverProfile
from tests.drivers.conftest import link_in, sign_up

pytestmark = pytest.mark.django_db


def test_sign_up_sends_a_verification_email_and_needs_it_before_sign_in(client):
    response = client.post(
        "/driver/account/signup/",
        {"email": "Dana@Example.com", "password1": "long-pass-9182", "password2": "long-pass-9182"},
    )
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dana@example.com"]
    profile = DriverProfile.objects.get()
    assert not profile.user.username.count("@")  # never an email: the host sign-in cannot match it
    # Not verified yet: the account pages are refused.
    assert client.get("/driver/cards/").status_code == 302
    client.logout()
    refused = client.post(
        "/driver/account/login/", {"login": "dana@example.com", "password": "long-pass-9182"}
    )
    assert "_auth_user_id" not in client.session
    assert refused.status_code == 302 and "confirm-email" in refused["Location"]
    client.post(link_in(mail.outbox[-1]))
    assert EmailAddress.objects.get(user=profile.user).verified
    assert client.get("/driver/cards/").status_code == 200


def test_driver_cannot_use_host_portal_or_host_sign_in(client, host):
    sign_up(client, "driver@example.com")
    assert client.get("/").status_code == 302 and client.get("/")["Location"] == "/driver/"
    assert client.get("/api/v1/chargers/").status_code == 403
    client.logout()
    # The host sign-in form authenticates by username; a driver's email is not one.
    client.post(
        "/accounts/login/", {"username": "driver@example.com", "password": "long-pass-9182"}
    )
    assert "_auth_user_id" not in client.session


def test_host_cannot_sign_in_as_driver_and_host_login_still_works(client, host):
    host.set_password("host-pass-1234")
    host.email = host.username
    host.save()
    client.post("/driver/account/login/", {"login": host.username, "password": "host-pass-1234"})
    assert "_auth_user_id" not in client.session
    response = client.post(
        "/accounts/login/", {"username": host.username, "password": "host-pass-1234"}
    )
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(host.pk)
    assert client.get("/").status_code == 200


def test_a_signed_in_host_cannot_use_the_driver_account_pages(client, host):
    client.force_login(host)
    for url in [
        "/driver/account/email/",
        "/driver/account/password/change/",
        "/driver/account/signup/",
    ]:
        assert client.get(url)["Location"] == "/"
    before = host.email
    client.post("/driver/account/email/", {"action_add": "", "email": "takeover@example.com"})
    host.refresh_from_db()
    assert host.email == before
    from allauth.account.models import EmailAddress

    assert not EmailAddress.objects.filter(user=host).exists()
