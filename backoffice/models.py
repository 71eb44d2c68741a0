"""Organizations (site hosts / operators), their members and their properties."""

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone, e.g. Europe/Amsterdam.")


def validate_currency(value: str) -> None:
    if len(value) != 3 or not value.isalpha() or not value.isupper():
        raise ValidationError("Use a three-letter ISO 4217 code such as EUR or USD.")


class Organization(models.Model):
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # A charger whose transaction measurands leave out Energy.Active.Import.Register is set to
    # include it (2.0.1 SetVariables, 1.6 ChangeConfiguration): sessions without a reading have
    # no known energy. A host who manages the chargers' configuration elsewhere turns it off.
    configure_energy_reporting = models.BooleanField(
        default=True,
        help_text="Set chargers to report the energy meter in their sessions when they do not.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_write(self) -> bool:
        """The write rule: owners and managers change their organization's objects; viewers
        only read. Every portal view, API permission and form choice asks this (through
        backoffice.tenancy.can_write and writable_organization_ids), nothing else."""
        return self.role in (self.Role.OWNER, self.Role.MANAGER)

    @property
    def is_owner(self) -> bool:
        return self.role == self.Role.OWNER


class Property(models.Model):
    """A site where chargers stand. Hosts call these Locations in the portal."""

    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="properties"
    )
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=400, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    currency = models.CharField(max_length=3, default="EUR", validators=[validate_currency])
    # Location access (seed 002 "Locations": public (roaming) / guest charging).
    roaming_enabled = models.BooleanField(
        default=True,
        help_text="Accept cards and apps of other networks (roaming) at public chargers.",
    )
    guest_charging_enabled = models.BooleanField(
        default=True, help_text="Let guests without an account charge by scanning the QR code."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "properties"

    def __str__(self) -> str:
        return self.name


class SchedulerLease(models.Model):
    """Which process runs a deployment-wide job (the in-process beat, backoffice.beat), and until
    when. The holder renews it well before `expires_at`; once it has expired another process may
    take it over."""

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class IdempotentRequest(models.Model):
    """An API write sent with an `Idempotency-Key` header (backoffice/idempotency.py): what it
    was (a digest of method, path and body) and, once answered, the answer, which a retry with
    the same key gets again instead of a second write. Kept a day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_index=True)
    # Empty while the first request runs.
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    location = models.CharField(max_length=2000, blank=True)
    body = models.BinaryField(default=b"")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_user_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'running'})"


class PendingTask(models.Model):
    """A Celery task the broker did not take when it was queued (Redis down or restarting;
    backoffice/queueing.py): sent again by `backoffice.pending_tasks_send` once the broker
    answers, so a job queued from a request is late, never lost."""

    name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveIntegerField(default=1)
    # When the task was to run (queued with a countdown): sent with this ETA, at once if past.
    eta = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}{tuple(self.args)!r}"
