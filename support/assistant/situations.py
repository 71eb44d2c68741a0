"""The live situations the conversation test set runs against (support/assistant/data/conversations.toml).

Each builder writes one situation a real site gets into (a charger offline, a card refused and
then whitelisted, a paid session, a failed payout, a PMS whose sync fails …) with times relative to
now. `manage.py assistant_accuracy` and tests/support/test_conversations.py build one per
conversation inside a transaction that is rolled back afterwards, so nothing stays in the database.
Station ids start with "HV-" and references with "conv-test-" to stay clear of real rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from authorization.models import AuthorizationDecision, Token, TokenGroup
from backoffice.models import Membership, Organization, Property
from billing.models import BillingSettings, Payment, Payout, SessionCharge
from chargers.models import Charger, ChargingSession, Connector
from stays.models import PmsIntegration

PROPERTY = "Harbour View Garage"
GUEST_EMAIL = "ann.guest@example.com"
HOST_EMAIL = "host.harbour@example.com"


@dataclass
class Stage:
    """What a situation built: the host who may ask, and the objects conversations refer to."""

    host: object
    organization: Organization
    property: Property
    chargers: dict[str, Charger]


def _base() -> Stage:
    organization = Organization.objects.create(name="Harbour View Hospitality")
    user = get_user_model().objects.create_user(
        username=HOST_EMAIL, email=HOST_EMAIL, password=None
    )
    Membership.objects.create(user=user, organization=organization, role="owner")
    prop = Property.objects.create(
        organization=organization,
        name=PROPERTY,
        address="12 Quay Street",
        timezone="Europe/Amsterdam",
        currency="EUR",
    )
    return Stage(user, organization, prop, {})


def _charger(stage: Stage, station_id: str, *, online: bool = True, **fields: Any) -> Charger:
    now = timezone.now()
    seen = now if online else now - timedelta(hours=3)
    charger = Charger.objects.create(
        station_id=station_id,
        property=fields.pop("property", stage.property),
        access_mode=fields.pop("access_mode", Charger.AccessMode.PUBLIC),
        license_valid_until=fields.pop("license_valid_until", now.date() + timedelta(days=365)),
        security_profile=0,
        heartbeat_interval=60,
        vendor="Acme",
        connection_id="conn-1" if online else "",
        last_seen_at=seen,
        last_heartbeat_at=seen,
        disconnected_at=None if online else seen,
        **fields,
    )
    Connector.objects.create(
        charger=charger, connector_id=1, status="Available", status_timestamp=seen
    )
    stage.chargers[station_id] = charger
    return charger


def _refusal(station_id: str, uid: str, reason: str, message: str, minutes_ago: int) -> None:
    decision = AuthorizationDecision.objects.create(
        uid=uid,
        uid_normalized=uid.upper(),
        station_id=station_id,
        connector_id=1,
        context="local",
        status="Invalid",
        reason=reason,
        step=1,
        message=message,
    )
    at = timezone.now() - timedelta(minutes=minutes_ago)
    AuthorizationDecision.objects.filter(pk=decision.pk).update(created_at=at)


def _paid_session(stage: Stage, charger: Charger, *, minutes_ago: int, total: str) -> None:
    now = timezone.now()
    started = now - timedelta(minutes=minutes_ago + 40)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=2147480001,
        id_tag="GUEST-7F3A",
        started_at=started,
        stopped_at=now - timedelta(minutes=minutes_ago),
        meter_start_wh=1000,
        meter_stop_wh=4200,
        status=ChargingSession.Status.COMPLETED,
        stop_reason="EVDisconnected",
    )
    amount = Decimal(total)
    tax = (amount * Decimal("0.21") / Decimal("1.21")).quantize(Decimal("0.01"))
    SessionCharge.objects.create(
        session=session,
        organization=stage.organization,
        currency="EUR",
        lines=[
            {
                "kind": "connection_fee",
                "description": "Connection fee (once per session)",
                "amount": "0.30",
            },
            {
                "kind": "energy",
                "description": "Energy 3.200 kWh × 0.2 EUR/kWh",
                "amount": str(amount - tax - Decimal("0.30")),
            },
        ],
        subtotal=amount - tax,
        tax=tax,
        total=amount,
        energy_wh=3200,
        started_at=started,
    )
    Payment.objects.create(
        organization=stage.organization,
        session=session,
        email=GUEST_EMAIL,
        currency="EUR",
        amount_held=Decimal("20.00"),
        amount_captured=amount,
        reference="conv-test-pay-1",
        status=Payment.Status.CAPTURED,
        card_last4="4242",
    )


def offline(stage: Stage) -> None:
    _charger(stage, "HV-01", online=False)


def online(stage: Stage) -> None:
    _charger(stage, "HV-01")


def faulted(stage: Stage) -> None:
    charger = _charger(stage, "HV-01")
    Connector.objects.filter(charger=charger).update(status="Faulted", error_code="GroundFailure")


def refused_then_whitelisted(stage: Stage) -> None:
    """A visitor's card was refused 25 minutes ago, the host whitelisted it, and it has charged since."""
    charger = _charger(stage, "HV-01")
    group = TokenGroup.objects.create(organization=stage.organization, name="Residents")
    charger.token_groups.add(group)
    _refusal(
        "HV-01",
        "DEADBEEF01",
        "not_in_local_group",
        "Card DEADBEEF01 is not in a local token group of this charger.",
        25,
    )
    token = Token.objects.create(uid="DEADBEEF01", organization=stage.organization)
    group.tokens.add(token)
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=2147480002,
        id_tag="DEADBEEF01",
        token=token,
        started_at=timezone.now() - timedelta(minutes=12),
        meter_start_wh=0,
    )
    Connector.objects.filter(charger=charger).update(status="Charging")


def refused_now(stage: Stage) -> None:
    """A card refused 5 minutes ago, still not allowed (the charger is for residents only)."""
    charger = _charger(stage, "HV-01")
    group = TokenGroup.objects.create(organization=stage.organization, name="Residents")
    charger.token_groups.add(group)
    _refusal(
        "HV-01",
        "DEADBEEF01",
        "not_in_local_group",
        "Card DEADBEEF01 is not in a local token group of this charger.",
        5,
    )
    _refusal(
        "HV-01",
        "DEADBEEF01",
        "not_in_local_group",
        "Card DEADBEEF01 is not in a local token group of this charger.",
        4,
    )


def license_inactive(stage: Stage) -> None:
    _charger(stage, "HV-01", license_valid_until=timezone.now().date() - timedelta(days=3))


def paid_session(stage: Stage) -> None:
    """A guest paid 1.28 EUR at HV-01, 8 minutes ago, with the card ending 4242."""
    charger = _charger(stage, "HV-01")
    _paid_session(stage, charger, minutes_ago=8, total="1.28")


def unassigned_charger(stage: Stage) -> None:
    """A new charger that connected but is not linked to a property; no PMS connected."""
    _charger(stage, "HV-01")
    charger = Charger.objects.create(
        station_id="HV-09",
        property=None,
        security_profile=0,
        vendor="Acme",
        connection_id="conn-9",
        last_seen_at=timezone.now(),
        heartbeat_interval=60,
    )
    stage.chargers["HV-09"] = charger


def pms_sync_error(stage: Stage) -> None:
    _charger(stage, "HV-01")
    PmsIntegration.objects.create(
        organization=stage.organization,
        vendor=PmsIntegration.Vendor.GUESTY,
        state=PmsIntegration.State.ERROR,
        failures=4,
        last_error="Guesty refused the API key (401 Unauthorized)",
        last_synced_at=timezone.now() - timedelta(minutes=20),
        last_success_at=timezone.now() - timedelta(days=2),
    )


def payout_failed(stage: Stage) -> None:
    _charger(stage, "HV-01")
    BillingSettings.objects.create(
        organization=stage.organization,
        payout_account_id="acct_conv_test",
        payout_account_ready=True,
    )
    now = timezone.now()
    Payout.objects.create(
        organization=stage.organization,
        currency="EUR",
        period_start=now - timedelta(days=37),
        period_end=now - timedelta(days=7),
        gross=Decimal("412.50"),
        processing_fees=Decimal("12.10"),
        platform_fees=Decimal("20.60"),
        net=Decimal("379.80"),
        status=Payout.Status.FAILED,
        failure_reason="the bank account was closed",
        reference="conv-test-po-1",
    )


def no_payouts(stage: Stage) -> None:
    """No payout yet and no bank account: the host's dashboard shows revenue all the same."""
    charger = _charger(stage, "HV-01")
    _paid_session(stage, charger, minutes_ago=600, total="6.40")


def fleet(stage: Stage) -> None:
    """A host's fleet as the dashboard shows it: HV-01 fine, HV-02 online but Faulted, HV-03
    offline for 3 h, HV-05 added but never connected; a guest's card refused at HV-01 7 minutes
    ago and a guest's card declined by the bank there 6 minutes ago."""
    _charger(stage, "HV-01")
    faulty = _charger(stage, "HV-02")
    Connector.objects.filter(charger=faulty).update(status="Faulted", error_code="GroundFailure")
    _charger(stage, "HV-03", online=False)
    never = _charger(stage, "HV-05", online=False)
    Charger.objects.filter(pk=never.pk).update(
        last_seen_at=None, last_heartbeat_at=None, disconnected_at=None
    )
    _refusal("HV-01", "04A1B2C3D4E5F6", "unknown_token", "Card 04A1B2C3D4E5F6 is not known.", 7)
    payment = Payment.objects.create(
        organization=stage.organization,
        email=GUEST_EMAIL,
        currency="EUR",
        amount_held=Decimal("20.00"),
        reference="conv-test-pay-declined",
        status=Payment.Status.PENDING,
        last_error="Your card was declined (insufficient funds).",
        card_last4="9995",
    )
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=6))


SITUATIONS: dict[str, Callable[[Stage], None]] = {
    "offline": offline,
    "online": online,
    "faulted": faulted,
    "refused_then_whitelisted": refused_then_whitelisted,
    "refused_now": refused_now,
    "license_inactive": license_inactive,
    "paid_session": paid_session,
    "unassigned_charger": unassigned_charger,
    "pms_sync_error": pms_sync_error,
    "payout_failed": payout_failed,
    "no_payouts": no_payouts,
    "fleet": fleet,
}


def build(name: str) -> Stage:
    """Write the named situation and return what it built."""
    stage = _base()
    SITUATIONS[name](stage)
    return stage
