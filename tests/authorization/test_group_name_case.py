"""A token group's name is one name whatever its case: "Staff" and "staff" of one organization are
refused as the second group, on the page, in the API and at once; groups that were already
spelt alike before the rule keep their cards under a numbered name."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from rest_framework.test import APIClient

from authorization.models import TokenGroup
from authorization.services import token_group_create
from tests.concurrency import all_at_once
from tests.factories import MembershipFactory, TokenFactory, TokenGroupFactory
from tests.schema import migrate_back

EXISTS = "A group with this name exists already."


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_staff_and_staff_created_at_once_are_one_group_and_a_clear_refusal():
    owner = MembershipFactory(role="owner")
    org = owner.organization_id
    pages = [_browser(owner.user) for _ in range(2)]
    # Rounds: the refusal may come from the form's look, the model's check or the constraint,
    # depending on how the two requests interleave; each must say why on the page.
    for name in ("Staff", "Crew", "Night shift", "Cleaners", "Guests", "Owners"):
        answers = all_at_once(
            *[
                lambda c=c, n=n: c.post("/tokens/groups/", {"organization": org, "name": n})
                for c, n in zip(pages, (name, name.lower()), strict=True)
            ]
        )
        assert sorted(a.status_code for a in answers) == [302, 400]
        refused = next(a for a in answers if a.status_code == 400).content.decode()
        assert EXISTS in refused
    api = [_api(owner.user) for _ in range(2)]
    answers = all_at_once(
        *[
            lambda c=c, n=n: c.post(
                "/api/v1/token-groups/", {"organization": org, "name": n}, format="json"
            )
            for c, n in zip(api, ("Visitors", "VISITORS"), strict=True)
        ]
    )
    assert sorted(a.status_code for a in answers) == [201, 400]
    assert next(a for a in answers if a.status_code == 400).json() == {"name": [EXISTS]}
    made = all_at_once(
        lambda: token_group_create(organization_id=org, name="Drivers"),
        lambda: token_group_create(organization_id=org, name="drivers"),
    )
    assert made[0].pk == made[1].pk
    names = TokenGroup.objects.filter(organization_id=org).values_list("name", flat=True)
    assert sorted(n.lower() for n in names) == [
        "cleaners",
        "crew",
        "drivers",
        "guests",
        "night shift",
        "owners",
        "staff",
        "visitors",
    ]


@pytest.mark.django_db
def test_the_database_refuses_a_second_spelling_whatever_passed_the_checks():
    staff = TokenGroupFactory(name="Staff")
    with pytest.raises(IntegrityError), transaction.atomic():
        TokenGroup.objects.create(organization=staff.organization, name="sTAFF")


@pytest.mark.django_db
def test_a_name_in_another_case_is_refused_on_the_page_the_api_and_a_rename():
    owner = MembershipFactory(role="owner")
    org = owner.organization_id
    staff = TokenGroupFactory(organization=owner.organization, name="Staff")
    other = TokenGroupFactory(organization=owner.organization, name="Cleaners")
    page = _browser(owner.user).post("/tokens/groups/", {"organization": org, "name": "STAFF"})
    assert page.status_code == 400 and EXISTS in page.content.decode()
    api = _api(owner.user)
    created = api.post("/api/v1/token-groups/", {"organization": org, "name": "staff"})
    assert created.status_code == 400 and created.json() == {"name": [EXISTS]}
    renamed = api.patch(f"/api/v1/token-groups/{other.pk}/", {"name": "sTaFf"}, format="json")
    assert renamed.status_code == 400 and renamed.json() == {"name": [EXISTS]}
    own_case = api.patch(f"/api/v1/token-groups/{staff.pk}/", {"name": "STAFF"}, format="json")
    assert own_case.status_code == 200  # a group may change its own name's case
    assert token_group_create(organization_id=org, name=" staff ").pk == staff.pk
    assert TokenGroup.objects.filter(organization_id=org).count() == 2
    # Another organization's "Staff" is its own.
    assert TokenGroupFactory(name="Staff").organization_id != org


@pytest.mark.django_db(transaction=True)
def test_groups_spelt_alike_before_the_rule_keep_their_cards_under_a_numbered_name():
    before = ("authorization", "0007_msp_via_hub")
    executor = migrate_back(connection, before)
    old = executor.loader.project_state(before).apps.get_model("authorization", "TokenGroup")
    owner = MembershipFactory(role="owner")
    org = owner.organization_id
    card = TokenFactory(organization=owner.organization)
    first = old.objects.create(organization_id=org, name="Staff")
    second = old.objects.create(organization_id=org, name="staff")
    second.tokens.add(card.pk)
    old.objects.create(organization_id=org, name="STAFF (2)")
    third = old.objects.create(organization_id=org, name="STAFF")
    elsewhere = old.objects.create(
        organization_id=TokenGroupFactory().organization_id, name="staff"
    )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    names = dict(TokenGroup.objects.values_list("pk", "name"))
    assert names[first.pk] == "Staff"
    assert names[second.pk] == "staff (3)"  # "(2)" was taken, in another case
    assert names[third.pk] == "STAFF (4)"
    assert names[elsewhere.pk] == "staff"
    assert list(TokenGroup.objects.get(pk=second.pk).tokens.all()) == [card]
