"""OCPI partners (eMSPs, hubs, payment terminal providers), what we publish about locations
(with their parking places), the outbox, the OCPI log, and the PTPs' terminals and payments."""

from django.db import models
from django.utils import timezone


class Partner(models.Model):
    """A platform we exchange OCPI (2.2.1 or 2.3.0) with for one of our operators: an eMSP, a
    hub, or a payment terminal provider (PTP, 2.3.0's Payments module).

    The partner's party (country code + party id) is the operator's MobilityServiceProvider:
    blocking that provider under Mobility Providers stops the partner's tokens and commands.
    """

    class Role(models.TextChoices):
        EMSP = "EMSP", "eMSP (mobility provider)"
        HUB = "HUB", "Hub"
        PTP = "PTP", "Payment terminal provider"
        # A national access point (AFIR) fed by an AccessPointFeed: it only receives pushes.
        NAP = "NAP", "National access point"
        # A charge point operator our drivers charge at (we are its eMSP; docs/ocpi.md "eMSP").
        CPO = "CPO", "Charge point operator (our drivers roam there)"

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
    # The portal's invite form's own key (roaming.services.partner_invite): the form sent twice
    # is one invited partner.
    invite_key = models.CharField(max_length=64, blank=True)
    versions_url = models.URLField(max_length=500, blank=True)
    # The OCPI version both sides use (the newest both speak when we registered; the partner's
    # choice when it registered with us), and every version the partner offered then.
    version = models.CharField(max_length=10, blank=True)
    versions_offered = models.JSONField(default=list, blank=True)
    # Every role of its credentials: [{"role", "country_code", "party_id", "name"}] (a 2.3.0 hub
    # lists the parties it reaches).
    roles = models.JSONField(default=list, blank=True)
    # {"locations": {"RECEIVER": url}, "tokens": {"SENDER": url}, ...}
    endpoints = models.JSONField(default=dict, blank=True)
    business_details = models.JSONField(default=dict, blank=True)
    # Its CPO role, when its credentials list one (a platform may be CPO, eMSP or both): our
    # drivers' tokens go to it and its locations, sessions and CDRs come from it.
    cpo_country_code = models.CharField(max_length=2, blank=True)
    cpo_party_id = models.CharField(max_length=3, blank=True)
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
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "invite_key"],
                condition=~models.Q(invite_key=""),
                name="unique_partner_invite_key",
            )
        ]

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

    @property
    def is_cpo(self) -> bool:
        """Whether the partner is a charge point operator for us (our drivers charge there)."""
        return bool(self.cpo_party_id)


class EmspIdentity(models.Model):
    """The organization's own party as an eMSP (mobility service provider): the country code
    and party id on every token it issues, and the prefix of their contract ids (eMAIDs)."""

    organization = models.OneToOneField(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="emsp_identity"
    )
    country_code = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. NL.")
    party_id = models.CharField(max_length=3, help_text="The registered party id, e.g. EVB.")
    emaid_prefix = models.CharField(
        max_length=9,
        help_text="Country code and party id, then up to 4 more letters or digits: contract "
        "ids are this prefix and the card's number, 14 characters (eMI3 eMAID).",
    )
    business_name = models.CharField(max_length=100)
    # What our drivers are billed in: a partner CDR in another currency is converted at the
    # reference rate of its day (billing.services.exchange_rates), stated on the bill.
    currency = models.CharField(max_length=3, default="EUR")
    # The platform's driver accounts (drivers/) roam on this identity: their app tokens are this
    # organization's cards, pushed to its CPO partners (docs/ocpi.md "Driver accounts roaming").
    # Set by support in Django admin; at most one identity does it.
    driver_accounts = models.BooleanField(
        default=False,
        help_text="Driver accounts charge at this organization's partner CPOs with app tokens "
        "it issues (one identity at most).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "eMSP identity"
        constraints = [
            models.UniqueConstraint(fields=["country_code", "party_id"], name="unique_emsp_party"),
            models.UniqueConstraint(
                fields=["driver_accounts"],
                condition=models.Q(driver_accounts=True),
                name="one_driver_accounts_identity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} ({self.business_name})"


class PartnerLocation(models.Model):
    """A partner CPO's location (mod_locations, we are the eMSP): the Location object with its
    EVSEs and connectors as the CPO pushed it (PUT, PATCH) or we pulled it. Kept per operator:
    the partner's organization is the only one that sees it."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="partner_locations")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    location_id = models.CharField(max_length=36)
    data = models.JSONField()
    last_updated = models.DateTimeField()
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["partner", "location_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "location_id"],
                name="unique_partner_location",
            )
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} location {self.location_id}"


class PartnerTariff(models.Model):
    """One version of a partner CPO's tariff (mod_tariffs, we are the eMSP). Every PUT with a new
    `last_updated` is a new row, so the tariff as it stood when a session started can be read
    back; a DELETE marks the versions removed (kept for the sessions that used them)."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="partner_tariffs")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    tariff_id = models.CharField(max_length=36)
    data = models.JSONField()
    last_updated = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partner", "tariff_id", "last_updated"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "tariff_id", "last_updated"],
                name="unique_partner_tariff_version",
            )
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} tariff {self.tariff_id} @ {self.last_updated}"


class PartnerSession(models.Model):
    """A session of one of our cards at a partner CPO (mod_sessions Receiver, we are the eMSP),
    as the CPO last pushed it; stored once per session id."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="partner_sessions")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    session_id = models.CharField(max_length=36)
    token = models.ForeignKey(
        "authorization.Token", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=12, blank=True)
    data = models.JSONField()
    last_updated = models.DateTimeField()
    received_at = models.DateTimeField(auto_now=True)
    # Open (status) but silent: no update nor CDR from the CPO for roaming.emsp_cdrs.QUIET_AFTER
    # (its Sender asked first). The driver is no longer shown charging there nor kept from
    # starting again; the CPO's next update of it empties this (its CDR still bills it).
    quiet_closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_updated"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "session_id"],
                name="unique_partner_session",
            )
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} session {self.session_id}"


class PartnerCdr(models.Model):
    """A CDR of one of our cards from a partner CPO (mod_cdrs Receiver), stored once per id,
    checked against its tariff as it stood at the session's start (roaming.cdr_check): it
    agrees (and our price to the driver is set) or it is a dispute for support, never charged."""

    class Status(models.TextChoices):
        AGREES = "agrees", "Agrees with its tariff"
        DISPUTE = "dispute", "Dispute: not charged until support settles it"
        SETTLED = "settled", "Dispute settled by support"
        CREDIT = "credit", "Credit CDR"

    class PaymentStatus(models.TextChoices):
        DUE = "due", "To be charged to the driver's saved card"
        PAID = "paid", "Paid by the driver"
        FAILED = "failed", "The driver's card was refused"
        # A credit CDR of the network cancelled it: before the charge, or refunded after it.
        CREDITED = "credited", "Credited by the network: not charged"
        REFUNDED = "refunded", "Refunded: the network credited it"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="partner_cdrs")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    cdr_id = models.CharField(max_length=39)
    token = models.ForeignKey(
        "authorization.Token", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField()
    currency = models.CharField(max_length=3)
    # The partner's cost before tax, and what its tariff (as it stood at the start) gives.
    claimed = models.DecimalField(max_digits=12, decimal_places=4)
    recomputed = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    tariff = models.ForeignKey(
        PartnerTariff, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices)
    reason = models.CharField(max_length=500, blank=True)
    # Our price to the driver (roaming.cdr_check.driver_price): before tax, our VAT, total.
    price_excl = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    price_vat = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    price_total = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # The driver's payment of price_total (a driver account's app token, charged off-session to
    # the saved card; drivers.services.roaming_cdr_charge). Empty: nobody here is charged (an
    # organization's own card, a dispute, a credit CDR).
    payment_status = models.CharField(
        max_length=8, choices=PaymentStatus.choices, blank=True, db_index=True
    )
    payment_reference = models.CharField(max_length=100, blank=True)
    payment_error = models.CharField(max_length=300, blank=True)
    payment_attempts = models.PositiveSmallIntegerField(default=0)
    # When the processor first left a charge of it without an answer (charged or not unknown);
    # emptied by its next answer. The processor keeps an idempotency key about 24 hours, so a
    # charge unanswered for drivers.roaming.ROAMING_CHARGE_UNANSWERED_GIVE_UP is not asked again
    # (a retry after the key is forgotten would be a second charge) but left to support.
    payment_unanswered_since = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # What the card was charged when it is another currency than the CDR's: the amount, and the
    # reference rate (units per unit of the CDR's currency) of the day it was taken from.
    charged_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    charged_currency = models.CharField(max_length=3, blank=True)
    exchange_rate = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    exchange_rate_day = models.DateField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "partner CDR"
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "cdr_id"],
                name="unique_partner_cdr",
            )
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} CDR {self.cdr_id}"


class PartnerCommand(models.Model):
    """A command we sent a partner CPO as the eMSP (mod_commands Sender: START_SESSION for a
    driver's app token, STOP_SESSION of its session): the CPO's CommandResponse, then the
    CommandResult it posts to our response URL (`/ocpi/{v}/emsp/commands/{type}/{uid}`)."""

    class Type(models.TextChoices):
        START_SESSION = "START_SESSION"
        STOP_SESSION = "STOP_SESSION"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="sent_commands")
    token = models.ForeignKey(
        "authorization.Token", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    type = models.CharField(max_length=13, choices=Type.choices)
    # The unique segment of our response URL: the CPO's CommandResult is matched by it.
    uid = models.CharField(max_length=32, unique=True)
    partner_location = models.ForeignKey(
        PartnerLocation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    location_id = models.CharField(max_length=36, blank=True)
    evse_uid = models.CharField(max_length=36, blank=True)
    connector_id = models.CharField(max_length=36, blank=True)
    session_id = models.CharField(max_length=36, blank=True)
    authorization_reference = models.CharField(max_length=36, blank=True)
    # CommandResponseType (or UNREACHABLE when the CPO did not answer), then CommandResultType.
    response = models.CharField(max_length=16, blank=True)
    timeout_s = models.PositiveIntegerField(null=True, blank=True)
    result = models.CharField(max_length=20, blank=True)
    message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    result_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["token", "-created_at"], name="partner_command_token")]

    def __str__(self) -> str:
        return f"{self.type} to {self.partner_id}: {self.response or '…'}/{self.result or '…'}"


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
    help_phone = models.CharField(
        max_length=25,
        blank=True,
        help_text="A number drivers at this location can call for help (OCPI 2.3.0 help_phone).",
    )
    # OCPI RegularHours when not open 24/7: [{"weekday": 1, "period_begin": "08:00", "period_end": "18:00"}]
    regular_hours = models.JSONField(default=list, blank=True)
    # OCPI ExceptionalPeriods: [{"period_begin": DateTime, "period_end": DateTime}]
    exceptional_openings = models.JSONField(default=list, blank=True)
    exceptional_closings = models.JSONField(default=list, blank=True)
    # OCPI EnergyMix (mod_locations "EnergyMix class"): {"is_green_energy", "supplier_name"?,
    # "energy_product_name"?}; null: not entered yet (AFIR: a feed holds the location back).
    energy_mix = models.JSONField(null=True, blank=True)
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
    # mod_locations ParkingRestriction values: who may charge here (beyond vehicle types).
    parking_restrictions = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"OCPI connector of {self.charger_id}"


class ParkingRestriction(models.TextChoices):
    """mod_locations "ParkingRestriction" (2.3.0; 2.2.1 has the first five)."""

    EV_ONLY = "EV_ONLY", "Electric vehicles only"
    PLUGGED = "PLUGGED", "Only while plugged in"
    DISABLED = "DISABLED", "Disabled people with a valid permit"
    CUSTOMERS = "CUSTOMERS", "Customers or guests only"
    MOTORCYCLES = "MOTORCYCLES", "Motorcycles and scooters only"
    EMPLOYEES = "EMPLOYEES", "Employees only"
    TAXIS = "TAXIS", "Taxis only"
    TENANTS = "TENANTS", "Residents only"


class VehicleType(models.TextChoices):
    """mod_locations "VehicleType" (2.3.0)."""

    MOTORCYCLE = "MOTORCYCLE", "Motorcycle"
    PERSONAL_VEHICLE = "PERSONAL_VEHICLE", "Car"
    PERSONAL_VEHICLE_WITH_TRAILER = "PERSONAL_VEHICLE_WITH_TRAILER", "Car with a trailer"
    VAN = "VAN", "Van (under 2.75 m)"
    SEMI_TRACTOR = "SEMI_TRACTOR", "Tractor unit without trailer"
    RIGID = "RIGID", "Rigid truck"
    TRUCK_WITH_TRAILER = "TRUCK_WITH_TRAILER", "Truck with a trailer"
    BUS = "BUS", "Bus or coach"
    DISABLED = "DISABLED", "Vehicle with a disabled parking permit"


class ParkingPlace(models.Model):
    """A parking space at a location where a vehicle parks to charge (OCPI 2.3.0 "Parking
    object"): what AFIR asks operators to tell National Access Points, including the spaces
    for people with disabilities. Sizes in cm, weight in kg; empty: not known."""

    class Direction(models.TextChoices):
        PARALLEL = "PARALLEL", "Parallel to the road"
        PERPENDICULAR = "PERPENDICULAR", "Perpendicular to the road"
        ANGLE = "ANGLE", "At an angle to the road"

    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.CASCADE, related_name="parking_places"
    )
    physical_reference = models.CharField(
        max_length=12, blank=True, help_text="As painted or signposted on site, e.g. P12."
    )
    vehicle_types = models.JSONField(default=list, help_text="VehicleType values, at least one.")
    restricted_to_type = models.BooleanField(
        default=False, help_text="Other vehicle types may not park here, even if they fit."
    )
    reservation_required = models.BooleanField(default=False)
    max_vehicle_weight = models.PositiveIntegerField(null=True, blank=True, help_text="kg")
    max_vehicle_height = models.PositiveIntegerField(null=True, blank=True, help_text="cm")
    max_vehicle_length = models.PositiveIntegerField(null=True, blank=True, help_text="cm")
    max_vehicle_width = models.PositiveIntegerField(null=True, blank=True, help_text="cm")
    parking_space_length = models.PositiveIntegerField(null=True, blank=True, help_text="cm")
    parking_space_width = models.PositiveIntegerField(null=True, blank=True, help_text="cm")
    dangerous_goods_allowed = models.BooleanField(null=True, blank=True)
    direction = models.CharField(max_length=13, choices=Direction.choices, blank=True)
    drive_through = models.BooleanField(null=True, blank=True)
    time_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Minutes a vehicle may stay."
    )
    roofed = models.BooleanField(null=True, blank=True)
    lighting = models.BooleanField(null=True, blank=True)
    refrigeration_outlet = models.BooleanField(null=True, blank=True)
    standards = models.JSONField(
        default=list, blank=True, help_text="e.g. PAS 1899 (parking for people with disabilities)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["property", "id"]

    def __str__(self) -> str:
        return f"Parking {self.physical_reference or self.pk} at {self.property_id}"


class ParkingEvse(models.Model):
    """A charger whose EVSEs serve a parking place (OCPI 2.3.0 "EVSEParking")."""

    class Position(models.TextChoices):
        LEFT = "LEFT", "Left of the vehicle"
        RIGHT = "RIGHT", "Right of the vehicle"
        CENTER = "CENTER", "At the centre of the narrow end"

    parking = models.ForeignKey(ParkingPlace, on_delete=models.CASCADE, related_name="evses")
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="parking_links"
    )
    evse_position = models.CharField(max_length=6, choices=Position.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parking", "charger"], name="unique_parking_charger")
        ]

    def __str__(self) -> str:
        return f"{self.charger_id} serves parking {self.parking_id}"


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
    # Its last try found the partner itself failing (unreachable, 5xx, 429, not OCPI, OCPI
    # 3xxx): until this push's next try, none of the partner's pushes is sent.
    partner_down = models.BooleanField(default=False)
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


class HubClient(models.Model):
    """A party a hub partner connects (mod_hub_client_info "ClientInfo", the hub's object): pushed
    to our Receiver, pulled from the hub's Sender, or listed as a role in its 2.3.0 credentials.
    In our eMSP role a hub's CPO parties are the networks our drivers reach through it."""

    class Status(models.TextChoices):
        CONNECTED = "CONNECTED"
        OFFLINE = "OFFLINE"
        PLANNED = "PLANNED"
        SUSPENDED = "SUSPENDED"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="hub_clients")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    role = models.CharField(max_length=5)
    status = models.CharField(max_length=9, choices=Status.choices)
    last_updated = models.DateTimeField()
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["partner", "country_code", "party_id", "role"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "role"], name="unique_hub_client"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.country_code}*{self.party_id} {self.role} via {self.partner_id}: {self.status}"
        )


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


class CdrQuerySet(models.QuerySet["Cdr"]):
    def current(self) -> "CdrQuerySet":
        """The CDRs that stand: not a credit CDR, and not credited by one."""
        return self.filter(credit_reference__isnull=True, credited_by__isnull=True)


class Cdr(models.Model):
    """A charge detail record of a finished roaming session, as sent (CDRs are never changed).

    A session has one CDR that stands. A CDR made on our estimate of the stop (a newer start
    superseded the session, or its StopTransaction had not come) is corrected when the charger's
    own stop arrives with other figures, as mod_cdrs prescribes: a Credit CDR of it
    (`credit_reference`, its total_cost negated), then a new CDR (roaming.sessions.cdr_create)."""

    session = models.ForeignKey(
        "chargers.ChargingSession", on_delete=models.PROTECT, related_name="ocpi_cdrs"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="cdrs")
    cdr_id = models.CharField(max_length=39, unique=True)
    data = models.JSONField()
    # The OCPI version `data` is written in (the partner's when the CDR was made).
    version = models.CharField(max_length=10, default="2.2.1")
    # Made while the session's stop was our estimate, not the charger's.
    estimated = models.BooleanField(default=False)
    # Set on a Credit CDR: the CDR it cancels.
    credit_reference = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credited_by"
    )
    # When it was stored, which its `last_updated` shows (to the second): the list's date_from
    # and date_to filter on it (sessions._cdr_send sets both from one moment).
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    objects = CdrQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "CDR"

    def __str__(self) -> str:
        return self.cdr_id


# -- Payments (OCPI 2.3.0 mod_payments): a PTP's terminals and what they were paid ----------------


class Terminal(models.Model):
    """A payment terminal a payment terminal provider (PTP) pushed, and where we assigned it.

    The PTP owns the terminal's data (`details`); the operator decides which of its locations
    or EVSEs the terminal serves (TerminalAssignment), and we tell the PTP (PATCH)."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="terminals")
    terminal_id = models.CharField(max_length=36)
    # The Terminal fields the PTP sent (customer_reference, address, invoice_creator, ...).
    details = models.JSONField(default=dict, blank=True)
    last_updated = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    # In the invoice URL we give the PTP (invoice_base_url): the terminal shows the driver
    # invoice_base_url + authorization_reference, so a reference alone opens no invoice.
    invoice_key = models.CharField(max_length=32, unique=True)
    # We deactivated it (broken, moved: mod_payments "Deactivate Terminal"): it serves no EVSE
    # until the PTP creates it again.
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["partner", "terminal_id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "terminal_id"], name="unique_ptp_terminal")
        ]

    def __str__(self) -> str:
        return f"Terminal {self.terminal_id} of {self.partner_id}"

    @property
    def invoice_creator(self) -> str:
        """Who invoices the driver: CPO (we do; the default) or PTP (mod_payments)."""
        return str(self.details.get("invoice_creator") or "CPO")


class TerminalActivation(models.Model):
    """An activation we asked a PTP for (mod_payments "Activate Terminal"): a terminal built into
    a station, known by its reference (e.g. its serial number), and where it should serve. The
    PTP answers by creating the Terminal (POST to us); that terminal then gets this assignment."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="terminal_activations"
    )
    reference = models.CharField(max_length=36)
    # Property ids, and [charger id, connector id] pairs, as the assignment form gives them.
    location_ids = models.JSONField(default=list, blank=True)
    evses = models.JSONField(default=list, blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)
    terminal = models.OneToOneField(
        Terminal, on_delete=models.SET_NULL, null=True, blank=True, related_name="activation"
    )

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"Activation of {self.reference} at {self.partner_id}"


class TerminalAssignment(models.Model):
    """A location (all of its EVSEs: no charger) or one EVSE (charger + connector) that a
    terminal serves, as the operator assigned it."""

    terminal = models.ForeignKey(Terminal, on_delete=models.CASCADE, related_name="assignments")
    property = models.ForeignKey("backoffice.Property", on_delete=models.CASCADE, related_name="+")
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    connector_id = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["terminal", "property"],
                condition=models.Q(charger__isnull=True),
                name="unique_terminal_location",
            ),
            models.UniqueConstraint(
                fields=["terminal", "charger", "connector_id"],
                condition=models.Q(charger__isnull=False),
                name="unique_terminal_evse",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.charger_id}*{self.connector_id}" if self.charger_id else "all EVSEs"
        return f"{self.terminal_id} at {self.property_id} ({where})"


class TerminalPayment(models.Model):
    """A session paid at a PTP's terminal: the START_SESSION it sent with its
    `authorization_reference`, the one-off card we gave the charger for it, the session it
    became, the invoice we issued (the CDR's `invoice_reference_id`) and the PTP's financial
    advice confirmation. Such a session is paid once, at the terminal: it is never billed to
    a card of ours, a guest card or another partner."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="terminal_payments")
    terminal = models.ForeignKey(
        Terminal, on_delete=models.SET_NULL, null=True, blank=True, related_name="payments"
    )
    authorization_reference = models.CharField(max_length=36)
    command = models.OneToOneField(
        RemoteCommand, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The card the charger is started with: ours, for this payment only (its uid is ours, so
    # no card of a driver, host or guest can be mistaken for it), made invalid when it ends.
    token = models.OneToOneField(
        "authorization.Token", on_delete=models.PROTECT, related_name="terminal_payment"
    )
    # The PTP's Token object from its START_SESSION, as the Session and CDR carry it.
    token_data = models.JSONField()
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    connector_id = models.PositiveIntegerField(null=True, blank=True)
    session = models.OneToOneField(
        "chargers.ChargingSession",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="terminal_payment",
    )
    invoice_reference_id = models.CharField(max_length=39, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "authorization_reference"], name="unique_ptp_authorization"
            )
        ]

    def __str__(self) -> str:
        return f"Terminal payment {self.authorization_reference} ({self.partner_id})"


class FinancialAdviceConfirmation(models.Model):
    """What a PTP captured for a terminal payment (mod_payments "Financial Advice
    Confirmation"): the amount, the capture's status and the EFT data for the invoice."""

    class Capture(models.TextChoices):
        SUCCESS = "SUCCESS", "Captured"
        PARTIAL_SUCCESS = "PARTIAL_SUCCESS", "Partly captured"
        FAILED = "FAILED", "Capture failed"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="financial_advices")
    payment = models.ForeignKey(
        TerminalPayment, on_delete=models.CASCADE, related_name="confirmations"
    )
    fac_id = models.CharField(max_length=36)
    capture_status_code = models.CharField(max_length=16, choices=Capture.choices)
    capture_status_message = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3)
    total_excl_tax = models.DecimalField(max_digits=12, decimal_places=4)
    total_incl_tax = models.DecimalField(max_digits=12, decimal_places=4)
    eft_data = models.JSONField(default=list, blank=True)
    data = models.JSONField()
    last_updated = models.DateTimeField()
    received_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["partner", "fac_id"], name="unique_ptp_fac")]

    def __str__(self) -> str:
        return f"{self.fac_id}: {self.capture_status_code}"


class AccessPointFeed(models.Model):
    """An operator's feed of its publicly accessible chargers to one country's National Access
    Point (AFIR, EU 2023/1804 art. 20): where to push, with which token and protocol.

    An OCPI feed is delivered by the roaming outbox through its own Partner row (role NAP,
    never listed among the roaming partners): the same Delivery rows, order, back-off,
    coalescing and OCPI log as every partner push.
    """

    class Protocol(models.TextChoices):
        OCPI_221 = "ocpi-2.2.1", "OCPI 2.2.1 (push)"
        OCPI_230 = "ocpi-2.3.0", "OCPI 2.3.0 (push)"
        DATEX_II_3 = "datex-ii-3", "DATEX II v3"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="access_point_feeds"
    )
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 of the access point.")
    enabled = models.BooleanField(default=False)
    protocol = models.CharField(max_length=10, choices=Protocol.choices)
    endpoint_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="The access point's OCPI base URL; /locations and /tariffs are pushed under it.",
    )
    # Sent as is in the Authorization header, so kept as is (like Partner.outgoing_token).
    token = models.CharField(max_length=200, blank=True)
    party_id = models.CharField(
        max_length=3, help_text="Our party id, the one roaming uses (one operator identity)."
    )
    partner = models.OneToOneField(
        Partner,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="access_point_feed",
        help_text="The outbox identity of an OCPI feed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organization", "country"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "country"], name="unique_access_point_per_country"
            )
        ]

    def __str__(self) -> str:
        return f"{self.country} access point of {self.organization_id} ({self.protocol})"


class SweepMark(models.Model):
    """Where a periodic sweep got to (`at`: the moment its last run looked from), kept in the
    database: in the cache, a Redis that restarted empty or evicted the key made the next run
    look back only its short default, and what changed before that was never pushed."""

    name = models.CharField(max_length=100, unique=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
