"""A host's roaming form sent twice (a double click, a reload, two at once): the partner invited
once, with the same token A in both answers; the payment terminal provider asked once to
activate a terminal."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from roaming import ocpi, payments
from roaming.models import Delivery, Partner, TerminalActivation
from tests.concurrency import all_at_once
from tests.factories import MembershipFactory
from tests.roaming.test_payments_module import ptp  # noqa: F401  (fixture)


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _invite_form(client: Client) -> dict[str, str]:
    page = client.get("/roaming/partners/").content.decode()
    key = re.search(r'name="invite-key" value="([^"]+)"', page)
    assert key, "the invite form carries its own key"
    return {"action": "invite", "invite-key": key.group(1)}


def _token_a(response) -> str:
    return re.search(r'id="token-a">([^<]+)<', response.content.decode()).group(1)


@pytest.mark.django_db
def test_the_invite_form_sent_again_is_one_partner_with_the_token_a_shown_again(operator):
    owner = MembershipFactory(organization=operator["org"], role="owner").user
    client = _browser(owner)
    form = {**_invite_form(client), "invite-organization": operator["org"].pk}
    first = client.post("/roaming/partners/", {**form, "invite-name": "New eMSP"})
    again = client.post("/roaming/partners/", {**form, "invite-name": "New eMSP"})
    assert _token_a(first) == _token_a(again)
    partner = Partner.objects.get(name="New eMSP")
    assert partner.state == "pending" and partner.token_a_hash == ocpi.token_hash(_token_a(again))
    # The form shown next is a new invite: another partner, another token A.
    other = client.post(
        "/roaming/partners/",
        {**_invite_form(client), "invite-organization": operator["org"].pk, "invite-name": "New"},
    )
    assert _token_a(other) != _token_a(first)
    # The same page's form with another name typed in is another invite too.
    renamed = client.post("/roaming/partners/", {**form, "invite-name": "Second eMSP"})
    assert _token_a(renamed) not in (_token_a(first), _token_a(other))
    assert sorted(Partner.objects.values_list("name", flat=True)) == [
        "New",
        "New eMSP",
        "Second eMSP",
    ]
    # Sent again after the partner registered: its spent token A is not shown, nothing is made.
    Partner.objects.filter(pk=partner.pk).update(state="connected", token_a_hash="")
    late = client.post("/roaming/partners/", {**form, "invite-name": "New eMSP"}, follow=True)
    assert 'id="token-a"' not in late.content.decode()
    assert "New eMSP has registered already with this invite." in late.content.decode()
    assert Partner.objects.count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_the_invite_form_sent_twice_at_once_is_one_partner_and_one_token_a(operator):
    owner = MembershipFactory(organization=operator["org"], role="owner").user
    clients = [_browser(owner) for _ in range(2)]
    form = {**_invite_form(clients[0]), "invite-organization": operator["org"].pk}
    form["invite-name"] = "Twice"
    answers = all_at_once(*[lambda c=c: c.post("/roaming/partners/", form) for c in clients])
    assert [a.status_code for a in answers] == [200, 200]
    assert _token_a(answers[0]) == _token_a(answers[1])
    partner = Partner.objects.get(name="Twice")
    assert partner.token_a_hash == ocpi.token_hash(_token_a(answers[0]))


def _activate(client: Client, partner: Partner, charger_pk: int):
    return client.post(
        f"/roaming/partners/{partner.pk}/terminals/activate/",
        {"activate-reference": "SN-77", "activate-evses": [f"{charger_pk}:1"]},
    )


@pytest.mark.django_db
def test_an_activation_asked_again_while_waiting_asks_the_provider_once(operator, ptp):  # noqa: F811
    first = payments.terminal_activate(
        partner=ptp, reference="SN-77", location_ids=[], evses=[(operator["cp_public"].pk, 1)]
    )
    again = payments.terminal_activate(
        partner=ptp, reference="sn-77", location_ids=[operator["public"].pk], evses=[]
    )
    assert again.pk == first.pk
    assert (again.location_ids, again.evses) == ([operator["public"].pk], [])  # chosen last
    assert Delivery.objects.filter(partner=ptp, path="/terminals/activate").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_activation_pressed_twice_at_once_asks_the_provider_once(operator, ptp):  # noqa: F811
    owner = MembershipFactory(organization=operator["org"], role="owner").user
    clients = [_browser(owner) for _ in range(2)]
    charger = operator["cp_public"].pk
    answers = all_at_once(*[lambda c=c: _activate(c, ptp, charger) for c in clients])
    assert [a.status_code for a in answers] == [302, 302]
    assert TerminalActivation.objects.filter(partner=ptp).count() == 1
    assert Delivery.objects.filter(partner=ptp, path="/terminals/activate").count() == 1
