"""Proxy configuration and state: the upstream backoffices of a charger, the transactionIds each
party gave one transaction, and transaction messages waiting for an unreachable upstream.

Imported by chargers.models (app label "chargers")."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

upstream_url_validator = RegexValidator(
    r"^wss?://[^\s/?#]+(/[^\s?#]*)?$",
    "Use a ws:// or wss:// URL without query or fragment; the station id is appended to it.",
)


class Backoffice(models.Model):
    """Another central system this charger is also connected to, through us."""

    class Role(models.TextChoices):
        LEADER = "leader", "Leader"
        FOLLOWER = "follower", "Follower"

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        CONNECTING = "connecting", "Connecting"
        DISCONNECTED = "disconnected", "Disconnected"

    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="backoffices"
    )
    name = models.CharField(max_length=100)
    url = models.CharField(
        max_length=400,
        validators=[upstream_url_validator],
        help_text="ws:// or wss:// base URL; the station id is appended as the last path segment.",
    )
    # Basic auth password (username: the station id), sealed (backoffice.sealed): we must send it.
    password_sealed = models.CharField(max_length=600, blank=True, editable=False)
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.FOLLOWER)
    # CSMS-to-charger actions a follower may send through us (a Leader may send any).
    allowed_actions = models.JSONField(default=list, blank=True)
    # Live state, written by the process holding the charger's socket.
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DISCONNECTED)
    last_error = models.CharField(max_length=300, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # Live (non-transaction) messages not passed on because this backoffice took them too slowly
    # (links.LIVE_QUEUE_MAX were already waiting): counted for the Proxy tab, never silent.
    dropped_count = models.PositiveBigIntegerField(default=0)
    dropped_first_at = models.DateTimeField(null=True, blank=True)
    dropped_last_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [
            "charger_id",
            "-role",
            "name",
            "id",
        ]  # "leader" sorts before "follower" descending
        constraints = [
            models.UniqueConstraint(
                fields=["charger"],
                condition=models.Q(role="leader"),
                name="one_leader_backoffice_per_charger",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()}) for {self.charger_id}"

    @property
    def is_leader(self) -> bool:
        return self.role == self.Role.LEADER


class ProxyTransaction(models.Model):
    """The transactionId one party (an upstream, or this system when backoffice is null) gave the
    transaction the charger knows as `charger_transaction_id` (the Leader's, or ours when we
    answered). MeterValues and StopTransaction are rewritten with it for that party."""

    charger = models.ForeignKey("chargers.Charger", on_delete=models.CASCADE, related_name="+")
    backoffice = models.ForeignKey(
        Backoffice, on_delete=models.CASCADE, null=True, blank=True, related_name="transactions"
    )
    charger_transaction_id = models.IntegerField()
    transaction_id = models.IntegerField()
    session = models.ForeignKey(
        "chargers.ChargingSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="proxy_transactions",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["backoffice", "charger_transaction_id"],
                condition=models.Q(backoffice__isnull=False),
                name="proxy_tx_one_per_upstream",
            ),
            models.UniqueConstraint(
                fields=["charger", "charger_transaction_id"],
                condition=models.Q(backoffice__isnull=True),
                name="proxy_tx_one_for_us",
            ),
        ]
        indexes = [models.Index(fields=["charger", "transaction_id"], name="proxy_tx_ours")]

    def __str__(self) -> str:
        who = f"backoffice {self.backoffice_id}" if self.backoffice_id else "this system"
        return f"charger tx {self.charger_transaction_id} = {who} tx {self.transaction_id}"


class ProxyQueuedMessage(models.Model):
    """A transaction message (as the charger sent it) an upstream has not acknowledged yet;
    delivered in id order when it is reachable again."""

    id = models.BigAutoField(primary_key=True)
    backoffice = models.ForeignKey(Backoffice, on_delete=models.CASCADE, related_name="queued")
    action = models.CharField(max_length=64)
    unique_id = models.CharField(max_length=64)
    payload = models.JSONField()
    # For a StartTransaction: the transactionId the charger was given, so the upstream's own id
    # can be mapped to it when the upstream finally answers.
    charger_transaction_id = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.action} {self.unique_id} for backoffice {self.backoffice_id}"
