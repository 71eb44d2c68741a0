"""Change of email by confirmation link (old address told), claiming guest sessions."""

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from drivers.models import ClaimedSession, DriverProfile
from guest.models import GuestSession
from tests.drivers.conftest import link_in, sign_up
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def test_email_changes_only_after_the_new_address_confirms_and_the_old_one_is_told(client):
    sign_up(client, "old@example.com")
    user = DriverProfile.objects.get().user
    mail.outbox.clear()
    client.post("/driver/account/email/", {"action_add": "", "email": "new@example.com"})
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    confirm = link_in(mail.outbox[0])
    # Before confirming, the login is still the old address; the new one cannot sign in.
    user.refresh_from_db()
    assert user.email == "old@example.com"
    client.logout()
    client.post(
        "/driver/account/login/", {"login": "new@example.com", "password": "long-pass-9182"}
    )
    assert "_auth_user_id" not in client.session
    client.post(
        "/driver/account/login/", {"login": "old@example.com", "password": "long-pass-9182"}
    )
    assert client.session["_auth_user_id"] == str(user.pk)
    mail.outbox.clear()
    client.post(confirm)
    user.refresh_from_db()
    assert user.email == "new@example.com"
    assert list(EmailAddress.objects.filter(user=user).values_list("email", flat=True)) == [
        "new@example.com"
    ]
    notice = [m for m in mail.outbox if m.to == ["old@example.com"]]
    assert notice and "new@example.com" in notice[0].body
    client.logout()
    client.post(
        "/driver/account/login/", {"login": "old@example.com", "password": "long-pass-9182"}
    )
    assert "_auth_user_id" not in client.session
    client.post(
        "/driver/account/login/", {"login": "new@example.com", "password": "long-pass-9182"}
    )
    assert client.session["_auth_user_id"] == str(user.pk)


def _guest_session(charger, email):
    return GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email=email,
        state=GuestSession.State.FAILED,
        failure_message="Not plugged in",
    )


def test_claim_takes_only_sessions_paid_with_the_verified_email(client, prop):
    charger = ChargerFactory(property=prop, station_id="CLAIM-1")
    mine = [
        _guest_session(charger, "Claimer@example.com"),
        _guest_session(charger, "claimer@example.com"),
    ]
    other = _guest_session(charger, "someone@example.com")
    sign_up(client, "claimer@example.com")
    client.post("/driver/sessions/claim/")
    assert set(ClaimedSession.objects.values_list("guest_session_id", flat=True)) == {
        gs.pk for gs in mine
    }
    page = client.get("/driver/sessions/").content.decode()
    assert "CLAIM-1" in page
    assert client.get(f"/driver/sessions/{mine[0].pk}/receipt/").status_code == 200
    assert client.get(f"/driver/sessions/{other.pk}/receipt/").status_code == 404
    # Claiming twice adds nothing.
    client.post("/driver/sessions/claim/")
    assert ClaimedSession.objects.count() == 2


def test_an_unverified_email_claims_nothing(client, prop):
    charger = ChargerFactory(property=prop, station_id="CLAIM-2")
    _guest_session(charger, "victim@example.com")
    client.post(
        "/driver/account/signup/",
        {
            "email": "victim@example.com",
            "password1": "long-pass-9182",
            "password2": "long-pass-9182",
        },
    )
    # Not verified: the claim route is not reachable, and the service refuses on its own too.
    assert client.post("/driver/sessions/claim/").status_code == 302
    from django.core.exceptions import ValidationError

    from drivers.services import sessions_claim

    with pytest.raises(ValidationError):
        sessions_claim(profile=DriverProfile.objects.get())
    assert not ClaimedSession.objects.exists()
