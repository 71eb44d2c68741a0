"""A card blocked as lost in one tab stays blocked when a page opened before saves its label
(backoffice.forms.StaleEditMixin): the stale save is refused, saying so."""

from __future__ import annotations

import html
import re

import pytest

from authorization.models import Token
from tests.factories import MembershipFactory, TokenFactory

pytestmark = pytest.mark.django_db


def _form(page: str) -> dict[str, str]:
    """The edit form's fields as a browser posts them (ticked boxes only)."""
    fields = {}
    for tag in re.findall(r"<input[^>]+>", page):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) == "csrfmiddlewaretoken":
            continue
        if 'type="checkbox"' in tag:
            if "checked" in tag:
                fields[name.group(1)] = "on"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name.group(1)] = value.group(1) if value else ""
    for name, options in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', options)
        fields[name] = chosen.group(1) if chosen else ""
    for name, text in re.findall(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.S):
        fields[name] = html.unescape(text.strip())
    return fields


def test_a_page_opened_before_a_card_was_blocked_does_not_unblock_it(client, prop):
    token = TokenFactory(uid="04A1B2C3", organization=prop.organization, label="Reception")
    client.force_login(MembershipFactory(organization=prop.organization, role="manager").user)
    url = f"/tokens/{token.pk}/"
    stale = _form(client.get(url).content.decode())
    current = _form(client.get(url).content.decode())
    assert client.post(url, {**current, "blocked": "on"}).status_code == 302  # lost: blocked
    refused = client.post(url, {**stale, "label": "Front desk"})
    assert refused.status_code == 400
    assert "Someone else saved this at" in refused.content.decode()
    token.refresh_from_db()
    assert token.blocked and token.label == "Reception"
    assert Token.objects.get(pk=token.pk).blocked


def test_an_agents_page_opened_before_the_host_blocked_the_card_does_not_unblock_it(
    client, prop, admin_user
):
    token = TokenFactory(uid="04A1B2C4", organization=prop.organization, label="Reception")
    client.force_login(admin_user)
    url = f"/admin/authorization/token/{token.pk}/change/"
    stale = _form(client.get(url).content.decode())
    assert stale["edited_version"]
    Token.objects.get(pk=token.pk).save()  # the host blocks it meanwhile (any save)
    Token.objects.filter(pk=token.pk).update(blocked=True)
    refused = client.post(url, {**stale, "label": "Front desk"})
    assert refused.status_code == 200 and "Someone else saved this at" in refused.content.decode()
    token.refresh_from_db()
    assert token.blocked and token.label == "Reception"
