"""Writes for PMS integrations: credentials (sealed), sync with back-off, webhooks."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from django.db import transaction
from django.utils import timezone

from backoffice import outbound
from backoffice.sealed import seal, unseal

from ..models import Listing, PmsIntegration, Reservation, StayPolicy, Unit
from ..pms import (
    TIMEOUT_S,
    Adapter,
    PmsError,
    PmsReservation,
    adapter_for,
    cursor_of,
    cursor_time,
)
from .stays import send_code_on_commit

logger = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)


def integration_credentials_set(
    *, integration: PmsIntegration, credentials: dict[str, str]
) -> None:
    """Store the vendor credentials encrypted (backoffice.sealed); they are never shown again."""
    integration.credentials_encrypted = seal(
        json.dumps({k: v for k, v in credentials.items() if v})
    )
    integration.save(update_fields=["credentials_encrypted"])


def integration_credentials(integration: PmsIntegration) -> dict[str, str]:
    text = unseal(integration.credentials_encrypted)
    return json.loads(text) if text else {}


def _timezone_of(integration: PmsIntegration) -> str:
    prop = integration.organization.properties.order_by("pk").first()
    return prop.timezone if prop else "UTC"


def _adapter(integration: PmsIntegration, client: httpx.Client) -> Adapter:
    return adapter_for(
        integration.vendor,
        integration_credentials(integration),
        client,
        timezone=_timezone_of(integration),
        base_url=integration.base_url,
    )


@dataclass(frozen=True)
class PmsSyncResult:
    ok: bool
    listings: int = 0
    reservations: int = 0
    unmapped: int = 0
    left_out: int = 0
    error: str = ""


class _Cursor:
    """The next pull's cursor: the newest change time a vendor sent, never past our own `now`.

    A vendor's `updatedAt` is taken as sent, but one far in the future (its clock bug, hostile
    data) would make every later pull ask for changes after it and skip the real ones: a time
    past `now` becomes `now` (a record stamped a little ahead is pulled once more next time,
    which changes nothing). Text that is no date-time never becomes the cursor; a stored cursor
    past `now` (written before this rule) is not used: that pull is a full one."""

    def __init__(self, stored: str, now: datetime) -> None:
        self.now = now
        at = cursor_time(stored)
        self.since = stored if at is not None and at <= now else ""
        self.text, self.at = self.since, at if self.since else None

    def see(self, updated_at: str) -> None:
        at = cursor_time(updated_at)
        if at is None or (self.at is not None and at <= self.at):
            return
        if at > self.now:
            self.text, self.at = cursor_of(self.now), self.now
        else:
            self.text, self.at = updated_at, at


def _local_stay(item: PmsReservation, unit: Unit) -> tuple[datetime, datetime]:
    """The stay's check-in and check-out; a day the PMS gave without a time gets the check-in
    or check-out time of the unit's property in that property's zone (an organization's
    properties may lie in different zones, and each has its own times)."""
    prop = unit.property
    policy = getattr(prop, "stay_policy", None) or StayPolicy()
    zone = ZoneInfo(prop.timezone)
    check_in, check_out = item.check_in, item.check_out
    if item.check_in_day is not None:
        check_in = datetime.combine(item.check_in_day, policy.check_in_time, tzinfo=zone)
    if item.check_out_day is not None:
        check_out = datetime.combine(item.check_out_day, policy.check_out_time, tzinfo=zone)
    if check_out <= check_in:  # a policy's times that turn this stay around: keep the vendor's
        return item.check_in, item.check_out
    return check_in, check_out


def _upsert(
    integration: PmsIntegration, item: PmsReservation, units: dict[str, Unit | None]
) -> bool:
    """Create or update the reservation of `item`; False when its listing is not mapped to a unit."""
    unit = units.get(item.listing_id)
    if unit is None:
        return False
    check_in, check_out = _local_stay(item, unit)
    status = (
        Reservation.Status.CANCELLED
        if item.cancelled
        else Reservation.Status.CONFIRMED
        if item.confirmed
        else Reservation.Status.TENTATIVE
    )
    row, _ = Reservation.objects.update_or_create(
        integration=integration,
        external_id=item.external_id,
        defaults={
            "property": unit.property,
            "unit": unit,
            "check_in": check_in,
            "check_out": check_out,
            "status": status,
            "guest_name": item.guest_name[:200],
            "guest_email": item.guest_email[:254],
            "guest_phone": item.guest_phone[:40],
            "source": integration.vendor,
        },
    )
    send_code_on_commit(row)
    return True


def _mapping(integration: PmsIntegration) -> dict[str, Unit | None]:
    return {
        listing.external_id: listing.unit
        for listing in integration.listings.select_related("unit__property__stay_policy")
    }


def pms_sync(
    *,
    integration_id: int,
    client: httpx.Client | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> PmsSyncResult:
    """Pull listings and the reservations changed since the cursor; back off after failures."""
    now = now or timezone.now()
    integration = PmsIntegration.objects.select_related("organization").get(pk=integration_id)
    if not force and integration.next_attempt_at and integration.next_attempt_at > now:
        return PmsSyncResult(ok=False, error=integration.last_error)
    own = client is None
    # Every PMS call goes through the outbound guard: a Track base URL is checked again here, at
    # connect time, not only when it was saved (its DNS may have changed since).
    client = client or outbound.http_client(timeout=TIMEOUT_S)
    try:
        adapter = _adapter(integration, client)
        listings = list(adapter.listings())
        with transaction.atomic():
            for listing in listings:
                row, created = Listing.objects.get_or_create(
                    integration=integration,
                    external_id=listing.external_id,
                    defaults={"name": listing.name[:300]},
                )
                if row.name != listing.name[:300]:
                    Listing.objects.filter(pk=row.pk).update(name=listing.name[:300])
                if row.unit_id is None:
                    # A unit whose external id is the listing id is mapped for the host.
                    unit = Unit.objects.filter(
                        property__organization=integration.organization,
                        external_id=listing.external_id,
                    ).first()
                    if unit is not None:
                        Listing.objects.filter(pk=row.pk).update(unit=unit)
        units = _mapping(integration)
        stored = unmapped = 0
        cursor = _Cursor(integration.cursor, now)
        with transaction.atomic():
            for item in adapter.reservations(since=cursor.since, now=now):
                if _upsert(integration, item, units):
                    stored += 1
                else:
                    unmapped += 1
                cursor.see(item.updated_at)
    except PmsError as exc:
        _record_failure(integration.pk, exc, now)
        return PmsSyncResult(ok=False, error=exc.message)
    finally:
        if own:
            client.close()
    PmsIntegration.objects.filter(pk=integration.pk).update(
        state=PmsIntegration.State.OK,
        last_synced_at=now,
        last_success_at=now,
        last_error="",
        failures=0,
        next_attempt_at=None,
        cursor=cursor.text[:100],
        listings_count=len(listings),
        reservations_count=Reservation.objects.filter(integration=integration).count(),
    )
    notes = _sync_notes(unmapped, adapter.left_out.count)
    if notes:
        PmsIntegration.objects.filter(pk=integration.pk).update(last_error=notes[:500])
    return PmsSyncResult(
        ok=True,
        listings=len(listings),
        reservations=stored,
        unmapped=unmapped,
        left_out=adapter.left_out.count,
    )


def _record_failure(integration_id: int, exc: PmsError, now: datetime) -> None:
    """Count one more failure and set when to try again. The count is read under the row's lock:
    two pulls failing at once (the beat and "Sync now") count two, and the second backs off
    longer, as two failures in a row should."""
    with transaction.atomic():
        failures = (
            PmsIntegration.objects.select_for_update()
            .values_list("failures", flat=True)
            .get(pk=integration_id)
        ) + 1
        backoff = min(timedelta(minutes=2 ** min(failures, 6)), MAX_BACKOFF)
        # A vendor's wait (Retry-After, our floor for a 5xx or no answer) is the first one; a
        # failure after that backs off as any other, never sooner than the vendor's wait.
        wait = (
            backoff
            if not exc.retry_after
            else timedelta(seconds=exc.retry_after)
            if failures == 1
            else max(timedelta(seconds=exc.retry_after), backoff)
        )
        PmsIntegration.objects.filter(pk=integration_id).update(
            state=PmsIntegration.State.BACKING_OFF
            if exc.retry_after
            else PmsIntegration.State.ERROR,
            last_synced_at=now,
            last_error=exc.message[:500],
            failures=failures,
            next_attempt_at=now + wait,
        )


def _sync_notes(unmapped: int, left_out: int) -> str:
    """What a successful sync tells the host on its sync page (empty: nothing to tell)."""
    notes = []
    if unmapped:
        notes.append(
            f"{unmapped} reservation(s) belong to listings not mapped to a unit yet: map them on the PMS sync page."
        )
    if left_out:
        notes.append(
            f"{left_out} record(s) from the PMS were left out: no usable id or stay dates "
            "(fix them in the PMS; the others were synced)."
        )
    return " ".join(notes)


def pms_webhook(*, webhook_key: str, headers: dict[str, str], body: bytes) -> str:
    """Apply a vendor's webhook; return "ok", "ignored" (not a reservation event), "invalid" (a
    signed body that is not JSON, or a reservation without a usable id or dates: nothing
    changes), "unknown" or "bad_signature"."""
    integration = (
        PmsIntegration.objects.select_related("organization")
        .filter(webhook_key=webhook_key)
        .first()
    )
    if integration is None:
        return "unknown"
    with outbound.http_client(timeout=TIMEOUT_S) as client:
        adapter = _adapter(integration, client)
        if not adapter.verify_webhook({k.lower(): v for k, v in headers.items()}, body):
            return "bad_signature"
        try:
            item = adapter.webhook_reservation(body)
        except ValueError:  # the adapters read every field defensively and raise only this
            return "invalid"
    if item is None:
        return "ignored"
    with transaction.atomic():
        _upsert(integration, item, _mapping(integration))
    return "ok"


def pms_integrations_due(*, every: timedelta, now: datetime | None = None) -> list[int]:
    """The integrations to pull: not pulled within `every`, not backing off, and no pull queued
    within `every` that may still wait for a busy worker."""
    now = now or timezone.now()
    rows = PmsIntegration.objects.exclude(credentials_encrypted="")
    return [
        i.pk
        for i in rows
        if (i.last_synced_at is None or i.last_synced_at <= now - every)
        and (i.next_attempt_at is None or i.next_attempt_at <= now)
        and (i.pull_queued_at is None or i.pull_queued_at <= now - every)
    ]


def pms_integrations_queued(integration_ids: list[int], now: datetime | None = None) -> None:
    """Note that the beat queued these integrations' pulls (pms_integrations_due leaves them out)."""
    PmsIntegration.objects.filter(pk__in=integration_ids).update(
        pull_queued_at=now or timezone.now()
    )


def listing_map(*, listing: Listing, unit: Unit | None) -> Listing:
    """Map a PMS listing to a unit of the integration's organization (None: unmap)."""
    if unit is not None and unit.property.organization_id != listing.integration.organization_id:
        from django.core.exceptions import ValidationError

        raise ValidationError({"unit": "This unit belongs to another organization."})
    listing.unit = unit
    listing.save(update_fields=["unit", "updated_at"])
    return listing


# Which credential each vendor's adapter reads (stays/pms.py), from the portal's three fields.
CREDENTIAL_FIELDS: dict[str, tuple[str, str, str]] = {
    PmsIntegration.Vendor.GUESTY: ("client_id", "client_secret", "webhook_secret"),
    PmsIntegration.Vendor.HOSPITABLE: ("", "token", "webhook_secret"),
    PmsIntegration.Vendor.TRACK: ("key", "secret", ""),
}


def credentials_from(
    vendor: str, *, key: str = "", secret: str = "", webhook_secret: str = ""
) -> dict[str, str]:
    """Return the vendor's credentials dict from the portal's fields (key, secret, webhook secret)."""
    names = CREDENTIAL_FIELDS[vendor]
    return {
        name: value.strip()
        for name, value in zip(names, (key, secret, webhook_secret), strict=True)
        if name and value.strip()
    }


def integration_create(
    *,
    organization_id: int,
    vendor: str,
    name: str = "",
    base_url: str = "",
    credentials: dict[str, str],
) -> PmsIntegration:
    """Connect a PMS for an organization (portal or admin); credentials are sealed, never shown again."""
    from django.core.exceptions import ValidationError

    from .stays import check_calendar_url

    if vendor == PmsIntegration.Vendor.TRACK:
        if not base_url:
            raise ValidationError(
                {
                    "base_url": "Track needs your Track address, e.g. https://yourcompany.trackhs.com."
                }
            )
        check_calendar_url(base_url)  # https:// to a public address (server-side request forgery)
    if not credentials:
        raise ValidationError({"secret": "Enter the API credentials from your PMS."})
    with transaction.atomic():
        existing = _connected_already(organization_id, vendor, base_url, credentials)
        if existing is not None:
            return existing
        integration = PmsIntegration(
            organization_id=organization_id,
            vendor=vendor,
            name=name.strip(),
            base_url=base_url.strip() if vendor == PmsIntegration.Vendor.TRACK else "",
        )
        integration.full_clean(exclude=["webhook_key"])
        integration.save()
        integration_credentials_set(integration=integration, credentials=credentials)
    return integration


def _connected_already(
    organization_id: int, vendor: str, base_url: str, credentials: dict[str, str]
) -> PmsIntegration | None:
    """The organization's integration of this PMS account (same vendor, address and
    credentials), if it has one: "Connect" sent twice (at once or later) is that integration,
    not a second one whose reservations would be each booking's second stay and code email.
    Under the organization's row lock, so two requests at once find each other."""
    from backoffice.models import Organization

    list(
        Organization.objects.select_for_update(no_key=True)
        .filter(pk=organization_id)
        .values_list("pk")
    )
    base = base_url.strip() if vendor == PmsIntegration.Vendor.TRACK else ""
    given = {k: v for k, v in credentials.items() if v}
    for integration in PmsIntegration.objects.filter(
        organization_id=organization_id, vendor=vendor, base_url=base
    ):
        if integration_credentials(integration) == given:
            return integration
    return None


def integration_credentials_replace(
    *, integration: PmsIntegration, credentials: dict[str, str]
) -> PmsIntegration:
    """New credentials (e.g. after "the API key was revoked"): sealed, the back-off is reset."""
    from django.core.exceptions import ValidationError

    if not credentials:
        raise ValidationError({"secret": "Enter the API credentials from your PMS."})
    with transaction.atomic():
        integration_credentials_set(integration=integration, credentials=credentials)
        PmsIntegration.objects.filter(pk=integration.pk).update(next_attempt_at=None, failures=0)
    integration.refresh_from_db()
    return integration


@transaction.atomic
def integration_disconnect(*, integration: PmsIntegration) -> int:
    """Disconnect a PMS: its credentials and listings are deleted (nothing syncs, its webhook
    URL answers 404), its upcoming reservations are cancelled as a removed calendar feed's are
    (nobody keeps them in line any more), past ones stay as history. Return how many were
    cancelled."""
    cancelled = (
        Reservation.objects.filter(integration=integration, check_out__gt=timezone.now())
        .exclude(status=Reservation.Status.CANCELLED)
        .update(status=Reservation.Status.CANCELLED)
    )
    integration.delete()  # listings go with it; reservations keep their history (SET_NULL)
    return cancelled
