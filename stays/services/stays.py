"""Writes of stays: units, stay policies, reservations and their access codes, calendar syncs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from backoffice import outbound
from backoffice.formatting import datetime_text, zone_or_utc
from backoffice.models import Property

from ..ical import CalendarError, FeedEvent, parse_calendar
from ..models import CalendarFeed, Reservation, StayPolicy, Unit

logger = logging.getLogger(__name__)

FEED_TIMEOUT_S = 15.0
# The whole pull, however the server paces its bytes: each read within FEED_TIMEOUT_S is not
# enough (a server in trouble dribbling 5 MB would hold a worker, or "Sync now", for hours).
FEED_DEADLINE_S = 60.0
FEED_MAX_BYTES = 5 * 1024 * 1024
# Reservations that ended this long ago are history: a feed that stops listing them (Airbnb drops
# past stays) does not cancel them.
KEEP_PAST = timedelta(days=1)
# A calendar server in trouble may answer an empty calendar: the stays it listed are taken as
# cancelled only once every answer has been empty this long.
EMPTY_BELIEVED_AFTER = timedelta(hours=12)


# -- units and policy ------------------------------------------------------------------------------


def unit_check(*, property: Property, unit: Unit | None) -> None:
    """Raise ValidationError unless `unit` is empty or a unit of `property`."""
    if unit is not None and unit.property_id != property.pk:
        raise ValidationError({"unit": "This unit belongs to another property."})


@transaction.atomic
def unit_create(
    *, property: Property, name: str, kind: str = Unit.Kind.APARTMENT, external_id: str = ""
) -> Unit:
    unit = Unit(property=property, name=name.strip(), kind=kind, external_id=external_id.strip())
    unit.full_clean()
    unit.save()
    return unit


@transaction.atomic
def unit_update(*, unit: Unit, **fields: Any) -> Unit:
    for name, value in fields.items():
        setattr(unit, name, value.strip() if isinstance(value, str) else value)
    unit.full_clean()
    unit.save()
    return unit


@transaction.atomic
def stay_policy_update(*, property: Property, **fields: Any) -> StayPolicy:
    policy, _ = StayPolicy.objects.get_or_create(property=property)
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    return policy


# -- reservations ----------------------------------------------------------------------------------


def access_link(reservation: Reservation, site_url: str = "") -> str:
    """Return the guest's link (for PMS message templates and the email)."""
    base = (getattr(settings, "SITE_URL", "") or site_url).rstrip("/")
    return f"{base}/s/stay/{reservation.access_code}/"


def reservation_send_code(*, reservation_id: int, site_url: str = "") -> bool:
    """Email the guest their access code and link, once; True if an email went out."""
    reservation = (
        Reservation.objects.select_related("property", "unit").filter(pk=reservation_id).first()
    )
    if reservation is None or not reservation.guest_email or reservation.code_sent_at is not None:
        return False
    if reservation.status != Reservation.Status.CONFIRMED:
        return False
    zone = zone_or_utc(reservation.property.timezone)
    where = f"{reservation.property.name}" + (
        f", {reservation.unit.name}" if reservation.unit else ""
    )
    body = (
        f"Hello {reservation.guest_name or 'and welcome'},\n\n"
        f"Your stay at {where} includes access to its EV charger.\n"
        f"Access code: {reservation.access_code}\n"
        f"Open {access_link(reservation, site_url)} or scan the QR code on the charger and enter the code.\n\n"
        # In the property's zone: the stored times are UTC ("13:00 UTC" for a 15:00 check-in).
        f"The code works from shortly before check-in ({datetime_text(reservation.check_in, zone)}) "
        f"until shortly after check-out ({datetime_text(reservation.check_out, zone)}).\n"
    )
    # Claimed before sending: two syncs (or a sync and a webhook) that saw the stay at once each
    # ask to send its code, and only the one whose UPDATE finds it unsent mails the guest.
    sent_at = timezone.now()
    if not Reservation.objects.filter(pk=reservation.pk, code_sent_at__isnull=True).update(
        code_sent_at=sent_at
    ):
        return False
    try:
        send_mail(
            f"EV charging during your stay at {reservation.property.name}",
            body,
            None,
            [reservation.guest_email],
        )
    except Exception:
        logger.warning(
            "Could not email the access code of reservation %s", reservation.pk, exc_info=True
        )
        # Not sent: the next save of the stay tries again.
        Reservation.objects.filter(pk=reservation.pk, code_sent_at=sent_at).update(
            code_sent_at=None
        )
        return False
    return True


# A stay saved this recently may still have its own send (on commit) under way.
CODE_RETRY_AFTER = timedelta(minutes=5)


def access_codes_unsent_send(*, now: datetime | None = None, limit: int = 50) -> int:
    """Mail the codes a failed send left unsent (the mail server was down when the stay was
    saved): a PMS is pulled by its changes only, so nothing else would try again before the
    guest arrives. Confirmed stays not over yet; return how many went out."""
    now = now or timezone.now()
    unsent = (
        Reservation.objects.filter(
            status=Reservation.Status.CONFIRMED,
            code_sent_at__isnull=True,
            check_out__gt=now,
            updated_at__lte=now - CODE_RETRY_AFTER,
        )
        .exclude(guest_email="")
        .order_by("check_in", "id")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(reservation_send_code(reservation_id=pk) for pk in list(unsent))


def send_code_on_commit(reservation: Reservation) -> None:
    if (
        reservation.guest_email
        and reservation.code_sent_at is None
        and reservation.status == Reservation.Status.CONFIRMED
    ):
        reservation_id = reservation.pk
        transaction.on_commit(lambda: reservation_send_code(reservation_id=reservation_id))


@transaction.atomic
def reservation_create(
    *,
    property: Property,
    check_in: datetime,
    check_out: datetime,
    unit: Unit | None = None,
    guest_name: str = "",
    guest_email: str = "",
    guest_phone: str = "",
    source: str = Reservation.Source.MANUAL,
    external_id: str = "",
    status: str = Reservation.Status.CONFIRMED,
) -> Reservation:
    """Create a reservation (entered by the host or an API client) and email its code."""
    unit_check(property=property, unit=unit)
    if check_out <= check_in:
        raise ValidationError({"check_out": "Check-out must be after check-in."})
    reservation = Reservation(
        property=property,
        unit=unit,
        guest_name=guest_name,
        guest_email=guest_email,
        guest_phone=guest_phone,
        check_in=check_in,
        check_out=check_out,
        source=source,
        external_id=external_id,
        status=status,
    )
    reservation.full_clean(exclude=["access_code"])
    reservation.save()
    send_code_on_commit(reservation)
    return reservation


@transaction.atomic
def reservation_update(*, reservation: Reservation, **fields: Any) -> Reservation:
    for name, value in fields.items():
        setattr(reservation, name, value)
    unit_check(property=reservation.property, unit=reservation.unit)
    if reservation.check_out <= reservation.check_in:
        raise ValidationError({"check_out": "Check-out must be after check-in."})
    reservation.full_clean(exclude=["access_code"])
    reservation.save()
    send_code_on_commit(reservation)
    return reservation


# -- calendar feeds --------------------------------------------------------------------------------

URL_MESSAGE = (
    "Enter the calendar's https:// export URL on a public server; addresses in private, loopback, "
    "link-local or reserved networks are not allowed."
)


def check_calendar_url(url: str, *, resolve: bool = True) -> None:
    """Raise ValidationError unless the outbound guard lets us fetch `url` (backoffice.outbound):
    https:// to a public address, or http/https to a host staff allow-listed."""
    try:
        outbound.check_url(url, schemes=("https",), resolve=resolve)
    except outbound.HostNotFound:
        host = urlsplit(url).hostname or url
        raise ValidationError({"url": f"The host {host} could not be found."}) from None
    except outbound.OutboundBlocked:
        raise ValidationError({"url": URL_MESSAGE}) from None


@transaction.atomic
def calendar_feed_create(
    *, property: Property, name: str, url: str, unit: Unit | None = None
) -> CalendarFeed:
    """Add a calendar to the property (or one unit). A calendar the property has already (the
    form sent twice, at once or later) is that feed: a second feed of one URL would make each of
    its bookings two stays, each mailing the guest a code. Under the property's lock, so two
    sent at once find each other; the same URL for another unit is refused."""
    unit_check(property=property, unit=unit)
    check_calendar_url(url)
    list(Property.objects.select_for_update(no_key=True).filter(pk=property.pk).values_list("pk"))
    existing = CalendarFeed.objects.filter(property=property, url=url).first()
    if existing is not None:
        if existing.unit_id != (unit.pk if unit else None):
            raise ValidationError(
                {"url": f"This calendar is added already, as “{existing.name}”. Remove it first."}
            )
        return existing
    feed = CalendarFeed(
        property=property,
        unit=unit,
        name=name.strip() or urlsplit(url).hostname or "Calendar",
        url=url,
    )
    feed.full_clean()
    feed.save()
    return feed


@transaction.atomic
def calendar_feed_delete(*, feed: CalendarFeed) -> int:
    """Remove a feed; its upcoming reservations are cancelled (nobody keeps them in line any more),
    past ones stay as history. Return how many were cancelled."""
    cancelled = (
        Reservation.objects.filter(calendar=feed, check_out__gt=timezone.now())
        .exclude(status=Reservation.Status.CANCELLED)
        .update(status=Reservation.Status.CANCELLED)
    )
    feed.delete()
    return cancelled


@dataclass(frozen=True)
class SyncResult:
    ok: bool
    bookings: int = 0
    blocked: int = 0
    created: int = 0
    updated: int = 0
    cancelled: int = 0
    error: str = ""
    empty: bool = False  # an empty answer not believed yet: the stays were kept


def _fetch(url: str, client: httpx.Client | None) -> bytes:
    check_calendar_url(url)
    own = client is None
    client = client or outbound.http_client(timeout=FEED_TIMEOUT_S)
    try:
        with client.stream("GET", url, headers={"Accept": "text/calendar"}) as response:
            if response.status_code != 200:
                raise _FetchError(_status_words(response.status_code))
            body = b""
            deadline = time.monotonic() + FEED_DEADLINE_S
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > FEED_MAX_BYTES:
                    raise _FetchError("The calendar is larger than 5 MB; is this the right URL?")
                if time.monotonic() > deadline:
                    raise _FetchError(
                        "The calendar server did not finish its answer within "
                        f"{FEED_DEADLINE_S:.0f} seconds. The next scheduled sync will try again."
                    )
            return body
    finally:
        if own:
            client.close()


class _FetchError(Exception):
    pass


def _status_words(status: int) -> str:
    if status in (401, 403):
        return f"The calendar server answered {status}: the link is private or was reset. Copy the export link again."
    if status == 404:
        return "The calendar server answered 404: the calendar no longer exists at this URL. Copy the export link again."
    if status in (301, 302, 303, 307, 308):
        return f"The calendar server answered {status} (moved). Enter the address it moved to."
    if status == 429:
        return "The calendar server answered 429: too many requests. The next scheduled sync will try again."
    return f"The calendar server answered {status}. The next scheduled sync will try again."


def _apply_events(feed: CalendarFeed, events: list[FeedEvent], now: datetime) -> SyncResult:
    bookings = [e for e in events if not e.blocked]
    seen: set[str] = set()
    created = updated = cancelled = 0
    # One sync of a feed at a time: a second pull of the same feed (the beat and "Sync now", a
    # task redelivered) waits here and then finds the first one's reservations, instead of
    # inserting the same UIDs and failing with "conflicting events".
    locked = list(
        CalendarFeed.objects.select_for_update().filter(pk=feed.pk).values_list("empty_since")
    )
    if not locked:
        return SyncResult(ok=False, error="The calendar was removed.")
    existing = {
        r.external_id: r for r in Reservation.objects.select_for_update().filter(calendar=feed)
    }
    if not events:
        kept = _empty_not_believed(existing.values(), locked[0][0], now)
        if kept:
            return SyncResult(ok=False, empty=True, error=_empty_words(kept))
    for event in bookings:
        seen.add(event.uid)
        status = Reservation.Status.CANCELLED if event.cancelled else Reservation.Status.CONFIRMED
        values = {
            "check_in": event.check_in,
            "check_out": event.check_out,
            "status": status,
            "unit": feed.unit,
            "guest_name": event.guest_name,
            "guest_email": event.guest_email,
            "guest_phone": event.guest_phone,
        }
        row = existing.get(event.uid)
        if row is None:
            row = Reservation(
                property=feed.property,
                calendar=feed,
                external_id=event.uid,
                source=Reservation.Source.ICAL,
                **values,
            )
            row.save()
            created += 1
        elif any(getattr(row, name) != value for name, value in values.items()):
            cancelled += status == Reservation.Status.CANCELLED and row.status != status
            for name, value in values.items():
                setattr(row, name, value)
            row.save()
            updated += 1
        send_code_on_commit(row)
    # A booking that disappeared from the feed (or turned into a block) was cancelled at the source.
    gone = [r for uid, r in existing.items() if uid not in seen and _upcoming(r, now)]
    for row in gone:
        row.status = Reservation.Status.CANCELLED
        row.save(update_fields=["status", "updated_at"])
    cancelled += len(gone)
    return SyncResult(
        ok=True,
        bookings=len(bookings),
        blocked=len(events) - len(bookings),
        created=created,
        updated=updated,
        cancelled=cancelled,
    )


def _upcoming(row: Reservation, now: datetime) -> bool:
    return row.status != Reservation.Status.CANCELLED and row.check_out > now - KEEP_PAST


def _empty_not_believed(
    rows: Iterable[Reservation], empty_since: datetime | None, now: datetime
) -> int:
    """How many upcoming stays an empty answer would cancel, when it is not believed yet (0 when
    it is: there is nothing to cancel, or the calendar has been empty long enough)."""
    if empty_since is not None and now - empty_since >= EMPTY_BELIEVED_AFTER:
        return 0
    return sum(_upcoming(row, now) for row in rows)


def _empty_words(kept: int) -> str:
    hours = EMPTY_BELIEVED_AFTER.total_seconds() / 3600
    return (
        f"The calendar came back empty, but it listed {kept} upcoming "
        f"{'stay' if kept == 1 else 'stays'}: they are kept, as a calendar server in trouble "
        f"sometimes answers empty. If the calendar stays empty for {hours:.0f} hours, they are "
        "cancelled; remove the calendar to cancel them now."
    )


def calendar_feed_sync(
    *, feed_id: int, client: httpx.Client | None = None, now: datetime | None = None
) -> SyncResult:
    """Pull a calendar feed and bring its reservations in line; record the outcome on the feed."""
    now = now or timezone.now()
    feed = CalendarFeed.objects.select_related("property", "unit").get(pk=feed_id)
    policy = StayPolicy.objects.filter(property_id=feed.property_id).first() or StayPolicy()
    try:
        content = _fetch(feed.url, client)
        events = parse_calendar(
            content,
            timezone=feed.property.timezone,
            check_in_at=policy.check_in_time,
            check_out_at=policy.check_out_time,
        )
    except ValidationError as exc:
        result = SyncResult(ok=False, error=" ".join(exc.message_dict.get("url", exc.messages)))
    except _FetchError as exc:
        result = SyncResult(ok=False, error=str(exc))
    except httpx.TimeoutException:
        result = SyncResult(
            ok=False,
            error=f"The calendar server did not answer within {FEED_TIMEOUT_S:.0f} seconds.",
        )
    except httpx.HTTPError as exc:
        result = SyncResult(ok=False, error=outbound.failure_words(exc, "the calendar server"))
    except CalendarError as exc:
        result = SyncResult(
            ok=False, error=f"The URL answered, but {str(exc)[0].lower()}{str(exc)[1:]}"
        )
    else:
        try:
            with transaction.atomic():
                result = _apply_events(feed, events, now)
        except IntegrityError as exc:  # e.g. two events with one UID; nothing was changed
            logger.warning("Calendar %s: %s", feed.pk, exc)
            result = SyncResult(
                ok=False, error="The calendar has conflicting events (the same UID twice)."
            )
    fields: dict[str, Any] = {"last_synced_at": now, "last_error": result.error[:500]}
    if result.ok:
        fields.update(
            state=CalendarFeed.State.OK,
            last_success_at=now,
            failing_since=None,
            empty_since=None,
            bookings_seen=result.bookings,
            blocked_seen=result.blocked,
            cancelled_count=result.cancelled,
        )
    else:
        # The first failure of a run starts its clock; the ones after it keep it.
        fields.update(
            state=CalendarFeed.State.ERROR, failing_since=Coalesce("failing_since", Value(now))
        )
        if result.empty:
            fields.update(empty_since=Coalesce("empty_since", Value(now)))
    CalendarFeed.objects.filter(pk=feed.pk).update(**fields)
    return result


def calendar_feeds_due(*, every: timedelta, now: datetime | None = None) -> list[int]:
    """Return the ids of feeds not synced within `every` (the beat task pulls them), but not
    those whose pull was queued within `every` and may still wait for a busy worker."""
    now = now or timezone.now()
    from django.db.models import Q

    return list(
        CalendarFeed.objects.filter(
            Q(last_synced_at__isnull=True) | Q(last_synced_at__lte=now - every)
        )
        .filter(Q(pull_queued_at__isnull=True) | Q(pull_queued_at__lte=now - every))
        .values_list("pk", flat=True)
    )


def calendar_feeds_queued(feed_ids: list[int], now: datetime | None = None) -> None:
    """Note that the beat queued these feeds' pulls (calendar_feeds_due leaves them out)."""
    CalendarFeed.objects.filter(pk__in=feed_ids).update(pull_queued_at=now or timezone.now())
