"""Chargers, their connectors, the OCPP message log, charging sessions and commands."""

import builtins
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from authorization.decisions import license_day
from chargers.ocpp.energy import METER_DIGITS, WH_PLACES
from chargers.security import credentials

# OCPP-J 1.6 §3.1.1 / 2.0.1 identifierString: printable, no colon (it breaks Basic auth), at most 48.
station_id_validator = RegexValidator(
    r"^[A-Za-z0-9*\-_=+|@.]{1,48}$",
    "Station IDs use letters, digits and * - _ = + | @ . (at most 48 characters, no spaces).",
)


# OCPP passwords are machine keys of 16+ bytes (security whitepaper §7.2), not human
# passwords: see chargers/security/credentials.py for how they are hashed.
OCPP_PASSWORD_MIN_LENGTH = credentials.MIN_PASSWORD_LENGTH


class Charger(models.Model):
    class AccessMode(models.TextChoices):
        PUBLIC = "public", "Public (roaming and guests)"
        GUEST = "guest", "Guest charging (QR code)"
        PRIVATE = "private", "Private (own cards only)"

    class Ownership(models.TextChoices):
        NETWORK = "network", "Network charger"
        PRIVATE_OWNER = "private_owner", "Privately owned"

    class Registration(models.TextChoices):
        ACCEPTED = "Accepted", "Accepted"
        PENDING = "Pending", "Pending"
        REJECTED = "Rejected", "Rejected"

    class SecurityProfile(models.IntegerChoices):
        # OCPP 1.6 security whitepaper §2.1.
        NONE = 0, "0 – no authentication (unsafe)"
        BASIC_AUTH = 1, "1 – password (HTTP Basic) over ws or wss"
        TLS_BASIC_AUTH = 2, "2 – password (HTTP Basic) over TLS"
        TLS_CLIENT_CERTIFICATE = 3, "3 – TLS client certificate"

    class OcppVersion(models.TextChoices):
        V16 = "1.6", "OCPP 1.6J"
        V201 = "2.0.1", "OCPP 2.0.1"
        V21 = "2.1", "OCPP 2.1"

    station_id = models.CharField(
        max_length=48,
        unique=True,
        validators=[station_id_validator],
        help_text="The OCPP identity in the websocket URL. Case-sensitive.",
    )
    property = models.ForeignKey(
        "backoffice.Property",
        on_delete=models.PROTECT,
        related_name="chargers",
        null=True,
        blank=True,
    )
    # The unit (apartment, parking space) of its property it serves; empty: shared by the property.
    # Always a unit of `property` (stays' placement service and the API check it).
    unit = models.ForeignKey(
        "stays.Unit", on_delete=models.SET_NULL, related_name="chargers", null=True, blank=True
    )
    name = models.CharField(max_length=200, blank=True)
    vendor = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=50, blank=True)
    serial_number = models.CharField(max_length=50, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    access_mode = models.CharField(
        max_length=8, choices=AccessMode.choices, default=AccessMode.PUBLIC
    )
    ownership = models.CharField(
        max_length=13, choices=Ownership.choices, default=Ownership.NETWORK
    )
    # None = follow the property's setting.
    roaming_enabled = models.BooleanField(null=True, blank=True)
    guest_charging_enabled = models.BooleanField(null=True, blank=True)
    token_groups = models.ManyToManyField(
        "authorization.TokenGroup",
        related_name="chargers",
        blank=True,
        help_text="When set, only cards in these local token groups may charge here.",
    )
    license_valid_until = models.DateField(null=True, blank=True)
    out_of_order = models.BooleanField(default=False)
    ocpp_password_hash = models.CharField(max_length=256, blank=True, editable=False)
    registration_status = models.CharField(
        max_length=8, choices=Registration.choices, default=Registration.ACCEPTED
    )
    heartbeat_interval = models.PositiveIntegerField(default=60)
    # Connection state: set by the websocket consumer of whichever process holds the socket.
    connection_id = models.CharField(max_length=36, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_boot_at = models.DateTimeField(null=True, blank=True)
    # Which server process holds the socket (OcppServerProcess.key): a restart or crash of that
    # process clears the connection even when its disconnect was never recorded.
    connection_process = models.CharField(max_length=64, blank=True)
    # Two clients fighting over one station id (each new socket replaces the other).
    identity_conflict_at = models.DateTimeField(null=True, blank=True)
    identity_conflict_replacements = models.PositiveIntegerField(default=0)
    # Transaction messages accepted although they broke the OCPP schema (see docs/ocpp.md).
    schema_violations = models.PositiveIntegerField(default=0)
    # Readings no charger can report (chargers.ocpp.readings), kept out of power and energy.
    implausible_readings = models.PositiveIntegerField(default=0, editable=False)
    implausible_reading = models.CharField(max_length=200, blank=True, editable=False)
    implausible_reading_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The least a connection must prove (A00.FR.002: a weaker one is refused). 0 only when staff
    # set it; docs/security.md.
    security_profile = models.PositiveSmallIntegerField(
        choices=SecurityProfile.choices, default=SecurityProfile.BASIC_AUTH
    )
    # A higher profile the charger accepted (ChangeConfiguration SecurityProfile): it becomes
    # security_profile on the first connection that meets it, never lower again (A05.FR.08/09).
    security_profile_pending = models.PositiveSmallIntegerField(
        choices=SecurityProfile.choices, null=True, blank=True
    )
    ocpp_password_set_at = models.DateTimeField(null=True, blank=True)
    # The OCPP version of its last connection, negotiated by websocket subprotocol (docs/ocpp.md).
    ocpp_version = models.CharField(
        max_length=5, choices=OcppVersion.choices, default=OcppVersion.V16
    )
    # Proxy (chargers.proxy, docs/proxy.md): set while upstream backoffices are configured, so a
    # charger without any costs its connection nothing; how long the charger waits for a Leader.
    proxied = models.BooleanField(default=False, editable=False)
    proxy_leader_timeout_s = models.PositiveSmallIntegerField(
        default=10,
        help_text="Seconds to wait for the Leader backoffice before this system answers in its place.",
    )
    # OCPP 1.6: when it was checked (GetConfiguration) and, where needed, set to include the energy
    # register in its sampled and stop-transaction data (chargers.handlers.v16). Checked once per
    # vendor/model/firmware (`energy_reporting_checked_for`, chargers.plumbing.follow_ups):
    # a reconnect that changes nothing asks nothing; a firmware update is checked again. What
    # keeps it from reporting (empty: nothing) is kept for support.
    energy_reporting_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    energy_reporting_checked_for = models.CharField(
        max_length=160, blank=True, default="", editable=False
    )
    energy_reporting_problems = models.TextField(blank=True, default="", editable=False)
    # The charging-rate units the charger declares it takes in a profile ("A", "W" or "A,W"; ""
    # unknown): 1.6 ChargingScheduleAllowedChargingRateUnit, 2.0.1 SmartChargingCtrlr.RateUnit.
    # Read after boot and whenever it reports the key (docs/power.md, "Units").
    rate_units = models.CharField(max_length=8, blank=True, default="", editable=False)
    # The unit it was found to take once a profile in the other unit was rejected and retried
    # ("A" / "W"; "" not tried). Set once, so a model is retried once, not every time.
    rate_unit_learnt = models.CharField(max_length=1, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["station_id"]

    def __str__(self) -> str:
        return self.station_id

    # 2.0.1 and 2.1 speak the same domain words (device model, EVSEs, TransactionEvent): a 2.1
    # charger is served by the 2.0.1 handlers (chargers.handlers.v21), and gets 2.0.1 commands.
    V2_VERSIONS = frozenset({OcppVersion.V201, OcppVersion.V21})

    def speaks_v2(self) -> bool:
        """OCPP 2.0.1 or 2.1: the 2.0.1 messages, commands and device model."""
        return self.ocpp_version in self.V2_VERSIONS

    def set_ocpp_password(self, raw: str | bytes | None) -> None:
        """Store a salted hash of the charger's Basic-auth password (never the password)."""
        self.ocpp_password_hash = credentials.make_hash(raw) if raw else ""
        self.ocpp_password_set_at = timezone.now() if raw else None

    def check_ocpp_password(self, raw: str | bytes) -> bool:
        """Return whether `raw` (bytes as sent, or text) is this charger's password."""
        return credentials.verify(self.ocpp_password_hash, raw)

    def is_online(self, now: datetime | None = None) -> bool:
        """Connected now, and heard from within two heartbeat intervals (a frame, or a pong to our
        websocket ping: chargers/connections/uvicorn_protocol.py)."""
        if not self.connection_id or not self.last_seen_at:
            return False
        now = now or timezone.now()
        return self.last_seen_at >= now - timedelta(seconds=2 * max(self.heartbeat_interval, 1))

    @builtins.property  # the field `property` shadows the builtin in this class body
    def status(self) -> str:
        return "online" if self.is_online() else "offline"

    def license_today(self, now: datetime | None = None) -> date:
        """Today at the charger's location: the day its license must be valid on, as the
        authorization decision asks it (`authorization.decisions.license_day`)."""
        place = self.property if self.property_id else None
        return license_day(now or timezone.now(), place.timezone if place is not None else "UTC")

    def license_active(self, today: date | None = None) -> bool:
        today = today or self.license_today()
        return self.license_valid_until is not None and self.license_valid_until >= today

    @builtins.property
    def effective_roaming_enabled(self) -> bool:
        if self.access_mode != self.AccessMode.PUBLIC:
            return False
        if self.roaming_enabled is not None:
            return self.roaming_enabled
        prop = self.property if self.property_id else None
        return prop.roaming_enabled if prop is not None else False

    @builtins.property
    def effective_guest_charging_enabled(self) -> bool:
        if self.access_mode == self.AccessMode.PRIVATE:
            return False
        if self.guest_charging_enabled is not None:
            return self.guest_charging_enabled
        prop = self.property if self.property_id else None
        return prop.guest_charging_enabled if prop is not None else False

    @builtins.property
    def organization_id(self) -> int | None:
        prop = self.property if self.property_id else None
        return prop.organization_id if prop is not None else None


class Connector(models.Model):
    """A charging port. connector_id 0 is the charger as a whole (OCPP 1.6 §4.9)."""

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.PositiveIntegerField()
    status = models.CharField(max_length=20, default="Unavailable")
    error_code = models.CharField(max_length=30, default="NoError")
    vendor_error_code = models.CharField(max_length=50, blank=True)
    info = models.CharField(max_length=50, blank=True)
    status_timestamp = models.DateTimeField(
        null=True, blank=True, help_text="As reported by the charger."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["charger", "connector_id"]
        constraints = [
            models.UniqueConstraint(fields=["charger", "connector_id"], name="unique_connector")
        ]

    def __str__(self) -> str:
        return f"{self.charger_id}/{self.connector_id}"


# The log's fleet-wide action index leaves out the two commonest frames (OcppMessage.Meta).
FREQUENT_ACTIONS = ("Heartbeat", "MeterValues")
RARE = ~models.Q(action=FREQUENT_ACTIONS[0]) & ~models.Q(action=FREQUENT_ACTIONS[1])


class OcppMessage(models.Model):
    """Every OCPP-J frame in both directions, as sent."""

    class Direction(models.TextChoices):
        IN = "in", "From charger"
        OUT = "out", "To charger"

    class MessageType(models.IntegerChoices):
        CALL = 2, "CALL"
        CALLRESULT = 3, "CALLRESULT"
        CALLERROR = 4, "CALLERROR"
        CALLRESULTERROR = 5, "CALLRESULTERROR"  # OCPP-J 2.1
        SEND = 6, "SEND"  # OCPP-J 2.1: never answered

    id = models.BigAutoField(primary_key=True)
    charger = models.ForeignKey(
        Charger, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    timestamp = models.DateTimeField(default=timezone.now)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    message_type = models.PositiveSmallIntegerField(choices=MessageType.choices, null=True)
    unique_id = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, blank=True)
    # Pulled out of Authorize / StartTransaction / RemoteStart payloads so "search an idTag" is an index hit.
    id_tag = models.CharField(max_length=36, blank=True)
    payload = models.JSONField(null=True)
    # The frame exactly as received when it was not valid JSON, or (escaped=True) the whole
    # frame JSON-escaped when it held text PostgreSQL cannot store (NUL, lone surrogates, NaN).
    raw = models.TextField(blank=True)
    escaped = models.BooleanField(default=False)
    # A transaction message accepted although it broke the schema: what was wrong.
    violation = models.CharField(max_length=500, blank=True)
    # Set for frames between us and an upstream backoffice (the proxy), with direction "out" =
    # to that backoffice; null for the charger's own link. No constraint: the log outlives it.
    backoffice = models.ForeignKey(
        "chargers.Backoffice",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["charger", "-id"], name="ocppmsg_charger_latest"),
            models.Index(fields=["charger", "action", "-id"], name="ocppmsg_charger_action"),
            # Only the rows that carry an idTag (Authorize, starts, stops): most frames have
            # none, and every index costs each logged frame (docs/performance.md, session 71).
            models.Index(
                fields=["charger", "id_tag", "-id"],
                name="ocppmsg_charger_tagged",
                condition=~models.Q(id_tag=""),
            ),
            # Admin search by idTag across chargers (only the few rows that carry one).
            models.Index(
                fields=["id_tag", "-id"], name="ocppmsg_idtag", condition=~models.Q(id_tag="")
            ),
            # An action across the fleet (admin). Heartbeats and meter values, the commonest
            # frames, are left out: their newest rows are found at once along the primary key,
            # and leaving them out spares most logged frames this index's cost.
            models.Index(fields=["action", "-id"], name="ocppmsg_action_rare", condition=RARE),
            # No timestamp index: retention reads along the primary key (messagelog/retention.py).
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.get_message_type_display()} {self.action} {self.unique_id}"


class ChargingSession(models.Model):
    """A charging transaction as the charger reported it."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Charging"
        COMPLETED = "completed", "Completed"

    charger = models.ForeignKey(Charger, on_delete=models.PROTECT, related_name="sessions")
    connector_id = models.PositiveIntegerField()
    transaction_id = models.IntegerField(
        unique=True, help_text="Issued by us; fits a signed 32-bit integer."
    )
    id_tag = models.CharField(max_length=36)
    token = models.ForeignKey(
        "authorization.Token",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
    )
    id_tag_status = models.CharField(
        max_length=12, default="Accepted", help_text="idTagInfo status we answered."
    )
    started_at = models.DateTimeField(help_text="Charger's clock.")
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="Charger's clock.")
    # Exact registers in Wh (chargers.ocpp.energy: decimals kept, kWh converted without rounding).
    # meter_start_wh is None for a 2.0.1 transaction no event of which carried an energy
    # reading (yet): finished so, its energy is unknown ("no reading reported"), never 0.
    meter_start_wh = models.DecimalField(
        max_digits=METER_DIGITS, decimal_places=WH_PLACES, null=True, blank=True
    )
    meter_stop_wh = models.DecimalField(
        max_digits=METER_DIGITS, decimal_places=WH_PLACES, null=True, blank=True
    )
    # Signed end - signed start (Wh) when both verify (metering.services.session_signed_ingest
    # records it): then it is the session's energy everywhere, as billing prices it.
    signed_energy_wh = models.DecimalField(
        max_digits=METER_DIGITS, decimal_places=WH_PLACES, null=True, blank=True
    )
    stop_reason = models.CharField(max_length=20, blank=True)
    stop_id_tag = models.CharField(max_length=36, blank=True)
    reservation_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    received_start_at = models.DateTimeField(auto_now_add=True)
    received_stop_at = models.DateTimeField(null=True, blank=True)
    transaction_data = models.JSONField(null=True, blank=True)
    # OCPP 2.0.1: the charger names the transaction (transactionInfo.transactionId, a string);
    # transaction_id above is still ours, so everything keyed on it works for both versions.
    ocpp_transaction_id = models.CharField(max_length=36, blank=True, default="")
    # The phases the car draws on as the charger reported them (2.0.1 numberOfPhasesUsed): the
    # numberPhases of its power limit (docs/power.md, "Units"). None: not reported.
    phases_used = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    remote_start_id = models.IntegerField(null=True, blank=True)
    # 2.0.1 events numbered after the Ended (by seqNo): kept in Logs, never counted; the session
    # records that they came (chargers.sessions.v201_transactions.fold).
    late_events = models.PositiveIntegerField(default=0)
    late_event_at = models.DateTimeField(null=True, blank=True, help_text="When the last came.")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # A 1.6 StartTransaction whose reply was lost comes again with the same facts. A 2.0.1
            # transaction is named by the charger (the next constraint): two of them may start
            # alike (a charger whose clock or meter is stuck) and are still two.
            models.UniqueConstraint(
                fields=["charger", "connector_id", "id_tag", "meter_start_wh", "started_at"],
                condition=models.Q(ocpp_transaction_id=""),
                name="unique_session_start",
            ),
            models.UniqueConstraint(
                fields=["charger", "ocpp_transaction_id"],
                condition=~models.Q(ocpp_transaction_id=""),
                name="unique_session_ocpp_transaction",
            ),
        ]
        indexes = [
            models.Index(fields=["charger", "-started_at"], name="session_charger_time"),
            # Newest first across a host's chargers (Sessions list, dashboard): walked, not sorted.
            models.Index(fields=["-started_at", "-id"], name="session_time"),
            models.Index(fields=["status", "charger"], name="session_status"),
            models.Index(fields=["id_tag"], name="session_idtag"),
        ]

    def __str__(self) -> str:
        # What support searches by (issue 34): the station id and connector, then when.
        started = f" {self.started_at:%Y-%m-%d %H:%M} UTC" if self.started_at else ""
        return f"{self.charger.station_id} #{self.connector_id}{started}"

    @property
    def energy_wh(self) -> Decimal | None:
        """Exact Wh delivered; None while running or when no reading was reported. Where the
        meter's signed start and end verify, their difference (what billing prices)."""
        if self.signed_energy_wh is not None and self.status == self.Status.COMPLETED:
            return max(Decimal(self.signed_energy_wh), Decimal(0))
        if self.meter_stop_wh is None or self.meter_start_wh is None:
            return None
        return max(Decimal(self.meter_stop_wh) - Decimal(self.meter_start_wh), Decimal(0))

    @staticmethod
    def energy_sql() -> Any:
        """`energy_wh` in SQL, for sums: the signed energy where it verifies, else measured, never
        below 0 (a 1.6 meterStop below its meterStart is stored as sent; a sum must not lose it)."""
        from django.db.models import DecimalField, F, Value
        from django.db.models.functions import Coalesce, Greatest

        energy = Coalesce(F("signed_energy_wh"), F("meter_stop_wh") - F("meter_start_wh"))
        # GREATEST(NULL, 0) is 0 on PostgreSQL and NULL on SQLite: the same to a sum.
        return Greatest(
            energy,
            Value(Decimal(0)),
            output_field=DecimalField(max_digits=METER_DIGITS, decimal_places=WH_PLACES),
        )

    @property
    def no_reading(self) -> bool:
        """Finished without any energy reading from the charger: its energy is unknown."""
        return self.status == self.Status.COMPLETED and self.energy_wh is None


class MeterValue(models.Model):
    """One sampled value of a MeterValues or StopTransaction.transactionData entry."""

    id = models.BigAutoField(primary_key=True)
    charger = models.ForeignKey(
        Charger, on_delete=models.CASCADE, related_name="meter_values", db_index=False
    )
    session = models.ForeignKey(
        ChargingSession,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="meter_values",
    )
    connector_id = models.PositiveIntegerField()
    timestamp = models.DateTimeField()
    measurand = models.CharField(max_length=50, default="Energy.Active.Import.Register")
    phase = models.CharField(max_length=10, blank=True)
    unit = models.CharField(max_length=10, blank=True)
    context = models.CharField(max_length=20, blank=True)
    location = models.CharField(max_length=10, blank=True)
    value = models.DecimalField(max_digits=20, decimal_places=4, null=True)
    raw_value = models.CharField(
        max_length=100, blank=True, help_text="As sent, when not a plain number."
    )

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["session", "timestamp"], name="meter_session_time"),
            models.Index(fields=["charger", "-timestamp"], name="meter_charger_time"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.measurand} {self.raw_value} {self.unit} at {self.timestamp:%Y-%m-%d %H:%M:%S}"
        )


class SignedSample(models.Model):
    """A signed sampled value (format SignedData) of a 1.6 MeterValues, kept whole (MeterValue
    keeps 100 characters of a value): the signed start reading a 1.6 charger sends right after
    StartTransaction (OCA "Signed Meter Values in OCPP" 3.1.2), or a signed intermediate one.
    Stored before the MeterValues is answered; metering reads and verifies it. Signed values of
    StopTransaction (ChargingSession.transaction_data) and of 2.0.1 (TransactionEvent.payload)
    are already kept whole where they arrive."""

    id = models.BigAutoField(primary_key=True)
    charger = models.ForeignKey(
        Charger, on_delete=models.CASCADE, related_name="signed_samples", db_index=False
    )
    connector_id = models.PositiveIntegerField()
    transaction_id = models.IntegerField(null=True, blank=True)
    timestamp = models.DateTimeField(help_text="Charger's clock.")
    context = models.CharField(max_length=20, blank=True)
    measurand = models.CharField(max_length=50, blank=True)
    value = models.TextField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["charger", "transaction_id"], name="signed_sample_transaction")
        ]

    def __str__(self) -> str:
        return f"signed {self.context or 'sample'} of {self.transaction_id} on {self.charger_id}"


class OrphanStop(models.Model):
    """A StopTransaction for a transaction we never saw start: acknowledged and kept for review."""

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="orphan_stops")
    transaction_id = models.IntegerField()
    id_tag = models.CharField(max_length=36, blank=True)
    stopped_at = models.DateTimeField()
    meter_stop_wh = models.DecimalField(max_digits=METER_DIGITS, decimal_places=WH_PLACES)
    reason = models.CharField(max_length=20, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    reviewed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["charger", "transaction_id", "stopped_at", "meter_stop_wh"],
                name="unique_orphan_stop",
            )
        ]

    def __str__(self) -> str:
        return f"orphan stop of tx {self.transaction_id} on {self.charger_id}"


class Command(models.Model):
    """A CALL we sent (or tried to send) to a charger, with its outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ANSWERED = "answered", "Answered"
        ERROR = "error", "CALLERROR"
        TIMEOUT = "timeout", "No answer in time"
        OFFLINE = "offline", "Charger offline"

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="commands")
    action = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    unique_id = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=20, default="api")
    # What the command means, in words, from the part of the system that sent it (a power
    # limit: "Connector 1 limited to 10.6 A by the site budget"); shown instead of the payload.
    note = models.CharField(max_length=200, blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The success KPIs read an organization's remote starts of a period
            # (reliability.kpi_selectors), a slice at a time.
            models.Index(fields=["charger", "action", "created_at"], name="command_action_time"),
        ]

    def __str__(self) -> str:
        return f"{self.action} to {self.charger_id}: {self.status}"

    @property
    def result_status(self) -> str:
        """The status field of the charger's answer (Accepted, Rejected, ...), if any."""
        if isinstance(self.response, dict):
            return str(self.response.get("status", ""))
        return ""


class StatusEvent(models.Model):
    """A StatusNotification as reported, kept for idle-time billing and support history."""

    id = models.BigAutoField(primary_key=True)
    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="status_events")
    connector_id = models.PositiveIntegerField()
    status = models.CharField(max_length=20)
    error_code = models.CharField(max_length=30, default="NoError")
    timestamp = models.DateTimeField(help_text="Charger's clock, or receive time if it sent none.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(
                fields=["charger", "connector_id", "timestamp"], name="statusevent_conn_time"
            )
        ]

    def __str__(self) -> str:
        return f"{self.charger_id}/{self.connector_id} {self.status} at {self.timestamp:%Y-%m-%d %H:%M:%S}"


class OcppDeadLetter(models.Model):
    """A log row the database refused even after cleaning: kept here, never retried forever."""

    id = models.BigAutoField(primary_key=True)
    charger_id = models.BigIntegerField(
        null=True, blank=True, help_text="Not a foreign key: the row may name anything."
    )
    received_at = models.DateTimeField()
    kind = models.CharField(max_length=20, default="message")
    error = models.TextField()
    # repr() of the row, ASCII only, so it is always storable.
    row = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"dead letter {self.pk} ({self.kind}) of charger {self.charger_id}"


class OcppServerProcess(models.Model):
    """A running server process holding charger sockets; its heartbeat proves it is alive."""

    key = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid}"


class JournalEntryApplied(models.Model):
    """Marks a journal entry replayed into the database, in the same transaction as its effect,
    so a replay interrupted at any point applies every entry exactly once."""

    journal = models.CharField(max_length=200)
    seq = models.BigIntegerField()
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journal", "seq"], name="unique_journal_entry")
        ]

    def __str__(self) -> str:
        return f"{self.journal}#{self.seq}"


# -- Security: events, credential changes, certificates, long-running charger operations ------------

# OCPP 1.6 security whitepaper §8: the events a charger must push because they are critical.
CRITICAL_SECURITY_EVENTS = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
    }
)


class SecurityEvent(models.Model):
    """A security event a charger reported (SecurityEventNotification) or that we noticed
    ourselves at its handshake (refused credentials, profile or certificate)."""

    class Source(models.TextChoices):
        CHARGER = "charger", "Charger"
        CSMS = "csms", "Central system"

    id = models.BigAutoField(primary_key=True)
    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="security_events")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CHARGER)
    event_type = models.CharField(max_length=50)
    timestamp = models.DateTimeField(
        help_text="The charger's clock; ours for central system events."
    )
    tech_info = models.CharField(max_length=255, blank=True)
    critical = models.BooleanField(default=False)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["charger", "-timestamp"], name="secevent_charger_time"),
            models.Index(fields=["critical", "-received_at"], name="secevent_critical"),
        ]
        constraints = [
            # A notification whose answer was lost comes again (A04.FR.02): store it once.
            models.UniqueConstraint(
                fields=["charger", "source", "event_type", "timestamp", "tech_info"],
                name="unique_security_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} at {self.charger_id} ({self.timestamp:%Y-%m-%d %H:%M:%S})"


class AuthorizationKeyChange(models.Model):
    """A new AuthorizationKey sent with ChangeConfiguration. Its hash waits here and replaces the
    charger's password only when the charger answers Accepted (OCPP-J 1.6 §6, A01.FR.03/04)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for the charger"
        ADOPTED = "adopted", "Accepted: the new key is in use"
        KEPT = "kept", "Not accepted: the old password stays valid"
        # Sent, but the answer was lost (disconnect, timeout): the charger may have switched,
        # so both passwords work until it connects with one of them.
        NO_ANSWER = "noanswer", "No answer: whichever password the charger connects with"

    charger = models.ForeignKey(
        Charger, on_delete=models.CASCADE, related_name="authorization_key_changes"
    )
    command = models.OneToOneField(
        Command, on_delete=models.CASCADE, related_name="authorization_key_change"
    )
    password_hash = models.CharField(max_length=256)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"AuthorizationKey change of {self.charger_id}: {self.status}"


class ChargerCertificate(models.Model):
    """A client certificate the central system's CA signed for a charger (SignCertificate)."""

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="certificates")
    # OCPP 2.0.1 CertificateSigningUseEnumType: the connection's certificate or the ISO 15118 one.
    certificate_type = models.CharField(max_length=40, default="ChargingStationCertificate")
    serial_number = models.CharField(max_length=64)
    fingerprint_sha256 = models.CharField(max_length=64, unique=True)
    subject = models.CharField(max_length=255)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    certificate_pem = models.TextField()
    command = models.ForeignKey(
        Command, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    delivery = models.CharField(
        max_length=40, blank=True, help_text="The charger's answer to CertificateSigned."
    )
    issued_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(
        null=True, blank=True, help_text="A revoked certificate no longer connects."
    )

    class Meta:
        ordering = ["-issued_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} (serial {self.serial_number})"


class ChargerOperation(models.Model):
    """A long-running job a command started on a charger, followed through its notifications:
    a log upload (GetLog / LogStatusNotification) or a signed firmware update
    (SignedUpdateFirmware / SignedFirmwareStatusNotification)."""

    class Kind(models.TextChoices):
        LOG = "log", "Log upload"
        FIRMWARE = "firmware", "Signed firmware update"

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    request_id = models.IntegerField(null=True, blank=True)
    command = models.ForeignKey(
        Command, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=40, default="Requested")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["charger", "kind", "request_id"], name="operation_request")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.request_id} on {self.charger_id}: {self.status}"


class ChargerOperationStatus(models.Model):
    """One step of an operation: our command's answer or a charger notification, as received."""

    class Source(models.TextChoices):
        REQUEST = "request", "Requested"
        ANSWER = "answer", "Answer to the command"
        NOTIFICATION = "notification", "Charger notification"

    operation = models.ForeignKey(
        ChargerOperation, on_delete=models.CASCADE, related_name="history"
    )
    status = models.CharField(max_length=40)
    source = models.CharField(max_length=12, choices=Source.choices)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"{self.operation_id}: {self.status}"


# -- OCPP 2.0.1: transaction events, device model, events -------------------------------------------


class TransactionEvent(models.Model):
    """One OCPP 2.0.1 TransactionEvent as received. A session is recomputed from all the events
    of its transaction in seqNo order (chargers.sessions.v201_transactions.fold); (transaction, seqNo)
    is unique, so a repeated event changes nothing."""

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the unique (charger, transactionId, seqNo) index leads with it, and
    # every event is written on the charging path, where each index is paid for.
    charger = models.ForeignKey(
        Charger, on_delete=models.CASCADE, related_name="transaction_events", db_index=False
    )
    session = models.ForeignKey(
        ChargingSession,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="transaction_events",
    )
    ocpp_transaction_id = models.CharField(max_length=36)
    seq_no = models.IntegerField(null=True, blank=True)
    event_type = models.CharField(max_length=8)
    trigger_reason = models.CharField(max_length=30, blank=True)
    timestamp = models.DateTimeField(help_text="Charger's clock.")
    offline = models.BooleanField(default=False)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["seq_no", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charger", "ocpp_transaction_id", "seq_no"],
                name="unique_transaction_event_seq",
            )
        ]
        # (charger, transactionId) lookups use the unique constraint's index (its prefix).

    def __str__(self) -> str:
        return (
            f"{self.event_type} #{self.seq_no} of {self.ocpp_transaction_id} on {self.charger_id}"
        )


class DeviceVariable(models.Model):
    """One attribute of one variable of a 2.0.1 charger's device model (NotifyReport, GetVariables)."""

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="device_variables")
    component = models.CharField(max_length=50)
    component_instance = models.CharField(max_length=50, blank=True)
    evse_id = models.PositiveIntegerField(default=0, help_text="0: not on an EVSE.")
    connector_id = models.PositiveIntegerField(default=0, help_text="0: not on a connector.")
    variable = models.CharField(max_length=50)
    variable_instance = models.CharField(max_length=50, blank=True)
    attribute_type = models.CharField(max_length=8, default="Actual")
    value = models.CharField(max_length=2500, blank=True)
    mutability = models.CharField(max_length=10, blank=True)
    persistent = models.BooleanField(null=True, blank=True)
    constant = models.BooleanField(null=True, blank=True)
    data_type = models.CharField(max_length=20, blank=True)
    unit = models.CharField(max_length=16, blank=True)
    values_list = models.CharField(max_length=1000, blank=True)
    # In the standardized list of the 2.0.1 appendices (chargers.devices.device_model).
    standardized = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = [
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
        ]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "charger",
                    "component",
                    "component_instance",
                    "evse_id",
                    "connector_id",
                    "variable",
                    "variable_instance",
                    "attribute_type",
                ],
                name="unique_device_variable",
            )
        ]

    def __str__(self) -> str:
        return f"{self.component}.{self.variable} ({self.attribute_type}) of {self.charger_id}"


class ChargerEvent(models.Model):
    """One eventData entry of a 2.0.1 NotifyEvent (a monitor tripped, an availability change, ...)."""

    id = models.BigAutoField(primary_key=True)
    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="device_events")
    event_id = models.IntegerField()
    timestamp = models.DateTimeField(help_text="Charger's clock.")
    trigger = models.CharField(max_length=10)
    component = models.CharField(max_length=50)
    variable = models.CharField(max_length=50)
    actual_value = models.CharField(max_length=2500, blank=True)
    event_notification_type = models.CharField(max_length=30, blank=True)
    cleared = models.BooleanField(null=True, blank=True)
    tech_info = models.CharField(max_length=500, blank=True)
    data = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-timestamp", "-id"]
        constraints = [
            # A NotifyEvent whose answer was lost comes again: stored once.
            models.UniqueConstraint(
                fields=["charger", "event_id", "timestamp"], name="unique_charger_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.component}.{self.variable}={self.actual_value} at {self.charger_id}"


class ConnectorReservation(models.Model):
    """A connector (or, with connector 0, any connector of the charger) held for one card or
    group: ReserveNow (OCPP 1.6 §5.13, 2.0.1 H01) from the portal, the API or a roaming partner.
    Not a hotel stay's reservation (stays.Reservation)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Sent, no answer yet"
        ACTIVE = "active", "Active"
        REFUSED = "refused", "Refused by the charger"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"
        USED = "used", "Used by a session"
        REMOVED = "removed", "Removed by the charger"

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="reservations")
    connector_id = models.PositiveIntegerField(
        default=0, help_text="0: any connector (EVSE) of the charger."
    )
    reservation_id = models.IntegerField(help_text="The OCPP reservationId / id we chose.")
    id_tag = models.CharField(max_length=36)
    group_id_tag = models.CharField(
        max_length=36, blank=True, help_text="parentIdTag (1.6) / groupIdToken (2.0.1)."
    )
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    charger_answer = models.CharField(
        max_length=20, blank=True, help_text="Accepted, Occupied, Faulted, ..."
    )
    session = models.ForeignKey(
        ChargingSession, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=20, default="api")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A ReserveNow with a known id replaces that reservation (1.6 §5.13, H01.FR.02).
            models.UniqueConstraint(
                fields=["charger", "reservation_id"], name="unique_connector_reservation"
            )
        ]
        indexes = [
            models.Index(fields=["charger", "status", "expires_at"], name="reservation_active")
        ]

    def __str__(self) -> str:
        return f"reservation {self.reservation_id} on {self.charger_id}/{self.connector_id}: {self.status}"

    def is_active(self, now: datetime | None = None) -> bool:
        return self.status == self.Status.ACTIVE and self.expires_at > (now or timezone.now())


from chargers.proxy.models import Backoffice, ProxyQueuedMessage, ProxyTransaction  # noqa: E402, F401


class ChargingProfile(models.Model):
    """A 2.0.1 charging profile a charger holds, as far as we know it: one we set
    (SetChargingProfile answered Accepted) or one it reported (ReportChargingProfiles, K09)."""

    class Status(models.TextChoices):
        INSTALLED = "installed", "Installed"
        REJECTED = "rejected", "Rejected by the charger"
        CLEARED = "cleared", "Cleared"

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="charging_profiles")
    evse_id = models.PositiveIntegerField(
        default=0, help_text="0: the charging station as a whole."
    )
    profile_id = models.IntegerField()
    stack_level = models.IntegerField()
    purpose = models.CharField(max_length=40)
    kind = models.CharField(max_length=10)
    transaction_id = models.CharField(
        max_length=36, blank=True, help_text="The charger's transactionId (TxProfile)."
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)
    profile = models.JSONField(help_text="The ChargingProfileType as sent or reported.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.INSTALLED)
    charger_answer = models.CharField(max_length=20, blank=True)
    source = models.CharField(
        max_length=20, default="csms", help_text="csms, or the chargingLimitSource reported."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["evse_id", "purpose", "-stack_level", "profile_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charger", "profile_id"], name="unique_charging_profile"
            )
        ]

    def __str__(self) -> str:
        return f"profile {self.profile_id} ({self.purpose}, stack {self.stack_level}) on {self.charger_id}/{self.evse_id}"


class ChargerNotice(models.Model):
    """A 2.0.1 notification stored as received, shown on the charger's pages: charging limits
    (NotifyChargingLimit, ClearedChargingLimit), EV needs and schedules (NotifyEVChargingNeeds/
    Schedule), monitoring reports (NotifyMonitoringReport)."""

    id = models.BigAutoField(primary_key=True)
    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="notices")
    action = models.CharField(max_length=40)
    evse_id = models.PositiveIntegerField(null=True, blank=True)
    summary = models.CharField(max_length=300, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["charger", "action", "-received_at"], name="notice_charger_action")
        ]

    def __str__(self) -> str:
        return f"{self.action} from {self.charger_id}: {self.summary}"


class VariableMonitor(models.Model):
    """A 2.0.1 monitor on a device-model variable (N04 SetVariableMonitoring accepted, or N02
    NotifyMonitoringReport): the charger sends a NotifyEvent when it trips."""

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="monitors")
    monitor_id = models.IntegerField(help_text="The id the charger gave it.")
    component = models.CharField(max_length=50)
    component_instance = models.CharField(max_length=50, blank=True)
    evse_id = models.PositiveIntegerField(default=0)
    connector_id = models.PositiveIntegerField(default=0)
    variable = models.CharField(max_length=50)
    variable_instance = models.CharField(max_length=50, blank=True)
    type = models.CharField(
        max_length=20,
        help_text="UpperThreshold, LowerThreshold, Delta, Periodic, PeriodicClockAligned",
    )
    value = models.FloatField()
    severity = models.PositiveSmallIntegerField(help_text="0 (Danger) .. 9 (Debug).")
    transaction = models.BooleanField(default=False, help_text="Only active during a transaction.")
    kind = models.CharField(
        max_length=20,
        default="CustomMonitor",
        help_text="HardWiredMonitor, PreconfiguredMonitor, CustomMonitor",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["component", "variable", "monitor_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charger", "monitor_id"], name="unique_variable_monitor"
            )
        ]

    def __str__(self) -> str:
        return f"monitor {self.monitor_id} {self.type} {self.value} on {self.component}.{self.variable}"


# -- quirk profiles (docs/quirks.md) --------------------------------------------------------------


class Deviation(models.Model):
    """A named way a charger model departs from the OCPP text, with the public evidence for it.
    `code` is what the code knows (chargers.ocpp.quirks); the rest is for support."""

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(help_text="What the charger does, against which OCPP text.")
    handling = models.TextField(
        blank=True, help_text="What this system does for a charger whose profile names it."
    )
    evidence = models.TextField(blank=True, help_text="The frames that showed it, as sent.")
    source_url = models.URLField(
        blank=True, help_text="Public evidence (issue thread, vendor doc)."
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code}: {self.name}"


class QuirkProfile(models.Model):
    """The deviations of a vendor's model over a range of firmware. Empty fields match any; a
    charger gets the deviations of every enabled profile it matches (chargers.ocpp.quirks)."""

    name = models.CharField(max_length=120)
    vendor = models.CharField(
        max_length=50, blank=True, help_text="BootNotification vendor, exact (any case)."
    )
    model_prefix = models.CharField(max_length=50, blank=True, help_text="Model starts with.")
    firmware_prefix = models.CharField(
        max_length=50, blank=True, help_text='Firmware starts with (a leading "v" is ignored).'
    )
    firmware_min = models.CharField(
        max_length=50, blank=True, help_text="Lowest firmware, compared number by number."
    )
    firmware_max = models.CharField(
        max_length=50, blank=True, help_text="Highest firmware (inclusive)."
    )
    deviations = models.ManyToManyField(Deviation, related_name="profiles")
    evidence = models.TextField(blank=True, help_text="The frames of this model that showed it.")
    source_url = models.URLField(help_text="Public evidence for this model (issue, vendor doc).")
    notes = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["vendor", "model_prefix", "firmware_min", "name"]

    def __str__(self) -> str:
        return self.name


class ChargerDeviation(models.Model):
    """A deviation the tolerant reader met on this charger that none of its profiles names:
    recorded, never silently absorbed, so support can propose a profile (docs/quirks.md)."""

    charger = models.ForeignKey(Charger, on_delete=models.CASCADE, related_name="deviations")
    code = models.CharField(max_length=40)
    detail = models.CharField(max_length=200, blank=True)
    example = models.TextField(blank=True, help_text="The first frame that showed it, as sent.")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["charger", "code"], name="unique_charger_deviation")
        ]

    def __str__(self) -> str:
        return f"{self.code} on {self.charger_id}"
