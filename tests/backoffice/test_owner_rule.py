"""The owner rule is one rule (issue 50 item 4): Membership.is_owner, asked through
backoffice/tenancy.py by every page, API and template flag; no other module restates it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import RequestFactory

from backoffice import tenancy
from backoffice.context_processors import portal
from backoffice.models import Membership, Organization
from portal.settings import BASE_DIR
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.test_architecture import PACKAGES

ROLES = [Membership.Role.OWNER, Membership.Role.MANAGER, Membership.Role.VIEWER]


@pytest.mark.parametrize("role", ROLES)
def test_every_owner_helper_gives_the_memberships_answer(db, role):
    membership = MembershipFactory(role=role)
    user, organization = membership.user, membership.organization
    other = OrganizationFactory()
    expected = membership.is_owner

    assert tenancy.owns(membership) is expected
    assert tenancy.is_owner(user, organization) is expected
    assert tenancy.is_owner(user, other) is False
    assert (organization.pk in tenancy.owned_organization_ids(user)) is expected
    assert list(tenancy.owned_organizations(user)) == ([organization] if expected else [])
    assert list(tenancy.owned(Organization.objects.all(), user)) == (
        [organization] if expected else []
    )
    assert (membership in tenancy.owners_of(organization.pk)) is expected
    request = RequestFactory().get("/")
    request.user = user
    assert portal(request)["portal_is_owner"] is expected
    if expected:
        assert tenancy.require_owner_somewhere(user, "no") == [organization]
        assert tenancy.require_role(user, organization.pk, owner=True) == membership
    else:
        with pytest.raises(PermissionDenied, match="no"):
            tenancy.require_owner_somewhere(user, "no")
        with pytest.raises(PermissionDenied):
            tenancy.require_role(user, organization.pk, owner=True)
    with pytest.raises(Http404):  # not a member: the organization does not exist for them
        tenancy.require_role(user, other.pk, owner=True)


def test_staff_own_everything_and_strangers_nothing(db):
    staff = UserFactory(is_staff=True)
    organization = OrganizationFactory()
    assert tenancy.owns(tenancy.membership_in(staff, organization))
    assert tenancy.is_owner(staff, organization)
    assert [m.is_owner for m in tenancy.memberships_of(staff)] == [True]
    assert organization in tenancy.require_owner_somewhere(staff, "no")
    assert not tenancy.owns(None)
    assert not tenancy.is_owner(AnonymousUser(), organization)
    assert tenancy.memberships_of(AnonymousUser()) == []
    stranger = UserFactory()
    request = RequestFactory().get("/")
    request.user = stranger
    assert portal(request)["portal_is_owner"] is False
    request.user = staff
    assert portal(request)["portal_is_owner"] is True


def test_an_organization_keeps_only_its_own_owners(db):
    owner = MembershipFactory(role=Membership.Role.OWNER)
    MembershipFactory(role=Membership.Role.MANAGER, organization=owner.organization)
    MembershipFactory(role=Membership.Role.OWNER)  # another organization's owner
    assert list(tenancy.owners_of(owner.organization_id)) == [owner]


# Where the rule itself may be written: the property and the module that asks it.
RULE_HOMES = {"backoffice/models.py", "backoffice/tenancy.py"}


def owner_restatements(source: str) -> list[int]:
    """Lines that read `.is_owner` or compare or filter by the owner role themselves."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "is_owner":
            found.append(node.lineno)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Attribute) and o.attr == "OWNER" for o in operands):
                found.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in {"filter", "exclude", "get"} and any(
                k.arg == "role" and isinstance(k.value, ast.Attribute) and k.value.attr == "OWNER"
                for k in node.keywords
            ):
                found.append(node.lineno)
    return found


def test_restatements_are_found():
    source = (
        "a = m.is_owner\n"
        "b = m.role == Membership.Role.OWNER\n"
        "c = Membership.objects.filter(role=Membership.Role.OWNER)\n"
        "Membership.objects.create(role=Membership.Role.OWNER)\n"
        "d = owns(m)\n"
    )
    assert owner_restatements(source) == [1, 2, 3]


def test_no_module_restates_the_owner_rule():
    found = []
    for package in PACKAGES:
        for path in sorted((Path(BASE_DIR) / package).rglob("*.py")):
            name = path.relative_to(BASE_DIR).as_posix()
            if "migrations" in path.parts or name in RULE_HOMES:
                continue
            found += [f"{name}:{line}" for line in owner_restatements(path.read_text())]
    assert not found, "Ask backoffice.tenancy (owns, is_owner, owners_of...): " + ", ".join(found)
