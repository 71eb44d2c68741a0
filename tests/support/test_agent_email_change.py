"""An agent's email change for a driver goes through allauth's path (issue 34 item 4)."""

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import RequestFactory

from support import toolkit
from tests.drivers.conftest import link_in, sign_up

pytestmark = pytest.mark.django_db


def _admin_request(user):
    """A request as the admin's change view has it (session, messages)."""
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore

    request = RequestFactory().post("/admin/")
    request.user = user
    request.session = SessionStore()
    request._messages = FallbackStorage(request)
    return request


def test_agent_change_sends_verification_tells_the_old_address_and_moves_sign_in_once_confirmed(
    client, django_capture_on_commit_callbacks
):
    sign_up(client, "dana@example.com")
    client.post(link_in(mail.outbox[-1]))
    client.logout()
    driver = get_user_model().objects.get(email="dana@example.com")
    mail.outbox.clear()
    request = _admin_request(driver)
    with django_capture_on_commit_callbacks(execute=True):
        toolkit.agent_change_driver_email(
            request=request, account=driver, new_email="Dana.New@example.com"
        )
    assert {m.to[0] for m in mail.outbox} == {"dana.new@example.com", "dana@example.com"}
    driver.refresh_from_db()
    assert driver.email == "dana@example.com"  # until the new address is confirmed
    assert not EmailAddress.objects.get(email="dana.new@example.com").verified
    verification = next(m for m in mail.outbox if m.to == ["dana.new@example.com"])
    client.post(link_in(verification))
    driver.refresh_from_db()
    assert driver.email == "dana.new@example.com"
    assert list(EmailAddress.objects.filter(user=driver).values_list("email", flat=True)) == [
        "dana.new@example.com"
    ]
    client.logout()
    client.post(
        "/driver/account/login/", {"login": "dana@example.com", "password": "long-pass-9182"}
    )
    assert "_auth_user_id" not in client.session  # the old address no longer signs in
    client.post(
        "/driver/account/login/", {"login": "dana.new@example.com", "password": "long-pass-9182"}
    )
    assert client.session["_auth_user_id"] == str(driver.pk)


def test_agent_change_refuses_an_address_another_account_uses(client):
    sign_up(client, "dana@example.com")
    client.logout()
    sign_up(client, "eve@example.com")
    driver = get_user_model().objects.get(email="dana@example.com")
    with pytest.raises(Exception, match="already uses"):
        toolkit.agent_change_driver_email(
            request=_admin_request(driver), account=driver, new_email="eve@example.com"
        )


def _driver(client, email="dana@example.com"):
    sign_up(client, email)
    client.logout()
    return get_user_model().objects.get(email=email)


def _signs_in_as_driver(login):
    from django.test import Client

    other = Client()
    other.post("/driver/account/login/", {"login": login, "password": "long-pass-9182"})
    return "_auth_user_id" in other.session


def test_ticket_toolkit_changes_a_drivers_email_through_allauth_not_by_writing_it(
    client, prop, charger, django_capture_on_commit_callbacks
):
    from billing.models import Payment
    from tests.billing.helpers import paid_session, unit_rate
    from tests.factories import UserFactory
    from tests.support.test_admin_seed003 import messages_of, ticket_from, toolkit_post

    driver = _driver(client)
    unit_rate(prop)
    session, payment = paid_session(charger, wh=1000, email="dana@example.com")
    ticket = ticket_from(
        "I need to change my email to dana.new@example.com", email="dana@example.com"
    )
    desk = client
    desk.force_login(UserFactory(username="agent@example.com", is_staff=True, is_superuser=True))
    toolkit_post(desk, ticket, "verify", session_date=session.started_at.date().isoformat())
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = toolkit_post(desk, ticket, "email", new_email="Dana.New@example.com")
    assert any("verification link was sent" in m for m in messages_of(done)), messages_of(done)
    # allauth's path: the new address is added unverified and gets the link; the old one is told.
    assert {m.to[0] for m in mail.outbox} == {"dana.new@example.com", "dana@example.com"}
    driver.refresh_from_db()
    assert driver.email == "dana@example.com"
    assert not EmailAddress.objects.get(email="dana.new@example.com").verified
    assert Payment.objects.get(pk=payment.pk).email == "dana@example.com"
    assert _signs_in_as_driver("dana@example.com")
    desk.logout()
    verification = next(m for m in mail.outbox if m.to == ["dana.new@example.com"])
    client.post(link_in(verification))
    driver.refresh_from_db()
    assert driver.email == "dana.new@example.com"
    assert not _signs_in_as_driver("dana@example.com")
    assert _signs_in_as_driver("dana.new@example.com")
    # The old address stays the driver's for their payments (drivers.services.driver_email_changed).
    assert driver.driver_profile.former_emails == ["dana@example.com"]


def test_users_admin_page_changes_a_drivers_email_through_allauth(
    client, django_capture_on_commit_callbacks
):
    from tests.factories import UserFactory
    from tests.support.test_admin_seed003 import change_form

    driver = _driver(client)
    client.force_login(UserFactory(username="agent@example.com", is_staff=True, is_superuser=True))
    data = change_form(client.get(f"/admin/auth/user/{driver.pk}/change/"), "user_form")
    data["email"] = ["dana.new@example.com"]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(f"/admin/auth/user/{driver.pk}/change/", data)
    assert saved.status_code == 302
    driver.refresh_from_db()
    assert driver.email == "dana@example.com"  # until the driver opens the link
    assert {m.to[0] for m in mail.outbox} == {"dana.new@example.com", "dana@example.com"}
    assert EmailAddress.objects.filter(user=driver, email="dana.new@example.com").exists()
