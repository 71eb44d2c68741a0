"""No OCPI module reads or writes another tenant's objects (issue 33, item 1).

Operator ALPHA and operator BRAVO each have the same partners: an eMSP with party DE*EMS, a
hub with party EU*HUB routing FR*ABC, and a payment terminal provider (PTP, OCPI 2.3.0) with
party AT*PTP (one company connected to two operators is the usual case, so the country code and
party ids are the same across tenants). ALPHA's partners pushed tokens, ran sessions, got a CDR
and made a reservation; ALPHA's PTP pushed a terminal, started a session paid at it and sent
its financial advice confirmation.

Every route of roaming.urls is probed, generated from its URL pattern, in both OCPI versions,
with every method, by each of BRAVO's partners (its eMSP, its hub, its PTP, a partner still
registering with its token A), with ALPHA's objects in the URL and in the body. After each request:
- the answer contains nothing of ALPHA's (every ALPHA string carries the marker "ALPHA");
- every row the request created, changed or deleted, in any table, belongs to BRAVO (with what
  it queued after commit run: commands sent on, pushes).
A new route is probed without a new line here; a new path parameter fails until it is given
ALPHA's values in PATH_VALUES.

The two tenants are made once per module (and worker) in a transaction each test's own nests in
(a savepoint rolled back after it): every test checks that it starts from exactly those rows.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from django.db.models import F, IntegerField, Model
from django.db.models.functions import Coalesce
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from authorization.models import Token
from backoffice.models import Organization
from backoffice.tenancy import ORGANIZATION_PATHS
from billing.models import Rate
from chargers.models import ChargingSession
from roaming import ocpi
from roaming.models import (
    Cdr,
    FinancialAdviceConfirmation,
    Partner,
    RemoteCommand,
    Terminal,
    TerminalAssignment,
    TerminalPayment,
)
from roaming.urls import urlpatterns
from tests import db_snapshot, reference_data
from tests.factories import ChargerFactory, OrganizationFactory, PropertyFactory
from tests.roaming.conftest import auth, connected_partner, located, online

pytestmark = pytest.mark.django_db

MARKER = "ALPHA"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # DELETE last: it may unregister the caller
APP_LABELS = {"backoffice", "authorization", "chargers", "billing", "stays", "roaming"}
# How rows of models outside backoffice.tenancy.ORGANIZATION_PATHS reach their organization.
EXTRA_PATHS = {"chargers.command": ("charger__property__organization",)}

CALLERS = {
    "eMSP": "bravo-emsp-token",
    "hub": "bravo-hub-token",
    "PTP": "bravo-ptp-token",
    "registering (token A)": "bravo-token-a",
}


def _token_object(cc: str, pid: str, uid: str, **fields: Any) -> dict[str, Any]:
    return {
        "country_code": cc,
        "party_id": pid,
        "uid": uid,
        "type": "RFID",
        "contract_id": f"{cc}-{pid}-{uid}",
        "issuer": "Issuer",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2026-01-01T00:00:00Z",
        **fields,
    }


def _operator(name: str) -> dict[str, Any]:
    org = OrganizationFactory(name=f"{name} operator")
    prop = PropertyFactory(organization=org, name=f"{name} garage", roaming_enabled=True)
    located(prop, city=f"{name}ville")
    charger = online(ChargerFactory(property=prop, station_id=f"{name}-CP-1"), {1: "Available"})
    Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.30"),
    )
    lower = name.lower()
    emsp = connected_partner(
        org,
        token=f"{lower}-emsp-token",
        name=f"{name} eMSP",
        outgoing_token=f"{lower}-calls-emsp",
        base="https://emsp.example/ocpi/2.2.1",
    )
    hub = connected_partner(
        org,
        token=f"{lower}-hub-token",
        name=f"{name} hub",
        role=Partner.Role.HUB,
        country_code="EU",
        party_id="HUB",
        outgoing_token=f"{lower}-calls-hub",
        base="https://hub.example/ocpi/2.2.1",
    )
    ptp = connected_partner(
        org,
        token=f"{lower}-ptp-token",
        name=f"{name} terminals",
        role=Partner.Role.PTP,
        country_code="AT",
        party_id="PTP",
        version="2.3.0",
        outgoing_token=f"{lower}-calls-ptp",
        base="https://ptp.example/ocpi/2.3.0",
    )
    pending = Partner.objects.create(
        organization=org,
        name=f"{name} invited",
        token_a_hash=ocpi.token_hash(f"{lower}-token-a"),
    )
    terminal = Terminal.objects.create(
        organization=org,
        partner=ptp,
        terminal_id=f"{name}-TERM-1",
        details={"address": f"{name} street 1", "invoice_creator": "CPO"},
        last_updated=timezone.now(),
        invoice_key=f"{lower}-invoice-key",
    )
    TerminalAssignment.objects.create(
        terminal=terminal, property=prop, charger=charger, connector_id=1
    )
    return {
        "org": org,
        "prop": prop,
        "charger": charger,
        "emsp": emsp,
        "hub": hub,
        "ptp": ptp,
        "terminal": terminal,
        "p": pending,
    }


def _put_token(client: Client, token: str, cc: str, pid: str, uid: str) -> None:
    response = client.put(
        f"/ocpi/2.2.1/tokens/{cc}/{pid}/{uid}",
        json.dumps(_token_object(cc, pid, uid, contract_id=f"{uid}-CONTRACT")),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token),
    )
    assert response.status_code == 201, response.content


def world_bravo_token(bravo: dict[str, Any]) -> Any:
    return bravo["emsp"].tokens.get(uid="BRAVO-UID-1").token


@pytest.fixture(scope="module")
def _world_of_the_module(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """The two tenants' objects, made once for the module's tests in a transaction of their own,
    rolled back at the end: each test's own transaction nests in it (a savepoint, rolled back
    after the test), so every test starts from these rows as when each made them (~0.2 CPU-s
    and three OCPI requests a test, 141 tests)."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
    try:
        with django_db_blocker.unblock():
            reference_data.ensure()
            built = _world(Client())
            built["digests"] = db_snapshot.digests(_project_models())
        yield built
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            # Nothing of it outlives the module (the next module's tests share the database).
            assert not Organization.objects.filter(
                name__in=["ALPHA operator", "BRAVO operator"]
            ).exists()


@pytest.fixture
def world(_world_of_the_module: dict[str, Any], db: None) -> dict[str, Any]:
    # Every test starts from the rows the world was made with: no earlier test's left.
    assert db_snapshot.digests(_project_models()) == _world_of_the_module["digests"]
    return _world_of_the_module


def _world(client: Client) -> dict[str, Any]:
    alpha = _operator("ALPHA")
    bravo = _operator("BRAVO")
    _put_token(client, "alpha-emsp-token", "DE", "EMS", "ALPHA-UID-1")
    _put_token(client, "alpha-hub-token", "FR", "ABC", "ALPHA-UID-2")
    _put_token(client, "bravo-emsp-token", "DE", "EMS", "BRAVO-UID-1")
    tokens = {p.uid: p.token for p in alpha["emsp"].tokens.all()}
    tokens.update({p.uid: p.token for p in alpha["hub"].tokens.all()})
    now = timezone.now()
    finished = ChargingSession.objects.create(
        charger=alpha["charger"],
        connector_id=1,
        transaction_id=1001,
        id_tag="ALPHA-UID-1",
        token=tokens["ALPHA-UID-1"],
        started_at=now - timedelta(hours=2),
        stopped_at=now - timedelta(hours=1),
        meter_start_wh=0,
        meter_stop_wh=5000,
        status=ChargingSession.Status.COMPLETED,
        received_stop_at=now - timedelta(hours=1),
    )
    Cdr.objects.create(
        session=finished,
        partner=alpha["emsp"],
        cdr_id=f"CDR-{finished.pk}",
        data={"id": f"CDR-{finished.pk}", "remark": "ALPHA CDR"},
    )
    running = ChargingSession.objects.create(
        charger=alpha["charger"],
        connector_id=1,
        transaction_id=1002,
        id_tag="ALPHA-UID-2",
        token=tokens["ALPHA-UID-2"],
        started_at=now - timedelta(minutes=5),
        meter_start_wh=0,
    )
    # Left by the bug this test is about: BRAVO's card at ALPHA's charger, its CDR given to BRAVO.
    legacy = ChargingSession.objects.create(
        charger=alpha["charger"],
        connector_id=1,
        transaction_id=1003,
        id_tag="BRAVO-UID-1",
        token=world_bravo_token(bravo),
        started_at=now - timedelta(hours=4),
        stopped_at=now - timedelta(hours=3),
        meter_start_wh=0,
        meter_stop_wh=1000,
        status=ChargingSession.Status.COMPLETED,
        received_stop_at=now - timedelta(hours=3),
    )
    Cdr.objects.create(
        session=legacy,
        partner=bravo["emsp"],
        cdr_id=f"CDR-{legacy.pk}",
        data={"id": f"CDR-{legacy.pk}", "remark": "at ALPHA's charger"},
    )
    for partner in (alpha["emsp"], alpha["hub"]):
        RemoteCommand.objects.create(
            partner=partner,
            type=RemoteCommand.Type.RESERVE_NOW,
            request={"reservation_id": "ALPHA-RES-1"},
            response_url="https://emsp.example/cb",
            charger=alpha["charger"],
            connector_id=1,
            reservation_id="ALPHA-RES-1",
            ocpp_reservation_id=4242,
            response="ACCEPTED",
            result="ACCEPTED",
        )
    # ALPHA's PTP started a session at its terminal and confirmed the capture.
    card = Token.objects.create(
        uid="PTALPHA0000000000001", msp=alpha["ptp"].msp, single_session=True
    )
    paid = ChargingSession.objects.create(
        charger=alpha["charger"],
        connector_id=1,
        transaction_id=1004,
        id_tag=card.uid,
        token=card,
        started_at=now - timedelta(hours=6),
        stopped_at=now - timedelta(hours=5),
        meter_start_wh=0,
        meter_stop_wh=2000,
        status=ChargingSession.Status.COMPLETED,
        received_stop_at=now - timedelta(hours=5),
    )
    payment = TerminalPayment.objects.create(
        organization=alpha["org"],
        partner=alpha["ptp"],
        terminal=alpha["terminal"],
        authorization_reference="ALPHA-REF-1",
        token=card,
        token_data={"country_code": "AT", "party_id": "PTP", "uid": "ALPHA-PTP-CARD"},
        charger=alpha["charger"],
        connector_id=1,
        session=paid,
        invoice_reference_id="ALPHA-INVOICE-1",
    )
    FinancialAdviceConfirmation.objects.create(
        organization=alpha["org"],
        partner=alpha["ptp"],
        payment=payment,
        fac_id="ALPHA-FAC-1",
        capture_status_code="SUCCESS",
        currency="EUR",
        total_excl_tax=Decimal("1.00"),
        total_incl_tax=Decimal("1.21"),
        eft_data=["ALPHA card"],
        data={"id": "ALPHA-FAC-1", "eft_data": ["ALPHA card"]},
        last_updated=now,
    )
    return {"alpha": alpha, "bravo": bravo, "running": running}


# -- what ALPHA's objects look like in URLs and bodies ----------------------------------------------


def _path_values(world: dict[str, Any]) -> dict[str, list[str]]:
    alpha = world["alpha"]
    return {
        "location_id": [str(alpha["prop"].pk)],
        "evse_uid": [ocpi.evse_uid(alpha["charger"].station_id, 1)],
        "connector_id": ["1"],
        "country_code": ["DE", "FR"],
        "party_id": ["EMS", "ABC"],
        "token_uid": ["ALPHA-UID-1", "ALPHA-UID-2"],
        "command": list(RemoteCommand.Type.values),
        "version": list(ocpi.VERSIONS),
        "terminal_id": [alpha["terminal"].terminal_id],
        "fac_id": ["ALPHA-FAC-1"],
        "tariff_id": ["ALPHA-TARIFF-1"],
        "session_id": ["ALPHA-SESSION-1", str(world["running"].pk)],
        "cdr_id": ["ALPHA-CDR-1"],
        "uid": ["ALPHA-COMMAND-1"],
    }


PATH_PARAMETERS = {
    "location_id",
    "evse_uid",
    "connector_id",
    "country_code",
    "party_id",
    "token_uid",
    "command",
    "version",
    "terminal_id",
    "fac_id",
    "tariff_id",
    "session_id",
    "cdr_id",
    "uid",
}


def _command_body(command: str, world: dict[str, Any]) -> dict[str, Any]:
    alpha = world["alpha"]
    place = {
        "location_id": str(alpha["prop"].pk),
        "evse_uid": ocpi.evse_uid(alpha["charger"].station_id, 1),
    }
    token = _token_object("DE", "EMS", "ALPHA-UID-1")
    return {
        "START_SESSION": {**place, "token": token, "authorization_reference": "ALPHA-REF-1"},
        "RESERVE_NOW": {
            **place,
            "token": token,
            "reservation_id": "ALPHA-RES-1",
            "expiry_date": "2030-01-01T00:00:00Z",
        },
        "STOP_SESSION": {"session_id": str(world["running"].pk)},
        "CANCEL_RESERVATION": {"reservation_id": "ALPHA-RES-1"},
        "UNLOCK_CONNECTOR": {**place, "connector_id": "1"},
    }.get(command, {**place, "token": token}) | {"response_url": "https://bravo.example/cb"}


def _bodies(name: str, method: str, kwargs: dict[str, str], world: dict[str, Any]) -> list[Any]:
    """Return the bodies to send: ALPHA's objects where the route takes one, else none."""
    if method in ("GET", "DELETE"):
        return [None]
    if name == "token":
        cc, pid, uid = kwargs["country_code"], kwargs["party_id"], kwargs["token_uid"]
        if method == "PATCH":
            return [{"valid": False, "last_updated": "2026-06-01T00:00:00Z"}]
        return [_token_object(cc, pid, uid, contract_id="BRAVO-CONTRACT")]
    if name in ("command", "commands"):
        command = kwargs.get("command", "START_SESSION")
        return [_command_body(command, world)]
    if name == "terminals":
        return [
            {
                # Its own terminal (an id it echoes back), naming ALPHA's location.
                "terminal_id": world["bravo"]["terminal"].terminal_id,
                "address": "BRAVO street 9",
                "location_ids": [str(world["alpha"]["prop"].pk)],
                "last_updated": "2026-01-01T00:00:00Z",
            }
        ]
    if name == "financial-advice-confirmations":
        return [
            {
                "id": "ALPHA-FAC-1",
                "authorization_reference": "ALPHA-REF-1",
                "total_costs": {"before_taxes": 1, "taxes": [{"name": "VAT", "amount": 0.21}]},
                "currency": "EUR",
                "eft_data": ["BRAVO card"],
                "capture_status_code": "SUCCESS",
                "last_updated": "2026-01-01T00:00:00Z",
            }
        ]
    if name == "credentials":
        return [
            {
                "token": "bravo-new-token",
                "url": "http://127.0.0.1:9/ocpi/versions",
                "roles": [
                    {
                        "role": "HUB",
                        "country_code": "EU",
                        "party_id": "HUB",
                        "business_details": {"name": "Hub"},
                    }
                ],
            }
        ]
    # Any other route: ALPHA's location and token in the places a receiver would read them.
    return [_command_body("START_SESSION", world)]


def _urls(pattern: URLPattern, world: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    names = list(pattern.pattern.converters)
    unknown = set(names) - PATH_PARAMETERS
    assert not unknown, f"give ALPHA's values for the new path parameters {unknown} in PATH_VALUES"
    values = _path_values(world)
    for combination in itertools.product(*(values[name] for name in names)):
        kwargs = dict(zip(names, combination, strict=True))
        yield reverse(f"roaming:{pattern.name}", kwargs=kwargs), kwargs


# -- the state of every table, with each row's organization --------------------------------------


def _organization_paths(label: str) -> tuple[str, ...] | None:
    return ORGANIZATION_PATHS.get(label) or EXTRA_PATHS.get(label)


def _rows_with_owner(model: type[Model]) -> dict[Any, tuple[tuple, int | None]]:
    """{pk: (row, organization id)} of one table."""
    paths = _organization_paths(model._meta.label_lower)
    queryset = model._base_manager.all()
    if paths:
        expressions = [F(p if p != "pk" else "pk") for p in paths]
        owner = (
            expressions[0]
            if len(expressions) == 1
            else Coalesce(*expressions, output_field=IntegerField())
        )
        rows = queryset.annotate(_owner=owner).values_list(
            "_owner", *[f.attname for f in model._meta.concrete_fields]
        )
        return {row[1]: (row[1:], row[0]) for row in rows}
    return {
        row[0]: (row, None)
        for row in queryset.values_list(*[f.attname for f in model._meta.concrete_fields])
    }


def _project_models() -> list[type[Model]]:
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in APP_LABELS
    ]


def db_rows() -> dict[str, dict[Any, tuple[tuple, int | None]]]:
    """Return {model: {pk: (row, organization id)}} for every table of the project (a table
    unchanged since it was last read is not read again: tests/db_snapshot.py)."""
    models = _project_models()
    state = db_snapshot.take(models, _rows_with_owner)
    return {model._meta.label_lower: state[model._meta.label] for model in models}


def foreign_changes(before: dict, after: dict, own_org: int) -> list[str]:
    """Return the rows created, changed or deleted that are not `own_org`'s (before or after)."""
    found = []
    for label in before:
        old, new = before[label], after[label]
        for pk in set(old) | set(new):
            was, now = old.get(pk), new.get(pk)
            if was is not None and now is not None and was[0] == now[0]:
                continue
            owners = {state[1] for state in (was, now) if state is not None}
            if owners != {own_org}:
                change = "created" if was is None else "deleted" if now is None else "changed"
                found.append(f"{label} {pk} {change} (organization {owners})")
    return found


# -- the probe ---------------------------------------------------------------------------------


def _call(client: Client, method: str, url: str, body: Any, token: str) -> Any:
    data = json.dumps(body) if body is not None else ""
    return client.generic(
        method,
        url,
        data,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(token),
        HTTP_OCPI_FROM_COUNTRY_CODE="DE",
        HTTP_OCPI_FROM_PARTY_ID="EMS",
        HTTP_OCPI_TO_COUNTRY_CODE="NL",
        HTTP_OCPI_TO_PARTY_ID="EVB",
    )


ROUTES = [p for p in urlpatterns if isinstance(p, URLPattern)]


def _anonymous_log_row(change: str) -> bool:
    return change.startswith("roaming.ocpilog ") and change.endswith(
        "created (organization {None})"
    )


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("pattern", ROUTES, ids=[p.name for p in ROUTES])
def test_another_tenants_partner_reads_and_writes_nothing_of_ours(
    client: Client,
    world: dict[str, Any],
    pattern: URLPattern,
    caller: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    token = CALLERS[caller]
    bravo_id = world["bravo"]["org"].pk
    probes = 0
    # Each probe's "after" is the next one's "before": nothing but the requests writes in
    # between (the URLs and bodies only read), and whatever did would be counted, not missed.
    rows = db_rows()
    for method in METHODS:
        for url, kwargs in _urls(pattern, world):
            for body in _bodies(pattern.name, method, kwargs, world):
                before = rows
                # What a request queues after commit (a command for the charger, pushes) runs
                # too: its rows count as the request's.
                with django_capture_on_commit_callbacks(execute=True):
                    response = _call(client, method, url, body, token)
                probes += 1
                text = response.content.decode()
                where = f"{caller}: {method} {url} -> {response.status_code} {text[:300]}"
                assert response.status_code < 500, where
                assert MARKER not in text.upper(), f"read ALPHA's data: {where}"
                rows = db_rows()
                changed = foreign_changes(before, rows, bravo_id)
                if response.status_code == 401:
                    # A caller that unregistered itself (DELETE credentials in the other
                    # version) is nobody now: its refused call is logged on no tenant.
                    changed = [c for c in changed if not _anonymous_log_row(c)]
                assert changed == [], f"touched another tenant's rows: {where}: {changed}"
    assert probes >= len(METHODS)


def test_the_probe_sees_the_tenants_own_objects(client: Client, world: dict[str, Any]) -> None:
    """The same requests by ALPHA's own partners do read ALPHA's objects: the probe can see them."""
    alpha = world["alpha"]
    own = {
        "alpha-emsp-token": [
            "/ocpi/2.2.1/tokens/DE/EMS/ALPHA-UID-1",
            "/ocpi/2.2.1/locations",
            f"/ocpi/2.2.1/locations/{alpha['prop'].pk}",
            "/ocpi/2.2.1/cdrs",
        ],
        "alpha-hub-token": ["/ocpi/2.2.1/tokens/FR/ABC/ALPHA-UID-2", "/ocpi/2.3.0/sessions"],
        "alpha-ptp-token": [
            f"/ocpi/2.3.0/payments/terminals/{alpha['terminal'].terminal_id}",
            "/ocpi/2.3.0/payments/financial-advice-confirmations/ALPHA-FAC-1",
        ],
    }
    for token, urls in own.items():
        for url in urls:
            response = _call(client, "GET", url, None, token)
            assert response.status_code == 200, (url, response.content)
            assert MARKER in response.content.decode().upper(), url
