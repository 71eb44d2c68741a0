"""Site power: a property's budget, its circuits, each connector's electrical data and the
allocation in force (docs/power.md)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class SiteBudget(models.Model):
    """What a property's grid connection may give its chargers, per phase."""

    class Policy(models.TextChoices):
        EQUAL = "equal", "Equal share"
        PRIORITY = "priority", "Priority (stay guests, paying guests, employees, fleet)"

    property = models.OneToOneField(
        "backoffice.Property", on_delete=models.CASCADE, related_name="power_budget"
    )
    limit_a = models.DecimalField(
        max_digits=7,
        decimal_places=1,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Amperes per phase the chargers may draw together (the main fuse).",
    )
    phases = models.PositiveSmallIntegerField(
        default=3, choices=[(1, "Single-phase"), (3, "Three-phase")]
    )
    voltage = models.PositiveIntegerField(
        default=230,
        validators=[MinValueValidator(100), MaxValueValidator(480)],
        help_text="Phase-to-neutral voltage.",
    )
    policy = models.CharField(max_length=10, choices=Policy.choices, default=Policy.EQUAL)
    # Time-of-day limits in the property's timezone:
    # [{"start": "HH:MM", "end": "HH:MM", "limit_a": "40.0", "days": [0..6]}] (power.schedule).
    schedule = models.JSONField(default=list, blank=True)
    # The live budget posted by a building meter: used while fresh (until live_expires_at).
    live_limit_a = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    live_at = models.DateTimeField(null=True, blank=True)
    live_expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Recompute soon (a session started or stopped); the sweep clears it (power.services).
    dirty_at = models.DateTimeField(null=True, blank=True, editable=False)
    computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The enforcement pass that has the site's turn, in any process, and until when it may hold
    # it (power.enforcement.site_pass): one pass per site at a time.
    pass_owner = models.CharField(max_length=32, blank=True, default="", editable=False)
    pass_until = models.DateTimeField(null=True, blank=True, editable=False)
    # How many turns were taken: a pass that read its plan before taking the turn sends it only
    # if no other pass took one in between (the count it read is still the count).
    passes = models.PositiveBigIntegerField(default=0, editable=False)

    def __str__(self) -> str:
        return f"{self.property}: {self.limit_a} A × {self.phases}"


class Circuit(models.Model):
    """A sub-panel inside a property (a tree under the main connection)."""

    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="power_circuits"
    )
    name = models.CharField(max_length=100)
    limit_a = models.DecimalField(
        max_digits=7, decimal_places=1, validators=[MinValueValidator(Decimal(0))]
    )
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["property", "name"], name="unique_circuit_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.limit_a} A)"


class ConnectorPower(models.Model):
    """A connector's electrical data: phases, rotation, current range and circuit."""

    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="connector_power"
    )
    connector_id = models.PositiveIntegerField()
    phases = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(3)]
    )
    # OCPP PhaseRotation: which site phases (R, S, T = L1, L2, L3) the connector's L1, L2, L3 are.
    phase_rotation = models.CharField(max_length=3, default="RST")
    min_a = models.DecimalField(max_digits=7, decimal_places=1, default=Decimal(6))
    max_a = models.DecimalField(max_digits=7, decimal_places=1, default=Decimal(32))
    circuit = models.ForeignKey(
        Circuit, on_delete=models.SET_NULL, null=True, blank=True, related_name="connectors"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["charger", "connector_id"], name="unique_connector_power"
            )
        ]

    def __str__(self) -> str:
        return f"{self.charger_id}/{self.connector_id}: {self.min_a}–{self.max_a} A"


class ConnectorAllocation(models.Model):
    """The limit a connector's session may draw now, and what the charger made of it."""

    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="power_allocations"
    )
    connector_id = models.PositiveIntegerField()
    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="power_allocations"
    )
    session = models.ForeignKey(
        "chargers.ChargingSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="power_allocations",
    )
    limit_a = models.DecimalField(max_digits=7, decimal_places=1)
    measured_a = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    waiting = models.BooleanField(default=False)
    reason = models.CharField(max_length=200, blank=True)
    priority_class = models.CharField(max_length=20, blank=True)
    # Give-back state (power.allocation): drawing less than its limit since; capped at its draw.
    low_since = models.DateTimeField(null=True, blank=True)
    given_back = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Filled by power.enforcement: what the charger accepted, or that it refused.
    applied_limit_a = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    refused = models.BooleanField(default=False)
    refused_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["charger_id", "connector_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charger", "connector_id"], name="unique_connector_allocation"
            )
        ]
        indexes = [models.Index(fields=["property"], name="allocation_property")]

    def __str__(self) -> str:
        state = "waiting" if self.waiting else f"{self.limit_a} A"
        return f"{self.charger_id}/{self.connector_id}: {state}"


class AllocationSample(models.Model):
    """A point of the Power page's chart: the site's total limit and draw at a moment."""

    id = models.BigAutoField(primary_key=True)
    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="power_samples"
    )
    at = models.DateTimeField()
    budget_a = models.DecimalField(max_digits=7, decimal_places=1)
    allocated_a = models.DecimalField(max_digits=7, decimal_places=1)
    measured_a = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    sessions = models.PositiveIntegerField(default=0)
    waiting = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at"]
        indexes = [models.Index(fields=["property", "at"], name="power_sample_time")]

    def __str__(self) -> str:
        return f"{self.property_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.allocated_a} A"


class WaitingPeriod(models.Model):
    """A stretch of time a session waited for power at 0 A (no idle fee runs meanwhile)."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(
        "chargers.ChargingSession", on_delete=models.CASCADE, related_name="power_waits"
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at"]
        indexes = [models.Index(fields=["session", "started_at"], name="power_wait_session")]

    def __str__(self) -> str:
        return f"session {self.session_id} waited from {self.started_at:%H:%M:%S}"


class Uncontrollable(models.Model):
    """A connector that refused its power limit (connector 0: the charger refused its safe
    default or leases, so all of its connectors). Kept across sessions and connections until it
    accepts a limit again: the allocation reserves its maximum whenever it could draw
    (power.services.reservations, docs/power.md)."""

    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="power_refusals"
    )
    connector_id = models.PositiveIntegerField()
    since = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["charger_id", "connector_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charger", "connector_id"], name="unique_uncontrollable_connector"
            )
        ]

    def __str__(self) -> str:
        return f"{self.charger_id}/{self.connector_id} refuses limits since {self.since:%Y-%m-%d %H:%M}"
