"""A card or group added twice at once (a double click, two tabs, an API client's retry, two
chargers presenting one new contract): one row, and the second request gets the first's card or a
clear 400, never a 500 from the unique constraint."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from authorization.models import Token, TokenGroup
from authorization.services import (
    token_from_issuer,
    token_group_create,
    token_reimbursement_allow,
)
from tests.concurrency import all_at_once
from tests.factories import MembershipFactory, MspFactory, TokenGroupFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_card_added_twice_at_once_on_the_tokens_page_is_one_card_and_no_500():
    owner = MembershipFactory(role="owner")
    form = {"organization": owner.organization_id, "uid": "04A1B2C3", "type": "RFID", "valid": "on"}
    clients = [_browser(owner.user) for _ in range(2)]
    answers = all_at_once(*[lambda c=c: c.post("/tokens/", form) for c in clients])
    assert sorted(a.status_code for a in answers) == [302, 400]
    refused = next(a for a in answers if a.status_code == 400)
    assert "already a token of your organization" in refused.content.decode()
    assert Token.objects.filter(organization=owner.organization).count() == 1


def test_a_card_posted_twice_at_once_to_the_api_is_one_card_and_a_400():
    owner = MembershipFactory(role="owner")
    body = {"organization": owner.organization_id, "uid": "04A1B2C4", "type": "RFID"}
    clients = [_api(owner.user) for _ in range(2)]
    answers = all_at_once(
        *[lambda c=c: c.post("/api/v1/tokens/", body, format="json") for c in clients]
    )
    assert sorted(a.status_code for a in answers) == [201, 400]
    assert Token.objects.filter(organization=owner.organization).count() == 1


def test_a_new_uid_added_to_a_group_twice_at_once_is_one_card_in_the_group():
    owner = MembershipFactory(role="owner")
    group = TokenGroupFactory(organization=owner.organization)
    clients = [_browser(owner.user) for _ in range(2)]
    url = f"/tokens/groups/{group.pk}/"
    answers = all_at_once(*[lambda c=c: c.post(url, {"uid": "04 A1 B2 C5"}) for c in clients])
    assert [a.status_code for a in answers] == [302, 302]
    card = Token.objects.get(organization=owner.organization)
    assert list(group.tokens.all()) == [card]


def test_a_group_created_twice_at_once_is_one_group():
    owner = MembershipFactory(role="owner")
    form = {"organization": owner.organization_id, "name": "Staff"}
    clients = [_browser(owner.user) for _ in range(2)]
    answers = all_at_once(*[lambda c=c: c.post("/tokens/groups/", form) for c in clients])
    assert sorted(a.status_code for a in answers) == [302, 400]
    api = [_api(owner.user) for _ in range(2)]
    body = {"organization": owner.organization_id, "name": "Visitors"}
    answers = all_at_once(
        *[lambda c=c: c.post("/api/v1/token-groups/", body, format="json") for c in api]
    )
    assert sorted(a.status_code for a in answers) == [201, 400]
    # Whitelisting from a log row into a new group, clicked twice: both get the one group.
    made = all_at_once(
        *[lambda: token_group_create(organization_id=owner.organization_id, name="Guests")] * 2
    )
    assert made[0].pk == made[1].pk
    assert sorted(TokenGroup.objects.values_list("name", flat=True)) == [
        "Guests",
        "Staff",
        "Visitors",
    ]


def test_a_new_contract_presented_at_two_chargers_at_once_is_kept_as_one_card():
    msp = MspFactory()
    answer = {"data": {"allowed": "ALLOWED", "token": {"uid": "NL-ABC-C12345678-1", "valid": True}}}
    kept = all_at_once(
        *[lambda: token_from_issuer(msp_id=msp.pk, uid="NL-ABC-C12345678-1", answer=answer)] * 2
    )
    assert kept[0][0].pk == kept[1][0].pk
    assert Token.objects.filter(msp=msp).count() == 1


def test_stations_allowed_for_one_card_at_once_are_all_kept():
    owner = MembershipFactory(role="owner")
    org = owner.organization_id
    all_at_once(
        *[
            lambda s=s: token_reimbursement_allow(
                organization_id=org, uid="04A1B2C6", station_ids=[s]
            )
            for s in ("HOME-1", "HOME-2", "HOME-3")
        ]
    )
    card = Token.objects.get(organization_id=org)
    assert card.allowed_station_ids == ["HOME-1", "HOME-2", "HOME-3"]
