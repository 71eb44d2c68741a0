"""Tokens, local token groups (Add Token), Authorization > Roaming and Mobility Providers."""

import pytest
from django.urls import reverse

from authorization.models import Token

pytestmark = pytest.mark.django_db


def test_add_token_and_find_it_by_uid(client, site):
    client.force_login(site.manager)
    response = client.post(
        reverse("authorization:token-list"),
        {
            "organization": site.org.pk,
            "uid": "04 aa bb cc",
            "label": "Van",
            "type": "RFID",
            "valid": "on",
            "groups": [site.group.pk],
        },
    )
    assert response.status_code == 302
    token = Token.objects.get(organization=site.org, uid_normalized="04AABBCC")
    assert site.group.tokens.filter(pk=token.pk).exists()
    body = client.get(reverse("authorization:token-list"), {"q": "04aabbcc"}).content.decode()
    assert "04 aa bb cc" in body


def test_a_duplicate_uid_is_refused_and_what_was_typed_stays(client, site):
    client.force_login(site.owner)
    response = client.post(
        reverse("authorization:token-list"),
        {
            "organization": site.org.pk,
            "uid": site.token.uid.lower(),
            "label": "Typed label",
            "type": "RFID",
        },
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "already a token of your organization" in body
    assert 'value="Typed label"' in body


def test_edit_valid_box_expiry_and_block(client, site):
    client.force_login(site.owner)
    url = reverse("authorization:token-edit", args=[site.token.pk])
    response = client.post(
        url, {"label": "Lost", "blocked": "on", "expires_at": "2030-01-01T10:00"}
    )
    assert response.status_code == 302
    site.token.refresh_from_db()
    assert site.token.blocked and not site.token.valid and site.token.expires_at.year == 2030
    response = client.post(url, {"label": "x", "valid": "on", "expires_at": "not a date"})
    assert response.status_code == 400 and "Enter a valid date/time." in response.content.decode()


def test_add_token_to_a_local_group(client, site):
    client.force_login(site.manager)
    url = reverse("authorization:token-group-detail", args=[site.group.pk])
    assert client.post(url, {"uid": "CAFE0042"}).status_code == 302
    assert site.group.tokens.filter(uid="CAFE0042").exists()
    response = client.post(url, {"uid": "   "})
    assert response.status_code == 400


def test_create_group_rejects_duplicate_names(client, site):
    client.force_login(site.owner)
    url = reverse("authorization:token-group-list")
    response = client.post(url, {"organization": site.org.pk, "name": site.group.name.upper()})
    assert response.status_code == 400 and "exists already" in response.content.decode()
    assert client.post(url, {"organization": site.org.pk, "name": "Night shift"}).status_code == 302


def test_roaming_search_shows_whether_each_match_may_charge(client, site):
    site.msp.blocked = True
    site.msp.save()
    client.force_login(site.viewer)
    response = client.get(reverse("authorization:roaming"), {"uid": "msp01"})
    states = {t.uid: state for t, state, _badge in response.context["results"]}
    assert states == {"AMSP01": "Provider blocked"}
    empty = client.get(reverse("authorization:roaming"), {"uid": "ZZZZZZ"}).content.decode()
    assert "No token with this UID" in empty


def test_block_and_unblock_a_mobility_provider(client, site):
    client.force_login(site.owner)
    url = reverse("authorization:msp-block", args=[site.msp.pk])
    client.post(url, {"blocked": "1"})
    site.msp.refresh_from_db()
    assert site.msp.blocked
    client.post(url, {"blocked": "0"})
    site.msp.refresh_from_db()
    assert not site.msp.blocked
