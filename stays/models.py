"""Units of a property, guests' reservations, calendar feeds, PMS integrations, charger moves."""

from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q

# Access codes are read out and typed on a phone: no 0/O, 1/I/L.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def new_access_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_access_code(typed: str) -> str:
    """Return a typed code the way it is stored: upper case, without spaces or dashes."""
    return "".join(ch for ch in typed.upper() if ch.isalnum())


class Unit(models.Model):
    """A bookable part of a property (apartment, parking space, cabin); chargers may belong to one."""

    class Kind(models.TextChoices):
        APARTMENT = "apartment", "Apartment"
        ROOM = "room", "Room"
        CABIN = "cabin", "Cabin / house"
        PARKING = "parking", "Parking space"
        OTHER = "other", "Other"

    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="units"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.APARTMENT)
    # The unit's id in a PMS or channel (listing id), for hosts' own reference.
    external_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["property_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["property", "name"], name="unique_unit_name")
        ]

    def __str__(self) -> str:
        return self.name


class StayPolicy(models.Model):
    """How a property's reservations give access to its chargers (one row per property)."""

    class Charging(models.TextChoices):
        INCLUDED = "included", "Included in the stay (free, up to a kWh cap)"
        BILLED = "billed", "Billed at the property's rate"

    property = models.OneToOneField(
        "backoffice.Property", on_delete=models.CASCADE, related_name="stay_policy"
    )
    charging = models.CharField(max_length=8, choices=Charging.choices, default=Charging.INCLUDED)
    kwh_cap = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Energy included per stay when charging is included; empty: no cap.",
    )
    grace_before_minutes = models.PositiveIntegerField(
        default=120, help_text="Guests may charge this long before check-in."
    )
    grace_after_minutes = models.PositiveIntegerField(
        default=120, help_text="Guests may charge this long after check-out."
    )
    # Calendar feeds give days (all-day events): these make them times, in the property's time zone.
    check_in_time = models.TimeField(default=time(15), help_text="Usual check-in time (local).")
    check_out_time = models.TimeField(default=time(11), help_text="Usual check-out time (local).")
    shared_chargers = models.BooleanField(
        default=True,
        help_text="Guests may also use the property's shared chargers (those not assigned to a unit).",
    )

    class Meta:
        verbose_name_plural = "stay policies"

    def __str__(self) -> str:
        return f"stay policy of {self.property}"


class CalendarFeed(models.Model):
    """An iCal URL (Airbnb, VRBO, Booking.com, a PMS) whose bookings become reservations."""

    class State(models.TextChoices):
        NEW = "new", "Not synced yet"
        OK = "ok", "Synced"
        ERROR = "error", "Sync failed"

    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="calendar_feeds"
    )
    unit = models.ForeignKey(
        Unit, on_delete=models.CASCADE, null=True, blank=True, related_name="calendar_feeds"
    )
    name = models.CharField(max_length=200)
    url = models.URLField(max_length=1000)
    state = models.CharField(max_length=5, choices=State.choices, default=State.NEW)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # The first failed pull since the last good one (the host reads "failing since").
    failing_since = models.DateTimeField(null=True, blank=True)
    # The first of a run of empty answers while stays were listed: a calendar server in trouble
    # may answer empty, so they are cancelled only once it has stayed empty a while.
    empty_since = models.DateTimeField(null=True, blank=True)
    # When the beat last queued a pull: not queued again while that one may still be waiting.
    pull_queued_at = models.DateTimeField(null=True, blank=True)
    # Counts of the last successful sync.
    bookings_seen = models.PositiveIntegerField(default=0)
    blocked_seen = models.PositiveIntegerField(default=0)
    cancelled_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["property_id", "name"]

    def __str__(self) -> str:
        return self.name


class PmsIntegration(models.Model):
    """An organization's connection to a property-management system."""

    class Vendor(models.TextChoices):
        GUESTY = "guesty", "Guesty"
        HOSPITABLE = "hospitable", "Hospitable"
        TRACK = "track", "Track"

    class State(models.TextChoices):
        NEW = "new", "Not synced yet"
        OK = "ok", "Synced"
        ERROR = "error", "Sync failed"
        BACKING_OFF = "backoff", "Waiting (rate limited)"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="pms_integrations"
    )
    vendor = models.CharField(max_length=10, choices=Vendor.choices)
    name = models.CharField(max_length=200, blank=True)
    # Track: the customer's API host (https://<customer>.trackhs.com); others use the vendor's.
    base_url = models.URLField(max_length=300, blank=True)
    # Fernet token of a JSON object of the vendor's credentials (stays.crypto).
    credentials_encrypted = models.TextField(blank=True, editable=False)
    webhook_key = models.CharField(
        max_length=43, unique=True, default=secrets.token_urlsafe, editable=False
    )
    state = models.CharField(max_length=7, choices=State.choices, default=State.NEW)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # Where the next incremental pull starts (the vendor's updated-since value).
    cursor = models.CharField(max_length=100, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    # When the beat last queued a pull: not queued again while that one may still be waiting.
    pull_queued_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    listings_count = models.PositiveIntegerField(default=0)
    reservations_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization_id", "vendor"]

    def __str__(self) -> str:
        return self.name or self.get_vendor_display()


class Listing(models.Model):
    """A PMS listing and the unit it is mapped to (unmapped listings' reservations are kept, unlinked)."""

    integration = models.ForeignKey(
        PmsIntegration, on_delete=models.CASCADE, related_name="listings"
    )
    external_id = models.CharField(max_length=100)
    name = models.CharField(max_length=300, blank=True)
    unit = models.ForeignKey(
        Unit, on_delete=models.SET_NULL, null=True, blank=True, related_name="listings"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["integration_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration", "external_id"], name="unique_listing_external_id"
            )
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class Reservation(models.Model):
    """A guest's stay; while confirmed and current it grants the unit's (and shared) chargers."""

    class Status(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        TENTATIVE = "tentative", "Tentative"
        CANCELLED = "cancelled", "Cancelled"

    class Source(models.TextChoices):
        MANUAL = "manual", "Entered by the host"
        ICAL = "ical", "Calendar feed"
        GUESTY = "guesty", "Guesty"
        HOSPITABLE = "hospitable", "Hospitable"
        TRACK = "track", "Track"

    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="stay_reservations"
    )
    unit = models.ForeignKey(
        Unit, on_delete=models.SET_NULL, null=True, blank=True, related_name="reservations"
    )
    guest_name = models.CharField(max_length=200, blank=True)
    guest_email = models.EmailField(blank=True)
    guest_phone = models.CharField(max_length=40, blank=True)
    check_in = models.DateTimeField()
    check_out = models.DateTimeField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    # The booking's id at its source (iCal UID, PMS reservation id); unique per feed/integration.
    external_id = models.CharField(max_length=255, blank=True)
    calendar = models.ForeignKey(
        CalendarFeed, on_delete=models.SET_NULL, null=True, blank=True, related_name="reservations"
    )
    integration = models.ForeignKey(
        PmsIntegration,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reservations",
    )
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.CONFIRMED)
    access_code = models.CharField(
        max_length=16, unique=True, default=new_access_code, editable=False
    )
    code_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["check_in", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["calendar", "external_id"],
                condition=Q(calendar__isnull=False),
                name="unique_reservation_per_calendar",
            ),
            models.UniqueConstraint(
                fields=["integration", "external_id"],
                condition=Q(integration__isnull=False),
                name="unique_reservation_per_integration",
            ),
            models.CheckConstraint(
                condition=Q(check_out__gt=models.F("check_in")),
                name="reservation_check_out_after_in",
            ),
        ]
        indexes = [
            models.Index(
                fields=["property", "check_in", "check_out"], name="reservation_property_time"
            )
        ]

    def __str__(self) -> str:
        who = self.guest_name or "guest"
        return f"{who}, {self.check_in:%Y-%m-%d} – {self.check_out:%Y-%m-%d}"

    def window(self, policy: StayPolicy | None) -> tuple[datetime, datetime]:
        """Return (from, until): the stay widened by the property's grace periods."""
        before = timedelta(minutes=policy.grace_before_minutes if policy else 120)
        after = timedelta(minutes=policy.grace_after_minutes if policy else 120)
        return self.check_in - before, self.check_out + after


class ChargerPlacement(models.Model):
    """Log of a charger moved between properties/units: who, from, to, when.

    The charger is referenced by id and station id (chargers sits above stays in the layers).
    """

    charger_id = models.BigIntegerField(db_index=True)
    station_id = models.CharField(max_length=48)
    from_property = models.ForeignKey(
        "backoffice.Property", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_unit = models.ForeignKey(
        Unit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_property = models.ForeignKey(
        "backoffice.Property", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_unit = models.ForeignKey(
        Unit, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.station_id}: {self.from_property} / {self.from_unit} → {self.to_property} / {self.to_unit}"
