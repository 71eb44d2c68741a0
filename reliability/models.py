"""Reliability: every port's state over time, exclusions, fault codes and alerts
(docs/reliability.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PortEvent(models.Model):
    """One change of a port's state, as the timeline shows it and uptime counts it.

    Fed from what chargers records: StatusNotification (1.6 and 2.0.1, via StatusEvent),
    NotifyEvent AvailabilityState (2.0.1), the charger's connection going and coming back
    (connector 0: the whole charger) and the outcome of each session.
    """

    class Kind(models.TextChoices):
        STATUS = "status", "Status reported"
        OFFLINE = "offline", "Charger offline"
        ONLINE = "online", "Charger back online"
        SESSION = "session", "Session outcome"
        REMEDY = "remedy", "First aid sent"
        FIRMWARE = "firmware", "Firmware install"

    id = models.BigAutoField(primary_key=True)
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="port_events"
    )
    connector_id = models.PositiveIntegerField(help_text="0: the charger as a whole.")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    at = models.DateTimeField()
    status = models.CharField(max_length=30, blank=True)
    error_code = models.CharField(max_length=30, blank=True)
    vendor_error_code = models.CharField(max_length=50, blank=True)
    info = models.CharField(max_length=500, blank=True)
    # Where it came from ("status_event:12", "charger_event:3", "session:7"): recorded once.
    source = models.CharField(max_length=40, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["charger", "connector_id", "at"], name="portevent_port_at")]
        constraints = [
            models.UniqueConstraint(
                fields=["source"], condition=~models.Q(source=""), name="unique_portevent_source"
            ),
            # A charger went offline (or online) at one instant once: the announcement and the
            # sync that catches lost announcements may both see the change (timeline.links_*).
            models.UniqueConstraint(
                fields=["charger", "kind", "at"],
                condition=models.Q(kind__in=["offline", "online"]),
                name="unique_portevent_link",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.charger_id}/{self.connector_id} {self.kind} {self.status} at {self.at:%Y-%m-%d %H:%M:%S}"


class Exclusion(models.Model):
    """Time a port (or every port of a charger) was down for a reason the regulators exclude
    from its uptime: NEVI 23 CFR 680.116(b)(2), CEC. Caps in reliability.services.exclusions."""

    class Reason(models.TextChoices):
        VANDALISM = "vandalism", "Vandalism"
        GRID_OUTAGE = "grid_outage", "Grid power loss"
        NATURAL_DISASTER = "natural_disaster", "Natural disaster"
        PLANNED_MAINTENANCE = "planned_maintenance", "Planned maintenance"

    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.PROTECT, related_name="uptime_exclusions"
    )
    connector_id = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: every port of the charger."
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Hosts withdraw (the audit trail keeps what was claimed and who took it back); only staff
    # delete one (reliability.services.exclusions.exclusion_delete, audited too).
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start", "-id"]
        indexes = [models.Index(fields=["charger", "start"], name="exclusion_charger_start")]

    def __str__(self) -> str:
        port = f"/{self.connector_id}" if self.connector_id else ""
        return f"{self.get_reason_display()} {self.charger_id}{port} {self.start:%Y-%m-%d %H:%M}"


class ExclusionAudit(models.Model):
    """Who entered, changed or withdrew an exclusion, when, and what it said then."""

    class Action(models.TextChoices):
        CREATED = "created", "Created"
        WITHDRAWN = "withdrawn", "Withdrawn"
        REFUSED = "refused", "Refused (over a cap)"
        DELETED = "deleted", "Deleted by staff"

    # Kept when a staff user deletes the exclusion: the row of its deletion says what it was.
    exclusion = models.ForeignKey(
        Exclusion, on_delete=models.SET_NULL, related_name="audit", null=True, blank=True
    )
    charger = models.ForeignKey("chargers.Charger", on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)
    details = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.by_id} at {self.at:%Y-%m-%d %H:%M}"


class AlertRule(models.Model):
    """When an organization wants to hear of a problem, how, and what first aid to try
    (docs/reliability.md, "Alerts")."""

    class Kind(models.TextChoices):
        OFFLINE = "offline", "Charger offline"
        FAULTED = "faulted", "Port faulted"
        FAILED_START = "failed_start", "Failed start"
        STUCK_SESSION = "stuck_session", "Stuck session"
        REBOOT_LOOP = "reboot_loop", "Reboot loop"
        CERTIFICATE_EXPIRING = "certificate_expiring", "Certificate expiring"
        UPTIME_BELOW = "uptime_below", "Month's uptime below target"
        # Reported by the app that sees it (power.enforcement), not evaluated here (PUSHED_KINDS).
        POWER_REFUSED = "power_refused", "Charger refused its power limit"
        # Reported by roaming.access_points: a national access point's feed (AFIR) has a change
        # waiting longer than the access point's bound (DOT-NL: 60 s). Not about one charger.
        ACCESS_POINT_BEHIND = "access_point_behind", "Access point feed behind"
        # Reported by fleet.campaigns.services: a firmware campaign halted on failures (docs/firmware.md).
        CAMPAIGN_HALTED = "campaign_halted", "Firmware campaign halted"

    class Remediation(models.TextChoices):
        NONE = "none", "None"
        SOFT_RESET = "soft_reset", "Soft reset"
        TRIGGER_STATUS = "trigger_status", "Ask its status and set it Operative"
        STOP_STUCK = "stop_stuck", "Ask for the transaction, then stop it"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="alert_rules"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    after_s = models.PositiveIntegerField(
        default=300,
        help_text="How long the problem lasts before the alert opens (reboot_loop: the window "
        "the boots are counted in; certificate_expiring: how long before expiry).",
    )
    threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="uptime_below: the percent (default 97); reboot_loop: boots in the window "
        "(default 3).",
    )
    # First aid is off unless chosen, and rate-limited per charger.
    remediation = models.CharField(
        max_length=20, choices=Remediation.choices, default=Remediation.NONE
    )
    remediation_max_per_day = models.PositiveSmallIntegerField(default=2)
    email = models.JSONField(default=list, blank=True)
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_secret = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization_id", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} after {self.after_s} s ({self.organization_id})"


class AlertRecipient(models.Model):
    """An address an organization's alert rules email, and whether it agreed to (issue 47 item
    6): alerts go only to confirmed addresses, one message each. An address equal to a verified
    account email of one of the organization's members is confirmed at once; any other is sent
    a confirmation link first (docs/reliability.md, "Alerts")."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="alert_recipients"
    )
    email = models.EmailField(max_length=254)  # lower case
    key = models.CharField(max_length=64, unique=True)  # the confirmation link's secret
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_how = models.CharField(max_length=20, blank=True)  # "link" | "member_account"
    # When the confirmation link was emailed; empty: still to send (the alerts sweep sends it).
    invited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization_id", "email"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"], name="unique_alert_recipient_per_org"
            )
        ]

    def __str__(self) -> str:
        state = "confirmed" if self.confirmed_at else "unconfirmed"
        return f"{self.email} ({state})"


class Alert(models.Model):
    """One problem of one charger or port under one rule, open until the problem clears."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    # Empty for a problem of the organization's, not of a charger (an access point's feed):
    # `subject` then names it ("access point NL").
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    subject = models.CharField(max_length=40, blank=True)
    connector_id = models.PositiveIntegerField(default=0, help_text="0: the charger as a whole.")
    kind = models.CharField(max_length=20, choices=AlertRule.Kind.choices)
    since = models.DateTimeField(help_text="When the problem began.")
    opened_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    mrec_code = models.CharField(max_length=10, blank=True)
    details = models.CharField(max_length=300, blank=True)
    # First aid tried: [{"action", "sent_at", "result"}], in order.
    remediation = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["charger", "opened_at"], name="alert_charger_opened")]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "charger", "connector_id"],
                condition=models.Q(cleared_at__isnull=True),
                name="one_open_alert_per_problem",
            ),
            models.UniqueConstraint(
                fields=["rule", "subject"],
                condition=models.Q(cleared_at__isnull=True, charger__isnull=True),
                name="one_open_alert_per_subject",
            ),
        ]

    def __str__(self) -> str:
        what = self.subject if self.charger_id is None else f"{self.charger_id}/{self.connector_id}"
        return f"{self.kind} {what} at {self.opened_at:%Y-%m-%d %H:%M}"

    @property
    def duration_s(self) -> float | None:
        if self.cleared_at is None:
            return None
        return (self.cleared_at - self.since).total_seconds()


class AlertDelivery(models.Model):
    """One event of an alert sent (or being retried) to the rule's email or webhook."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=10)  # opened | cleared
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_try_at = models.DateTimeField()
    last_error = models.CharField(max_length=300, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_try_at"], name="alertdelivery_due")]

    def __str__(self) -> str:
        return f"{self.event} {self.channel} {self.target}: {self.status}"


class FaultCode(models.Model):
    """A ChargeX Minimum Required Error Code (MREC), e.g. CX002 GroundFailure (docs/reliability.md
    lists the source of the seeded ones). Editable in the admin."""

    code = models.CharField(max_length=10, unique=True)
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=300, blank=True)
    responsibility = models.CharField(
        max_length=20,
        blank=True,
        help_text="Who MREC says may cause it: U EV user, C charging station operator, "
        "S charging station (EVSE), V vehicle; e.g. 'S, V'.",
    )
    fault_class = models.CharField(
        "class",
        max_length=60,
        blank=True,
        help_text="As MREC gives it, e.g. 'safety, maintenance'.",
    )
    source = models.CharField(
        max_length=300, blank=True, help_text="Where the code's row was read (shown with it)."
    )
    secondary_source = models.BooleanField(
        default=False,
        help_text="The row rests on a secondary source alone: shown as such wherever it appears.",
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class FaultCodeMapping(models.Model):
    """What a charger reports → its MREC code. An empty vendor or vendor code matches any; the
    most specific row wins (vendor and vendor code, then vendor code, then the errorCode)."""

    fault_code = models.ForeignKey(FaultCode, on_delete=models.CASCADE, related_name="mappings")
    error_code = models.CharField(
        max_length=30, blank=True, help_text="OCPP errorCode (1.6), e.g. GroundFailure."
    )
    vendor = models.CharField(max_length=50, blank=True, help_text="The charger's vendor.")
    vendor_error_code = models.CharField(
        max_length=50, blank=True, help_text="vendorErrorCode (1.6) or techCode/techInfo (2.0.1)."
    )

    class Meta:
        ordering = ["fault_code__code", "error_code", "vendor", "vendor_error_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["error_code", "vendor", "vendor_error_code"], name="unique_fault_mapping"
            )
        ]

    def __str__(self) -> str:
        what = self.vendor_error_code or self.error_code
        return f"{what} ({self.vendor or 'any vendor'}) → {self.fault_code.code}"
