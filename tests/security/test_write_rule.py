"""One write rule (Membership.can_write), checked on every write route for every role.

The routes are the tables of test_portal_write_routes.py (portal, classified from the
URLconf) and test_api_write_routes.py (API, generated from the router), so a new write
route is covered here as soon as it is classified there.

For each route, organization A's members act on A's objects ("own") and on B's ("other"):

- owner of A: may write A's objects (owner-only routes too), not B's;
- manager of A: may write A's objects except on owner-only routes, not B's;
- viewer of A: may write nothing;
- manager of A who is a viewer of B: may write A's objects, not B's (which they can read),
  and may not put B's object into a field of A's (move an A object into B).

An allowed write answers the route's success status; a refused one changes no row
anywhere. Allowed writes run in a savepoint that is rolled back, so every case of a route
starts from the same rows (routes whose write runs in another thread, and needs committed
rows, try the allowed cases last instead).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse

from tests.factories import MembershipFactory, UserFactory
from tests.security import test_api_write_routes as api
from tests.security import test_portal_write_routes as portal
from tests.security.conftest import Tenant, changed_tables, db_state

pytestmark = pytest.mark.django_db

MIXED = "manager of A, viewer of B"
ROLES = ("owner", "manager", "viewer", MIXED)

# Routes only owners may use (members, refunds); managers are refused like viewers.
PORTAL_OWNER_ONLY = {"backoffice:members", "backoffice:member-change", "billing:payment-refund"}
# Statements are requested by owners only (the form offers the organizations they own).
PORTAL_OWNER_ONLY |= {"billing:statement-create"}
# The seller's name and VAT number on receipts: the owner's, as payouts are.
PORTAL_OWNER_ONLY |= {"billing:seller-details"}
# Scheduled reports carry revenue, mailed to members the owner picks: the owner's, as statements.
PORTAL_OWNER_ONLY |= {"billing:report-schedule"}
API_OWNER_ONLY = {("organization", "members"), ("payment", "refund")}
API_STAFF_ONLY = {("organization", "create")}


def may_write(role: str, org: str, *, owner_only: bool = False, staff_only: bool = False) -> bool:
    """The rule as a table: what each member of A may do (this test's oracle)."""
    if org == "other" or staff_only or role == "viewer":
        return False
    return role == "owner" or not owner_only


def actor(role: str, mine: Tenant, theirs: Tenant) -> Any:
    if role != MIXED:
        return getattr(mine, role)
    user = UserFactory(username="mixed@a-and-b.test")
    MembershipFactory(user=user, organization=mine.org, role="manager")
    MembershipFactory(user=user, organization=theirs.org, role="viewer")
    return user


def attempt(allowed: bool, label: tuple, send, *, rollback: bool = True) -> None:
    """Send one request; an allowed one must succeed (and is rolled back), a refused one
    must change nothing."""
    before = db_state()
    if allowed and not rollback:  # the write runs in another thread: nothing to roll back
        ok, status = send()
        assert ok, (*label, "should be allowed", status)
        return
    if allowed:
        with transaction.atomic():
            ok, status = send()
            transaction.set_rollback(True)
        assert ok, (*label, "should be allowed", status)
        return
    ok, status = send()
    changed = changed_tables(before, db_state())
    assert changed == [], (*label, "should be refused", status, changed)


# -- Portal ----------------------------------------------------------------------------------------


def _portal_cases() -> list:
    return [pytest.param(name, marks=portal._committed(name)) for name in sorted(portal.WRITES)]


@pytest.mark.parametrize("name", _portal_cases())
def test_portal_write_route_follows_the_write_rule(name, client, mine, theirs):
    write = portal.WRITES[name]
    owner_only = name in PORTAL_OWNER_ONLY
    users = {role: actor(role, mine, theirs) for role in ROLES}
    refused_first = sorted(
        ((role, org) for role in ROLES for org in ("own", "other")),
        key=lambda case: may_write(*case, owner_only=owner_only),
    )
    for role, org in refused_first:
        tenant = mine if org == "own" else theirs
        client.force_login(users[role])
        url = reverse(name, args=write.args(tenant))

        def send(url=url, tenant=tenant):
            response = client.post(url, write.data(tenant))
            return response.status_code in write.own_status, response.status_code

        allowed = may_write(role, org, owner_only=owner_only)
        attempt(allowed, (name, role, org), send, rollback=name not in portal.COMMITTED)

    if owner_only:
        return
    # The mixed user: B's object (readable to them) in a field of A's write is refused.
    client.force_login(users[MIXED])
    for field in write.fields:
        data = {**write.data(mine)}
        for key, value in write.data(theirs).items():
            if key == field or key.startswith(f"org{theirs.org.pk}-"):
                data[key] = value

        def send_field(data=data):
            response = client.post(reverse(name, args=write.args(mine)), data)
            return response.status_code in write.own_status, response.status_code

        attempt(False, (name, MIXED, f"B's object in {field}"), send_field)


# -- API -------------------------------------------------------------------------------------------


def _api_cases() -> list:
    return [
        pytest.param(
            op,
            id=str(op),
            marks=[pytest.mark.django_db(transaction=True)]
            if (op.basename, op.action) in api.COMMITTED
            else [],
        )
        for op in api.OPERATIONS
    ]


def _api_url(op, case, tenant: Tenant) -> str:
    return api.url_for(op, case, tenant if op.detail else None)


@pytest.mark.parametrize("op", _api_cases())
def test_api_write_route_follows_the_write_rule(op, mine, theirs):
    key = (op.basename, op.action)
    case = api.CASES[key]
    owner_only, staff_only = key in API_OWNER_ONLY, key in API_STAFF_ONLY
    clients = {role: api.client_for(actor(role, mine, theirs)) for role in ROLES}
    refused_first = sorted(
        ((role, org) for role in ROLES for org in ("own", "other")),
        key=lambda c: may_write(*c, owner_only=owner_only, staff_only=staff_only),
    )
    for role, org in refused_first:
        tenant = mine if org == "own" else theirs

        def send(role=role, tenant=tenant):
            response = api.call(clients[role], op, _api_url(op, case, tenant), case.body(tenant))
            return response.status_code in case.own_status, response.status_code

        allowed = may_write(role, org, owner_only=owner_only, staff_only=staff_only)
        attempt(allowed, (str(op), role, org), send, rollback=key not in api.COMMITTED)

    if op.action not in ("create", "update", "partial_update") or owner_only or staff_only:
        return
    # The mixed user: B's object in any relation field of A's write (moving an A object into
    # B, or creating one that points there) is refused, as if it did not exist.
    for name, model, many, slug in api.serializer_relations(op):
        foreign = api.value_of(api.objects_of(theirs)[model], slug)
        body = {**case.body(mine), name: [foreign] if many else foreign}

        def send_field(body=body):
            response = api.call(clients[MIXED], op, _api_url(op, case, mine), body)
            return response.status_code != 400, response.status_code

        attempt(False, (str(op), MIXED, f"B's object in {name}"), send_field)
