"""Every write route of the REST API refuses another organization's objects, and changes nothing.

The routes come from the API router itself: a new POST/PUT/PATCH/DELETE route without a
row in CASES fails test_every_api_write_route_has_a_case. The referencing fields come
from each route's serializer, so a new relation field is tested without a new row.

For each write:
- another organization's object in the URL answers 404 and changes no row anywhere;
- another organization's object in any referencing field answers 400 with that field's
  "does not exist" error, word for word the error of an id that does not exist, and
  changes no row anywhere;
- the same request with the user's own objects succeeds (so the refusal is not an
  accident of a bad payload).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.relations import ManyRelatedField, RelatedField, SlugRelatedField
from rest_framework.test import APIClient

from authorization.models import MobilityServiceProvider, Token, TokenGroup
from backoffice.models import Organization, Property
from billing.models import Payment, Rate
from chargers.models import Charger, ChargingSession
from fleet.models import FirmwareRelease
from portal.api_urls import router, urlpatterns
from reliability.models import Exclusion
from roaming.models import Partner
from stays.models import CalendarFeed, Reservation, Unit
from tests.security.conftest import Tenant, changed_tables, db_state

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")
MISSING_PK = 987654321
MISSING_SLUG = "NO-SUCH-OBJECT-1"


def objects_of(t: Tenant) -> dict[type, Any]:
    return {
        Organization: t.org,
        Property: t.prop,
        Charger: t.charger,
        Token: t.token,
        TokenGroup: t.group,
        MobilityServiceProvider: t.msp,
        Rate: t.rate,
        Payment: t.payment,
        ChargingSession: t.session,
        Unit: t.unit,
        Reservation: t.reservation,
        CalendarFeed: t.feed,
        Partner: t.partner,
        Exclusion: t.exclusion,
        FirmwareRelease: t.release,
    }


@dataclass
class Case:
    """How to call one write route: its URL object and a valid body with the user's own objects."""

    url_object: Callable[[Tenant], Any] | None = None  # detail routes: the object in the URL
    body: Callable[[Tenant], dict] = lambda t: {}
    own_status: tuple[int, ...] = (200, 201, 204)  # what the user's own request answers
    url_kwargs: dict = field(default_factory=dict)


def station(t: Tenant) -> str:
    return t.charger.station_id


CASES: dict[tuple[str, str], Case] = {
    ("firmware-release", "create"): Case(
        body=lambda t: {
            "organization": t.org.pk,
            "version": "3.0.0",
            "vendor": "Vendor",
            "location": "https://firmware.example.com/3.0.0.bin",
            "sha256": "b" * 64,
        },
        own_status=(201,),
    ),
    ("firmware-release", "mark_bad"): Case(url_object=lambda t: t.release.pk),
    # Without a file (the upload itself: tests/fleet/test_hosting.py): 400 past the write rule.
    ("firmware-release", "file"): Case(url_object=lambda t: t.release.pk, own_status=(400,)),
    ("firmware-campaign", "create"): Case(
        body=lambda t: {
            "organization": t.org.pk,
            "name": "Second rollout",
            "release": t.release.pk,
            "station_ids": [t.charger.station_id],
        },
        own_status=(201, 400),
    ),
    # The tenant's campaign is a draft without targets: a transition its state refuses is a 400
    # for its owner (past the write rule), 403 for a viewer, 404 for anyone else.
    ("firmware-campaign", "start"): Case(url_object=lambda t: t.campaign.pk, own_status=(200, 400)),
    ("firmware-campaign", "pause"): Case(url_object=lambda t: t.campaign.pk, own_status=(200, 400)),
    ("firmware-campaign", "resume"): Case(
        url_object=lambda t: t.campaign.pk, own_status=(200, 400)
    ),
    ("firmware-campaign", "halt"): Case(url_object=lambda t: t.campaign.pk, own_status=(200, 400)),
    ("firmware-campaign", "logs"): Case(
        url_object=lambda t: t.campaign.pk,
        body=lambda t: {"remote_location": "https://logs.example.com/up/"},
    ),
    ("config-baseline", "create"): Case(
        body=lambda t: {
            "organization": t.org.pk,
            "name": "Model M2",
            "vendor": "Vendor",
            "model": "M2",
            "protocol": "2.0.1",
            "settings": [
                {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "300"}
            ],
        },
        own_status=(201,),
    ),
    ("config-baseline", "update"): Case(
        url_object=lambda t: t.baseline.pk,
        body=lambda t: {
            "organization": t.org.pk,
            "name": "Standard",
            "vendor": "Vendor",
            "protocol": "1.6",
            "settings": [{"variable": "HeartbeatInterval", "value": "600"}],
        },
    ),
    ("config-baseline", "partial_update"): Case(
        url_object=lambda t: t.baseline.pk,
        body=lambda t: {"settings": [{"variable": "MeterValueSampleInterval", "value": "60"}]},
    ),
    ("config-baseline", "destroy"): Case(url_object=lambda t: t.baseline.pk),
    ("config-baseline", "apply"): Case(url_object=lambda t: t.baseline.pk, own_status=(202,)),
    ("organization", "create"): Case(
        body=lambda t: {"name": "New Org"}, own_status=(403,)
    ),  # staff only
    ("organization", "update"): Case(
        url_object=lambda t: t.org.pk, body=lambda t: {"name": "Renamed"}
    ),
    ("organization", "partial_update"): Case(
        url_object=lambda t: t.org.pk, body=lambda t: {"name": "Renamed"}
    ),
    ("organization", "members"): Case(
        url_object=lambda t: t.org.pk,
        body=lambda t: {
            "email": "new.member@example.com",
            "password": "a-long-password-1",
            "role": "viewer",
        },
        own_status=(201,),
    ),
    ("property", "create"): Case(
        body=lambda t: {
            "organization": t.org.pk,
            "name": "New garage",
            "token_groups": [t.group.pk],
        },
        own_status=(201,),
    ),
    ("property", "partial_update"): Case(
        url_object=lambda t: t.prop.pk, body=lambda t: {"name": "Renamed"}
    ),
    # Has chargers: refused with 409 for the owner, 404 for anyone else.
    ("property", "destroy"): Case(url_object=lambda t: t.prop.pk, own_status=(409,)),
    ("charger", "create"): Case(
        body=lambda t: {
            "station_id": "NEW-CP-1",
            "property": t.prop.pk,
            "token_groups": [t.group.pk],
        },
        own_status=(201,),
    ),
    ("charger", "partial_update"): Case(url_object=station, body=lambda t: {"name": "Renamed"}),
    ("charger", "destroy"): Case(url_object=station, own_status=(409,)),  # it has sessions
    ("charger", "commands"): Case(
        url_object=station,
        body=lambda t: {"type": "Soft"},
        own_status=(409,),
        url_kwargs={"ocpp_action": "Reset"},
    ),  # offline
    ("charger", "reservations"): Case(
        url_object=station,
        own_status=(409,),  # the charger is offline
        body=lambda t: {
            "connector_id": 1,
            "id_tag": "CAFE0001",
            "expires_at": "2030-01-01T00:00:00Z",
        },
    ),
    ("charger", "reservation_cancel"): Case(
        url_object=station,
        own_status=(404,),  # no such reservation of it
        url_kwargs={"reservation_pk": MISSING_PK},
    ),
    # 400: the tenant's charger speaks 1.6 (monitors are 2.0.1); 409 if it spoke 2.0.1 (offline).
    ("charger", "monitors_clear"): Case(
        url_object=station, body=lambda t: {"ids": [1, 2]}, own_status=(400, 409)
    ),
    ("charger", "rotate_password"): Case(
        url_object=station, body=lambda t: {"over_ocpp": False}, own_status=(200,)
    ),
    ("rate", "create"): Case(
        body=lambda t: {
            "property": t.prop.pk,
            "charger": t.charger.station_id,
            "valid_from": "2030-01-01T00:00:00Z",
            "energy_price_per_kwh": "0.40",
        },
        own_status=(201,),
    ),
    ("rate", "partial_update"): Case(
        url_object=lambda t: t.rate.pk, body=lambda t: {"tax_percent": "21"}
    ),
    ("payment", "refund"): Case(
        url_object=lambda t: t.payment.pk,
        body=lambda t: {"amount": "1.00", "reason": "test"},
        own_status=(201, 400, 502),
    ),
    ("token", "create"): Case(
        body=lambda t: {
            "uid": "NEWCARD1",
            "organization": t.org.pk,
            "msp": t.msp.pk,
            "groups": [t.group.pk],
        },
        own_status=(201,),
    ),
    ("token", "partial_update"): Case(
        url_object=lambda t: t.token.pk, body=lambda t: {"label": "Renamed"}
    ),
    ("token", "destroy"): Case(url_object=lambda t: t.token.pk, own_status=(204,)),
    ("token-group", "create"): Case(
        body=lambda t: {
            "organization": t.org.pk,
            "name": "New group",
            "tokens": [t.token.pk],
            "restricted_properties": [t.prop.pk],
        },
        own_status=(201,),
    ),
    ("token-group", "partial_update"): Case(
        url_object=lambda t: t.group.pk, body=lambda t: {"name": "Renamed"}
    ),
    ("token-group", "destroy"): Case(url_object=lambda t: t.group.pk, own_status=(204,)),
    ("msp", "create"): Case(
        body=lambda t: {
            "organization": t.org.pk,
            "name": "New MSP",
            "country_code": "DE",
            "party_id": "ZZZ",
        },
        own_status=(201,),
    ),
    ("msp", "partial_update"): Case(
        url_object=lambda t: t.msp.pk, body=lambda t: {"name": "Renamed"}
    ),
    ("msp", "destroy"): Case(url_object=lambda t: t.msp.pk, own_status=(204,)),
    ("unit", "create"): Case(
        body=lambda t: {"property": t.prop.pk, "name": "Cabin 2", "kind": "cabin"}
    ),
    ("unit", "partial_update"): Case(
        url_object=lambda t: t.unit.pk, body=lambda t: {"name": "Renamed"}
    ),
    ("unit", "destroy"): Case(url_object=lambda t: t.unit.pk, own_status=(204,)),
    ("reservation", "create"): Case(
        body=lambda t: {
            "property": t.prop.pk,
            "unit": t.unit.pk,
            "guest_name": "Ann",
            "check_in": "2026-07-01T14:00:00Z",
            "check_out": "2026-07-04T10:00:00Z",
        }
    ),
    ("reservation", "partial_update"): Case(
        url_object=lambda t: t.reservation.pk, body=lambda t: {"guest_name": "Bo"}
    ),
    ("calendar", "destroy"): Case(url_object=lambda t: t.feed.pk, own_status=(204,)),
    # Without the partner's versions_url + token_a: we issue a token A (no outbound call).
    ("roaming-partner", "create"): Case(
        body=lambda t: {"organization": t.org.pk, "name": "New partner"}, own_status=(201,)
    ),
    ("roaming-partner", "partial_update"): Case(
        url_object=lambda t: t.partner.pk, body=lambda t: {"name": "Renamed"}
    ),
    # Unregisters (the credentials DELETE to the partner is refused by the outbound guard).
    ("roaming-partner", "destroy"): Case(url_object=lambda t: t.partner.pk, own_status=(204,)),
    # It never registered with us: 400, nothing asked of it.
    ("roaming-partner", "version_update"): Case(
        url_object=lambda t: t.partner.pk, own_status=(400,)
    ),
    ("roaming-terminal", "partial_update"): Case(
        url_object=lambda t: t.terminal.pk, body=lambda t: {"location_ids": [t.prop.pk]}
    ),
    ("roaming-terminal", "deactivate"): Case(url_object=lambda t: t.terminal.pk, own_status=(200,)),
    ("roaming-terminal", "activate"): Case(
        body=lambda t: {
            "partner": t.terminal.partner_id,
            "reference": "SN-1",
            "location_ids": [t.prop.pk],
        },
        own_status=(201,),
    ),
    ("calendar", "sync"): Case(url_object=lambda t: t.feed.pk, own_status=(200,)),
    ("exclusion", "create"): Case(
        body=lambda t: {
            "station_id": station(t),
            "start": "2026-01-10T00:00:00Z",
            "end": "2026-01-11T00:00:00Z",
            "reason": "grid_outage",
        },
        own_status=(201,),
    ),
    ("exclusion", "withdraw"): Case(url_object=lambda t: t.exclusion.pk, own_status=(200,)),
    # Only staff delete an exclusion (audited); a host withdraws it.
    ("exclusion", "destroy"): Case(url_object=lambda t: t.exclusion.pk, own_status=(403,)),
    ("alert-rule", "create"): Case(
        body=lambda t: {"organization": t.org.pk, "kind": "faulted", "after_s": 120},
        own_status=(201,),
    ),
    ("alert-rule", "update"): Case(
        url_object=lambda t: t.alert_rule.pk,
        body=lambda t: {"organization": t.org.pk, "kind": "offline", "after_s": 60},
    ),
    ("alert-rule", "partial_update"): Case(
        url_object=lambda t: t.alert_rule.pk, body=lambda t: {"after_s": 60}
    ),
    ("alert-rule", "destroy"): Case(url_object=lambda t: t.alert_rule.pk, own_status=(204,)),
}

# Routes outside the router, with why they need no tenant case.
NON_ROUTER_ROUTES = {
    "api-token": "sign-in: exchanges a password for the caller's own token",
    "api-schema": "read-only",
    "api-docs": "read-only",
    "property-calendars": "the property in the URL is scoped like a detail route: tests/stays/test_stays_api.py",
    "property-power": "the property in the URL is scoped like a detail route; another organization's is a 404 "
    "for GET, PUT and DELETE, a viewer's write a 403 (tests/power/test_api.py)",
    "property-power-reading": "as property-power (tests/power/test_api.py)",
    "property-power-allocations": "read-only, scoped as property-power (tests/power/test_api.py)",
    "charger-backoffices": "the charger in the URL is scoped like a detail route; another organization's charger "
    "or backoffice is a 404 (tests/chargers/test_proxy_config.py)",
    "charger-backoffice": "as charger-backoffices, and the backoffice must be that charger's (test_proxy_config.py)",
    "charger-meter-keys": "the charger in the URL is scoped like a detail route; another organization's charger "
    "is a 404 for GET and PUT, a viewer's PUT a 403 (tests/metering/test_meter_keys_api.py)",
    "charger-meter-key": "as charger-meter-keys, for DELETE (tests/metering/test_meter_keys_api.py)",
    "charger-meter-key-port": "as charger-meter-key, the meter named by connector or EVSE "
    "(tests/metering/test_meter_keys_by_port.py)",
    "charger-meter-key-confirm": "as charger-meter-keys: another organization's charger is a 404, a "
    "viewer's POST a 403 (tests/metering/test_meter_keys_by_port.py)",
    "charger-meter-key-port-confirm": "as charger-meter-key-confirm (test_meter_keys_by_port.py)",
    "organization-root-certificates": "the organization in the URL: not a member is a 404, a viewer's POST "
    "a 403, a bad certificate a 400 that adds nothing (tests/pki/test_api.py)",
    "organization-root-certificate": "as organization-root-certificates, and the root must be that "
    "organization's: another's is a 404 (tests/pki/test_api.py)",
    "organization-pki-settings": "as organization-root-certificates; a provider URL the outbound guard "
    "refuses is a 400 that saves nothing (tests/pki/test_api.py)",
    "organization-access-points": "read-only list of the organization's own feeds; another "
    "organization's id is a 404 (tests/roaming/test_access_points.py)",
    "organization-access-point": "PUT a feed of the organization in the URL: another organization's "
    "host gets a 404, a viewer a 403 (tests/roaming/test_access_points.py)",
    "organization-emsp-identity": "PUT the eMSP identity of the organization in the URL: another "
    "organization's host gets a 404, a viewer a 403, a party another organization holds a 400 "
    "(tests/roaming/test_emsp_identity.py)",
    "charger-meter-keys-read": "as charger-meter-keys: another organization's charger is a 404, a viewer's "
    "POST a 403 (tests/metering/test_meter_keys_by_port.py)",
    "uptime": "read-only (tests/reliability/test_uptime_api.py scopes it)",
    "uptime-kpis": "read-only (tests/reliability/test_kpis_surfaces.py scopes it)",
    "uptime-nevi": "read-only export (tests/reliability/test_uptime_api.py scopes it)",
    "uptime-cec": "read-only export (tests/reliability/test_uptime_api.py scopes it)",
    "support-assistant": "no object in the URL or body: another organization's station id or session gets the "
    "answer an unknown one gets (tests/support/test_assistant_api.py)",
}


@dataclass(frozen=True)
class Operation:
    basename: str
    action: str
    method: str
    url_name: str
    detail: bool
    viewset: Any

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.basename}.{self.action}"


def api_write_operations() -> list[Operation]:
    operations = []
    for _prefix, viewset, basename in router.registry:
        allowed = set(getattr(viewset, "http_method_names", WRITE_METHODS))
        for route in router.get_routes(viewset):
            for method, action in route.mapping.items():
                if method in WRITE_METHODS and method in allowed and hasattr(viewset, action):
                    operations.append(
                        Operation(
                            basename,
                            action,
                            method,
                            route.name.format(basename=basename),
                            route.detail,
                            viewset,
                        )
                    )
    return operations


OPERATIONS = api_write_operations()


def serializer_relations(op: Operation) -> list[tuple[str, type, bool, str | None]]:
    """Return (field name, related model, many, slug field) of the writable relations of the route's serializer."""
    view = op.viewset(action=op.action, request=None, format_kwarg=None, kwargs={})
    try:
        serializer_class = view.get_serializer_class()
    except AssertionError:
        return []
    relations = []
    for name, fld in serializer_class(context={}).fields.items():
        many = isinstance(fld, ManyRelatedField)
        relation = fld.child_relation if many else fld
        if (
            isinstance(relation, RelatedField)
            and not fld.read_only
            and relation.queryset is not None
        ):
            slug = relation.slug_field if isinstance(relation, SlugRelatedField) else None
            relations.append((name, relation.queryset.model, many, slug))
    return relations


def reference_cases() -> list[tuple[Operation, str, type, bool, str | None]]:
    cases = []
    for op in OPERATIONS:
        if op.action in ("create", "update", "partial_update"):
            cases += [(op, *relation) for relation in serializer_relations(op)]
    return cases


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def url_for(op: Operation, case: Case, tenant: Tenant | None) -> str:
    kwargs = dict(case.url_kwargs)
    if op.detail:
        lookup = op.viewset.lookup_url_kwarg or op.viewset.lookup_field
        kwargs[lookup] = case.url_object(tenant)
    return reverse(op.url_name, kwargs=kwargs)


def call(client: APIClient, op: Operation, url: str, body: dict):
    return getattr(client, op.method)(url, body, format="json")


def value_of(obj: Any, slug: str | None) -> Any:
    return getattr(obj, slug) if slug else obj.pk


def test_every_api_write_route_has_a_case():
    keys = {(op.basename, op.action) for op in OPERATIONS}
    assert keys - set(CASES) == set(), "add a row to CASES for these new write routes"
    assert set(CASES) - keys == set(), "these CASES rows have no route any more"
    names = {p.name for p in urlpatterns if getattr(p, "name", None)}
    assert names - set(NON_ROUTER_ROUTES) == set(), "classify these new non-router API routes"


def test_the_route_list_is_generated_from_the_router():
    listed = {str(op) for op in OPERATIONS}
    assert {
        "PATCH token-group.partial_update",
        "PATCH msp.partial_update",
        "DELETE charger.destroy",
        "POST organization.members",
        "POST payment.refund",
        "POST charger.commands",
    } <= listed


# Commands reach the charger through the channel layer, in another thread: committed rows.
COMMITTED = {("charger", "commands"), ("charger", "reservations"), ("charger", "monitors_clear")}


@pytest.mark.parametrize(
    "op",
    [
        pytest.param(
            op,
            id=str(op),
            marks=[pytest.mark.django_db(transaction=True)]
            if (op.basename, op.action) in COMMITTED
            else [],
        )
        for op in OPERATIONS
        if op.detail
    ],
)
def test_another_organizations_object_in_the_url_is_404_and_changes_nothing(op, mine, theirs):
    case = CASES[(op.basename, op.action)]
    api = client_for(mine.owner)
    before = db_state()
    response = call(api, op, url_for(op, case, theirs), case.body(mine))
    assert response.status_code == 404, (str(op), response.content[:300])
    assert changed_tables(before, db_state()) == []
    own = call(api, op, url_for(op, case, mine), case.body(mine))
    assert own.status_code in case.own_status, (str(op), own.status_code, own.content[:300])


@pytest.mark.parametrize(
    "op, name, model, many, slug",
    reference_cases(),
    ids=lambda v: str(v) if isinstance(v, Operation) else None,
)
def test_another_organizations_object_in_a_field_is_refused_like_a_missing_one(
    op, name, model, many, slug, mine, theirs
):
    case = CASES[(op.basename, op.action)]
    api = client_for(mine.owner)
    url = url_for(op, case, mine) if op.detail else url_for(op, case, None)
    foreign = value_of(objects_of(theirs)[model], slug)
    missing = MISSING_SLUG if slug else MISSING_PK

    def body_with(value: Any) -> dict:
        return {**case.body(mine), name: [value] if many else value}

    before = db_state()
    refused = call(api, op, url, body_with(foreign))
    assert refused.status_code == 400, (str(op), name, refused.content[:300])
    assert changed_tables(before, db_state()) == []
    unknown = call(api, op, url, body_with(missing))
    assert unknown.status_code == 400
    # Word for word the answer for an id that does not exist (only the id itself differs).
    assert str(refused.json()[name]).replace(str(foreign), "<id>") == str(
        unknown.json()[name]
    ).replace(str(missing), "<id>")

    # The user's own object in the same field is accepted (owner fields keep their value on update).
    own_obj = objects_of(mine)[model]
    if op.action != "create" and name in getattr(op.viewset.serializer_class, "owner_fields", ()):
        current = getattr(case_target(op, mine), name)
        if current is None:
            return
        own_obj = current
    accepted = call(api, op, url, body_with(value_of(own_obj, slug)))
    assert accepted.status_code in (200, 201), (str(op), name, accepted.content[:300])


def case_target(op: Operation, t: Tenant) -> Any:
    return {
        "property": t.prop,
        "charger": t.charger,
        "rate": t.rate,
        "token": t.token,
        "token-group": t.group,
        "msp": t.msp,
        "organization": t.org,
        "unit": t.unit,
        "reservation": t.reservation,
        "calendar": t.feed,
        "exclusion": t.exclusion,
        "alert-rule": t.alert_rule,
        "config-baseline": t.baseline,
    }[op.basename]
