"""Two organizations with one of every object: A is the attacker's own, B the victim.

`db_state()` captures every row of the project's tables, so a test can assert that a
refused write changed nothing at all (not just the object it aimed at).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from django.db.models import Model
from django.test import override_settings
from django.utils import timezone
from pytest_django.plugin import blocking_manager_key

from billing.models import Payment, Rate
from chargers.models import Backoffice
from fleet.models import Baseline, BaselineSetting, Campaign, FirmwareRelease
from metering.models import MeterKey
from reliability.models import AlertRule, Exclusion
from roaming import ocpi
from roaming.models import LocationProfile, Partner, Terminal
from stays.models import CalendarFeed, Reservation, Unit
from tests import db_snapshot, reference_data
from tests.factories import MembershipFactory, UserFactory
from tests.metering.signing import Meter
from tests.portal.conftest import Site, make_site

APP_LABELS = {
    "auth",
    "authtoken",
    "backoffice",
    "authorization",
    "chargers",
    "billing",
    "guest",
    "support",
    "stays",
    "roaming",
    "reliability",
    "metering",
    "pki",
}


@dataclass
class Tenant:
    site: Site
    rate: Rate
    payment: Payment
    membership: Any
    unit: Any = None
    reservation: Any = None
    feed: Any = None
    backoffice: Any = None
    partner: Any = None
    alert_rule: Any = None
    exclusion: Any = None
    terminal: Any = None  # a payment terminal of a PTP partner (OCPI 2.3.0 Payments)
    meter_key: Any = None  # a meter key read from the charger, not confirmed yet
    release: Any = None  # a firmware release (fleet)
    campaign: Any = None  # a draft firmware campaign of that release
    baseline: Any = None  # a configuration baseline of the charger's vendor (1.6)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.site, name)


def make_tenant(prefix: str) -> Tenant:
    site = make_site(prefix)
    rate = Rate.objects.create(
        property=site.prop,
        valid_from=timezone.now() - timedelta(days=30),
        energy_price_per_kwh=Decimal("0.30"),
    )
    payment = Payment.objects.create(
        organization=site.org,
        session=site.session,
        email="guest@example.com",
        currency="EUR",
        amount_held=Decimal("20"),
        amount_captured=Decimal("5"),
        reference=f"pay-{prefix}",
        status=Payment.Status.CAPTURED,
    )
    extra = MembershipFactory(
        organization=site.org, role="viewer", user=UserFactory(username=f"extra@{prefix}.test")
    )
    unit = Unit.objects.create(property=site.prop, name=f"{prefix} Apartment 1")
    reservation = Reservation.objects.create(
        property=site.prop,
        unit=unit,
        guest_name=f"{prefix} Guest",
        check_in=timezone.now(),
        check_out=timezone.now() + timedelta(days=2),
    )
    # Loopback without the allow-list: a sync is refused before any request (and recorded).
    feed = CalendarFeed.objects.create(
        property=site.prop, unit=unit, name="Airbnb", url="http://127.0.0.1:9/x.ics"
    )
    # An upstream backoffice the charger is forwarded to (the proxy; never connected in these tests).
    backoffice = Backoffice.objects.create(
        charger=site.charger, name=f"{prefix} upstream", url="ws://upstream.example/ocpp"
    )
    # A connected OCPI partner; its endpoints are on loopback, which the outbound guard refuses,
    # so an unregistration's credentials DELETE never leaves the machine.
    partner = Partner.objects.create(
        organization=site.org,
        name=f"{prefix} eMSP",
        country_code="DE",
        party_id="EMS",
        state=Partner.State.CONNECTED,
        incoming_token_hash=ocpi.token_hash(f"{prefix}-partner-token"),
        outgoing_token=f"{prefix}-calls-partner",
        endpoints={"credentials": {"RECEIVER": "https://127.0.0.1:9/ocpi/2.2.1/credentials"}},
    )
    alert_rule = AlertRule.objects.create(organization=site.org, kind="offline", after_s=300)
    exclusion = Exclusion.objects.create(
        charger=site.charger,
        start=timezone.now() - timedelta(hours=2),
        end=timezone.now() - timedelta(hours=1),
        reason="grid_outage",
    )
    # The location is published on roaming (its public charger can be paid at a terminal).
    LocationProfile.objects.create(
        property=site.prop,
        city=f"{prefix}ville",
        country="NLD",
        latitude=Decimal("52.0907374"),
        longitude=Decimal("5.1214201"),
    )
    # A payment terminal provider (OCPI 2.3.0 Payments) and one of its terminals.
    ptp = Partner.objects.create(
        organization=site.org,
        name=f"{prefix} PTP",
        role=Partner.Role.PTP,
        version="2.3.0",
        country_code="AT",
        party_id="PTP",
        state=Partner.State.CONNECTED,
        incoming_token_hash=ocpi.token_hash(f"{prefix}-ptp-token"),
        outgoing_token=f"{prefix}-calls-ptp",
        endpoints={"payments": {"SENDER": "https://127.0.0.1:9/ocpi/2.3.0/payments"}},
    )
    terminal = Terminal.objects.create(
        organization=site.org,
        partner=ptp,
        terminal_id=f"{prefix}-TERM-1",
        last_updated=timezone.now(),
        invoice_key=f"{prefix}-invoice-key",
    )
    meter_key = MeterKey.objects.create(
        charger=site.charger,
        connector_id=1,
        public_key=Meter().public_key_der,
        source=MeterKey.Source.CHARGER,
    )
    release = FirmwareRelease.objects.create(
        organization=site.org,
        version="2.0.0",
        vendor=site.charger.vendor or "Vendor",
        location=f"https://firmware.example.com/{prefix}/2.0.0.bin",
        sha256="a" * 64,
    )
    campaign = Campaign.objects.create(organization=site.org, name="Rollout", release=release)
    baseline = Baseline.objects.create(
        organization=site.org,
        name="Standard",
        vendor=site.charger.vendor or "Vendor",
        protocol="1.6",
    )
    BaselineSetting.objects.create(baseline=baseline, variable="HeartbeatInterval", value="300")
    return Tenant(
        site,
        rate,
        payment,
        extra,
        unit,
        reservation,
        feed,
        backoffice,
        partner,
        alert_rule,
        exclusion,
        terminal,
        meter_key,
        release,
        campaign,
        baseline,
    )


# Written by the process itself on its own clock, never by a request: a server process's heartbeat
# (a charger connection earlier in the same worker keeps it beating during a later test).
CLOCK_TABLES = {"chargers.OcppServerProcess"}


def _ordered_rows(model: type[Model]) -> list[tuple]:
    return list(model._base_manager.order_by("pk").values_list())


def db_state() -> dict[str, list[tuple]]:
    """Return every row of the project's tables (and auth's), by model label (a table unchanged
    since it was last read is not read again: tests/db_snapshot.py)."""
    models = [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in APP_LABELS and model._meta.label not in CLOCK_TABLES
    ]
    return db_snapshot.take(models, _ordered_rows)


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(label for label in before if before[label] != after[label])


FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = FAST_HASHERS


# -- The two tenants, made once for a run of tests that roll back ---------------------------------
#
# Making A and B took ~0.1 CPU-s in this process and a third of that in PostgreSQL for every test,
# and most tests of this directory need both and roll back whatever they write. Such tests share one pair: made
# once inside an outer transaction that each test's own transaction (a savepoint of it) rolls back
# to, and rolled back when the next test does not share it (a transactional test, one that asks
# for A alone, a test of another directory, the end of the run). Each test gets its own copy of
# the Python objects. A test that commits (transactional) or asks for one tenant makes its own.

_HERE = Path(__file__).parent


@dataclass
class _World:
    atomic: Any = None
    mine: Tenant | None = None
    theirs: Tenant | None = None


_world = _World()


def _transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    names = set(getattr(item, "fixturenames", ()))
    return bool(marker and marker.kwargs.get("transaction")) or bool(
        names & {"transactional_db", "live_server", "live_server_proc"}
    )


def _shares_world(item: pytest.Item | None) -> bool:
    if item is None or Path(item.path).parent != _HERE:
        return False
    names = set(getattr(item, "fixturenames", ()))
    return {"mine", "theirs"} <= names and not _transactional(item)


def _open_world(blocker: Any) -> None:
    with blocker.unblock():
        reference_data.ensure()  # committed, as a transactional test leaves them
        _world.atomic = transaction.atomic()
        _world.atomic.__enter__()
        try:
            with override_settings(PASSWORD_HASHERS=FAST_HASHERS):
                _world.mine, _world.theirs = make_tenant("A"), make_tenant("B")
        except BaseException:
            _close_world(blocker)
            raise


def _close_world(blocker: Any) -> None:
    if _world.atomic is None:
        return
    atomic, _world.atomic, _world.mine, _world.theirs = _world.atomic, None, None, None
    with blocker.unblock():
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    # pytest-django's per-test transaction (or flush) starts here: open the shared pair first, so
    # the test's transaction is a savepoint of it, or roll it back before a test that must not see it.
    if fixturedef.argname == "_django_db_helper":
        blocker = request.config.stash[blocking_manager_key]
        if not _shares_world(request.node):
            _close_world(blocker)
        elif _world.atomic is None:
            _open_world(blocker)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    if _world.atomic is not None and not _shares_world(nextitem):
        _close_world(item.config.stash[blocking_manager_key])
    return result


def _copy(tenant: Tenant) -> Tenant:
    """A test's own copy of a shared tenant (a test may change its objects in memory)."""
    memo: dict[int, Any] = {}
    return Tenant(**{f.name: copy.deepcopy(getattr(tenant, f.name), memo) for f in fields(tenant)})


@pytest.fixture
def mine(db, request) -> Tenant:
    if _world.mine is not None and _shares_world(request.node):
        return _copy(_world.mine)
    return make_tenant("A")


@pytest.fixture
def theirs(db, request) -> Tenant:
    if _world.theirs is not None and _shares_world(request.node):
        return _copy(_world.theirs)
    return make_tenant("B")


@pytest.fixture(autouse=True)
def _statements_in_tmp(settings, tmp_path):
    settings.BILLING_STATEMENT_ROOT = str(tmp_path / "statements")
