"""A guest's charging session from the QR page: payment hold, guest token and outcome."""

import secrets

from django.db import models


def new_key() -> str:
    # 32 url-safe characters (192 bits): the guest's only credential, never a sequential id.
    return secrets.token_urlsafe(24)


class GuestSession(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Paying"
        STARTING = "starting", "Waiting for the car"
        CHARGING = "charging", "Charging"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Did not start"

    key = models.CharField(max_length=64, unique=True, default=new_key, editable=False)
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.PROTECT, related_name="guest_sessions"
    )
    connector_id = models.PositiveIntegerField()
    email = models.EmailField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    # Why it did not start (or was cancelled), in the guest's words.
    failure_code = models.CharField(max_length=30, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    token = models.ForeignKey(
        "authorization.Token",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="guest_sessions",
    )
    id_tag = models.CharField(max_length=20, blank=True)
    charging_session = models.OneToOneField(
        "chargers.ChargingSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="guest_session",
    )
    # billing.Payment, referenced by id so guest never needs billing to import (contract in docs/guest.md).
    payment_id = models.BigIntegerField(null=True, blank=True)
    payment_reference = models.CharField(max_length=100, blank=True)
    amount_held = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # Where links in emails point (the site the guest used, unless SITE_URL is set).
    site_url = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the processor confirmed the hold; whoever sets it (return page or webhook) starts.
    paid_at = models.DateTimeField(null=True, blank=True)
    start_requested_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    receipt_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "start_requested_at"], name="guest_state_time"),
            models.Index(fields=["charger", "connector_id", "state"], name="guest_connector_state"),
            models.Index(fields=["id_tag"], name="guest_idtag"),
        ]

    def __str__(self) -> str:
        return f"guest {self.pk} on {self.charger_id}/{self.connector_id}: {self.state}"

    @property
    def is_open(self) -> bool:
        return self.state in (self.State.PENDING, self.State.STARTING, self.State.CHARGING)
