"""OCPI partners (eMSPs and hubs), what we publish about locations, the outbox and the OCPI log."""

from django.db import models


class Partner(models.Model):
    """A platform we exchange OCPI 2.2.1 with: an eMSP (or a hub) for one of our operators.

    The partner's party (country code + party id) is the operator's MobilityServiceProvider:
    blocking that provider under Mobility Providers stops the partner's tokens and commands.
    """

    class Role(models.TextChoices):
        EMSP = "EMSP", "eMSP (mobility provider)"
        HUB = "HUB", "Hub"

    class State(models.TextChoices):
        # We issued a token A; waiting for the partner to register with it.
        PENDING = "pending", "Waiting for the partner to register"
        CONNECTED = "connected", "Connected"
        UNREGISTERED = "unregistered", "Unregistered"

    organization = models.ForeignKey(
        "backoffice.Organization",
        on_delete=models.CASCADE,
        related_name="ocpi_partners",
        help_text="The operator whose public locations this partner sees.",
    )
    msp = models.OneToOneField(
        "authorization.MobilityServiceProvider",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ocpi_partner",
    )
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=4, choices=Role.choices, default=Role.EMSP)
    country_code = models.CharField(max_length=2, blank=True)
    party_id = models.CharField(max_length=3, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    # Tokens we only verify are stored as SHA-256 (roaming.ocpi.token_hash): token A we issued
    # for the partner to register, and the token it calls us with afterwards (B or C).
    token_a_hash = models.CharField(max_length=64, blank=True, db_index=True)
    incoming_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # The token we call the partner with (its C, or its B when it registered with us): it has to
    # be sent as is, so it is kept as is.
    outgoing_token = models.CharField(max_length=64, blank=True)
    versions_url = models.URLField(max_length=500, blank=True)
    version = models.CharField(max_length=10, blank=True)
    # {"locations": {"RECEIVER": url}, "tokens": {"SENDER": url}, ...}
    endpoints = models.JSONField(default=dict, blank=True)
    business_details = models.JSONField(default=dict, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    last_push_at = models.DateTimeField(null=True, blank=True)
    last_pull_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error_ocpi_status = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        party = f" ({self.country_code}*{self.party_id})" if self.party_id else ""
        return f"{self.name}{party}"

    def endpoint(self, module: str, role: str) -> str:
        """Return the partner's URL for `module` in interface `role`, or ''."""
        urls = self.endpoints.get(module) or {}
        return str(urls.get(role, "")) if isinstance(urls, dict) else ""

    @property
    def blocked(self) -> bool:
        return bool(self.msp_id and self.msp and self.msp.blocked)


class OcpiLog(models.Model):
    """One OCPI request and its response, in either direction (the Authorization header never)."""

    class Direction(models.TextChoices):
        IN = "in", "From the partner"
        OUT = "out", "To the partner"

    id = models.BigAutoField(primary_key=True)
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="log"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    module = models.CharField(max_length=30, blank=True)
    method = models.CharField(max_length=8)
    url = models.CharField(max_length=1000)
    request_id = models.CharField(max_length=100, blank=True)
    correlation_id = models.CharField(max_length=100, blank=True)
    request_body = models.JSONField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    ocpi_status = models.IntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["partner", "-id"], name="ocpilog_partner_latest")]

    def __str__(self) -> str:
        return f"{self.direction} {self.method} {self.url} -> {self.http_status}/{self.ocpi_status}"


class LocationProfile(models.Model):
    """What OCPI (and AFIR) need about a property beyond what hosts set for charging."""

    property = models.OneToOneField(
        "backoffice.Property", on_delete=models.CASCADE, related_name="ocpi_profile"
    )
    city = models.CharField(max_length=45)
    postal_code = models.CharField(max_length=10, blank=True)
    country = models.CharField(max_length=3, help_text="ISO 3166-1 alpha-3, e.g. NLD.")
    # WGS 84 decimal degrees; OCPI GeoLocation allows up to 7 decimals (about 1 cm).
    latitude = models.DecimalField(max_digits=10, decimal_places=7)
    longitude = models.DecimalField(max_digits=10, decimal_places=7)
    operator_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="The operator name partners show; empty: the organization's name.",
    )
    open_24_7 = models.BooleanField(default=True, help_text="Chargers can be used at any time.")
    # OCPI RegularHours when not open 24/7: [{"weekday": 1, "period_begin": "08:00", "period_end": "18:00"}]
    regular_hours = models.JSONField(default=list, blank=True)
    # OCPI ExceptionalPeriods: [{"period_begin": DateTime, "period_end": DateTime}]
    exceptional_openings = models.JSONField(default=list, blank=True)
    exceptional_closings = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"OCPI data of {self.property_id}"


class EvseProfile(models.Model):
    """The physical connector of a charger's outlets, for OCPI Connector objects (and AFIR)."""

    class Standard(models.TextChoices):
        TYPE2 = "IEC_62196_T2", "Type 2"
        TYPE2_COMBO = "IEC_62196_T2_COMBO", "CCS (Combo 2)"
        CHADEMO = "CHADEMO", "CHAdeMO"
        TYPE1 = "IEC_62196_T1", "Type 1"
        DOMESTIC_F = "DOMESTIC_F", "Schuko (type F)"

    class Format(models.TextChoices):
        SOCKET = "SOCKET", "Socket"
        CABLE = "CABLE", "Attached cable"

    class PowerType(models.TextChoices):
        AC_1_PHASE = "AC_1_PHASE", "AC, 1 phase"
        AC_3_PHASE = "AC_3_PHASE", "AC, 3 phases"
        DC = "DC", "DC"

    charger = models.OneToOneField(
        "chargers.Charger", on_delete=models.CASCADE, related_name="ocpi_profile"
    )
    standard = models.CharField(max_length=20, choices=Standard.choices, default=Standard.TYPE2)
    format = models.CharField(max_length=6, choices=Format.choices, default=Format.SOCKET)
    power_type = models.CharField(
        max_length=10, choices=PowerType.choices, default=PowerType.AC_3_PHASE
    )
    max_voltage = models.PositiveIntegerField(
        default=230, help_text="Volt, line to neutral for AC 3 phases."
    )
    max_amperage = models.PositiveIntegerField(default=32)
    max_electric_power = models.PositiveIntegerField(
        null=True, blank=True, help_text="Watt, when lower than V x A."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"OCPI connector of {self.charger_id}"


class Delivery(models.Model):
    """One push to a partner, kept until the partner accepted it (the outbox).

    Deliveries of a partner are sent in id order; a failed one is retried with back-off and
    holds back later ones for the same object, so an object's updates arrive in order.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Accepted by the partner"

    id = models.BigAutoField(primary_key=True)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="deliveries")
    module = models.CharField(max_length=20)
    # What the push is about ("evse:<location>/<evse uid>", "session:<id>", "cdr:<id>"): order key.
    object_key = models.CharField(max_length=120)
    method = models.CharField(max_length=6)
    # Appended to the partner's receiver endpoint of `module` at send time; a full URL (a
    # command's response_url) is used as is.
    path = models.CharField(max_length=500)
    body = models.JSONField()
    # Later status changes of one EVSE replace a pending PATCH's body: the partner needs the
    # state now, not every state in between (OCPI "Offline behaviour": do not replay stale data).
    coalesce = models.BooleanField(default=False)
    # Bumped when a newer body replaces a pending one: a send of the older body leaves it pending.
    revision = models.PositiveIntegerField(default=0)
    # Routing headers (hubs): the party the push is for.
    to_country_code = models.CharField(max_length=2, blank=True)
    to_party_id = models.CharField(max_length=3, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["partner", "status", "id"], name="delivery_partner_pending"),
            models.Index(fields=["partner", "object_key", "-id"], name="delivery_partner_object"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.module} {self.object_key} to {self.partner_id}: {self.status}"


class PushedToken(models.Model):
    """A token an eMSP pushed (mod_tokens receiver), as it sent it; the card itself is the
    authorization Token the decision engine uses.

    Tokens are the operator's: one eMSP connected to two operators pushes the same
    country/party/uid to each, and neither operator's partners see or change the other's.
    """

    # The partner's operator, kept on the row so every lookup and the uniqueness are per tenant.
    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="tokens")
    token = models.OneToOneField(
        "authorization.Token", on_delete=models.CASCADE, related_name="ocpi"
    )
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    uid = models.CharField(max_length=36)
    type = models.CharField(max_length=12)
    data = models.JSONField()
    last_updated = models.DateTimeField()
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "country_code", "party_id", "uid", "type"],
                name="unique_pushed_token_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.type} {self.uid}"


class HubParty(models.Model):
    """A party a hub routes for one operator: its tokens and commands come through that hub.

    A hub claims a party the first time it pushes for it. A party connected to the operator
    directly (its own eMSP partner) or routed by another connected hub is not the hub's: it
    gets 404 for that party's tokens, as for a party it does not know.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="routed_parties")
    msp = models.OneToOneField(
        "authorization.MobilityServiceProvider", on_delete=models.CASCADE, related_name="hub_route"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "hub parties"

    def __str__(self) -> str:
        return f"{self.msp_id} via {self.partner_id}"


class RemoteCommand(models.Model):
    """A command a partner sent (mod_commands receiver) and what became of it at the charger."""

    class Type(models.TextChoices):
        START_SESSION = "START_SESSION"
        STOP_SESSION = "STOP_SESSION"
        UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"
        RESERVE_NOW = "RESERVE_NOW"
        CANCEL_RESERVATION = "CANCEL_RESERVATION"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="commands")
    type = models.CharField(max_length=20, choices=Type.choices)
    request = models.JSONField()
    response_url = models.URLField(max_length=500)
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    connector_id = models.PositiveIntegerField(null=True, blank=True)
    # The OCPP CALL it became (RemoteStartTransaction, ReserveNow, ...).
    charger_command = models.ForeignKey(
        "chargers.Command", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reservation_id = models.CharField(
        max_length=36, blank=True, help_text="The partner's (OCPI) reservation id."
    )
    ocpp_reservation_id = models.IntegerField(null=True, blank=True)
    response = models.CharField(max_length=20, help_text="Our CommandResponse result.")
    result = models.CharField(
        max_length=20, blank=True, help_text="The CommandResult sent to response_url."
    )
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} from {self.partner_id}: {self.response}/{self.result or '…'}"


class Cdr(models.Model):
    """The charge detail record of a finished roaming session, as sent (CDRs are never changed)."""

    session = models.OneToOneField(
        "chargers.ChargingSession", on_delete=models.PROTECT, related_name="ocpi_cdr"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="cdrs")
    cdr_id = models.CharField(max_length=39, unique=True)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "CDR"

    def __str__(self) -> str:
        return self.cdr_id
