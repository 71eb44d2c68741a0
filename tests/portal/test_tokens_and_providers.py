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
    # Issue 35 item 10: stored and shown as chargers send it; found by either spelling.
    assert token.uid == "04AABBCC"
    for typed in ("04aabbcc", "04 AA BB CC", "04:aa:bb:cc"):
        body = client.get(reverse("authorization:token-list"), {"q": typed}).content.decode()
        assert "04AABBCC" in body and "04 aa bb cc" not in body
    page = client.get(reverse("authorization:roaming"), {"uid": "04 aa bb cc"}).content.decode()
    assert "04AABBCC" in page


def test_typed_uids_are_stored_as_chargers_send_them():
    from authorization.models import typed_uid

    assert typed_uid(" 04 a1 b2 c3 ff ") == "04A1B2C3FF"
    assert typed_uid("04:A1:B2:C3") == "04A1B2C3"
    assert typed_uid("04-a1-b2") == "04A1B2"
    assert typed_uid("NL-PLS-0001") == "NL-PLS-0001"  # an app id, not a chip number: as typed
    assert typed_uid("DEMO-EXPIRED") == "DEMO-EXPIRED"


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
        url,
        {"label": "Lost", "blocked": "on", "expires_at_0": "1 Jan 2030", "expires_at_1": "10:00"},
    )
    assert response.status_code == 302
    site.token.refresh_from_db()
    assert site.token.blocked and not site.token.valid and site.token.expires_at.year == 2030
    # Typed in the viewer's zone (their locations are in Amsterdam): 10:00 CET is 09:00 UTC.
    assert site.token.expires_at.hour == 9
    response = client.post(
        url, {"label": "x", "valid": "on", "expires_at_0": "not a date", "expires_at_1": "10:00"}
    )
    assert response.status_code == 400
    assert "Write the date as 24 Nov 2026 or 24-11-2026." in response.content.decode()


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


def test_roaming_shows_the_valid_box_and_who_may_tick_it(client, site):
    """Issue 35 item 5 (seed 002: "Ensure the 'valid' box is ticked, if not, contact your MSP")."""
    Token.objects.filter(pk=site.msp_token.pk).update(valid=False)
    Token.objects.filter(pk=site.token.pk).update(valid=False)
    client.force_login(site.manager)
    page = client.get(reverse("authorization:roaming"), {"uid": "0001"}).content.decode()
    own = page.split(f'id="valid-{site.token.pk}"', 1)[0].rsplit("<form", 1)[1]
    assert f'action="/authorization/roaming/{site.token.pk}/valid/"' in own
    msp_page = client.get(reverse("authorization:roaming"), {"uid": "MSP01"}).content.decode()
    assert f'id="valid-{site.msp_token.pk}" disabled>' in msp_page
    assert f"contact {site.msp.name} ({site.msp.country_code}*{site.msp.party_id})" in msp_page
    # Ticking the box makes the card valid again; a provider's card cannot be ticked here.
    response = client.post(
        reverse("authorization:roaming-valid", args=[site.token.pk]), {"valid": "1", "uid": "0001"}
    )
    assert response.status_code == 302 and response["Location"].endswith("?uid=0001")
    site.token.refresh_from_db()
    assert site.token.valid
    url = reverse("authorization:roaming-valid", args=[site.msp_token.pk])
    assert client.post(url, {"valid": "1"}).status_code == 404
    site.msp_token.refresh_from_db()
    assert not site.msp_token.valid
    client.force_login(site.viewer)
    url = reverse("authorization:roaming-valid", args=[site.token.pk])
    assert client.post(url, {"valid": ""}).status_code == 403


def test_block_and_unblock_a_mobility_provider(client, site):
    client.force_login(site.owner)
    url = reverse("authorization:msp-block", args=[site.msp.pk])
    client.post(url, {"blocked": "1"})
    site.msp.refresh_from_db()
    assert site.msp.blocked
    client.post(url, {"blocked": "0"})
    site.msp.refresh_from_db()
    assert not site.msp.blocked
