"""Fleet operations: firmware releases, campaigns that roll them out in stages, each charger's
part in a campaign, and the properties' maintenance windows (docs/firmware.md)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

SHA256 = RegexValidator(r"^[0-9a-f]{64}$", "A SHA-256 checksum: 64 lower-case hex digits.")


class FirmwareRelease(models.Model):
    """A firmware image for one vendor/model, where the chargers download it (HTTPS), its
    checksum and, for signed updates, the signing certificate and signature (L01)."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="firmware_releases"
    )
    version = models.CharField(
        max_length=50, help_text="The firmwareVersion the charger reports once installed."
    )
    vendor = models.CharField(max_length=50)
    model = models.CharField(max_length=50, blank=True, help_text="Empty: every model.")
    # Where the chargers download it, over HTTPS (L01.FR.08): a URL of ours or the vendor's.
    # This server never calls it (the chargers do), so it is checked for https only, not by
    # backoffice.outbound's public-address rules (docs/firmware.md).
    location = models.URLField(max_length=512)
    sha256 = models.CharField(max_length=64, validators=[SHA256])
    signing_certificate = models.TextField(
        blank=True, help_text="PEM of the manufacturer's firmware signing certificate."
    )
    signature = models.TextField(blank=True, help_text="Base64 signature of the firmware file.")
    bad = models.BooleanField(
        default=False, help_text="Held: no campaign sends it to another charger."
    )
    bad_reason = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    # Hosted by us (fleet.campaigns.hosting): the download's unguessable key, the file's name and size.
    file_key = models.CharField(max_length=40, blank=True, db_index=True, editable=False)
    file_name = models.CharField(max_length=100, blank=True, editable=False)
    file_size = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "vendor", "model", "version"], name="unique_release"
            )
        ]

    def __str__(self) -> str:
        return f"{self.vendor} {self.model or '*'} {self.version}"

    @property
    def signed(self) -> bool:
        return bool(self.signing_certificate and self.signature)


class MaintenanceWindow(models.Model):
    """When firmware may be installed at a property, in its local time; `end` before `start`
    crosses midnight. A property without one is not restricted."""

    property = models.OneToOneField(
        "backoffice.Property", on_delete=models.CASCADE, related_name="maintenance_window"
    )
    start = models.TimeField()
    end = models.TimeField()

    def __str__(self) -> str:
        return f"{self.property_id}: {self.start:%H:%M}-{self.end:%H:%M}"


class Campaign(models.Model):
    """A release rolled out to a set of chargers: a canary share first, then waves, each only
    while the success rate holds; halted when failures reach `max_failures`."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        HELD = "held", "Held (release marked bad)"
        HALTED = "halted", "Halted"
        COMPLETED = "completed", "Completed"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="firmware_campaigns"
    )
    name = models.CharField(max_length=200)
    release = models.ForeignKey(FirmwareRelease, on_delete=models.PROTECT, related_name="campaigns")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.CharField(max_length=300, blank=True)
    canary_share = models.FloatField(
        default=0.1, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    wave_size = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    success_threshold = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="The share of finished updates that must have succeeded before the next wave.",
    )
    max_failures = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Failures that halt the campaign."
    )
    report_timeout_s = models.PositiveIntegerField(
        default=3600,
        validators=[MinValueValidator(60)],
        help_text="A charger that reports nothing for this long after the update was sent failed.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class CampaignTarget(models.Model):
    """One charger in a campaign: its stage, what was sent, and how it ended."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for its stage"
        SENT = "sent", "Update sent"
        SUCCEEDED = "succeeded", "Booted with the new version"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    class Method(models.TextChoices):
        PLAIN = "plain", "UpdateFirmware (1.6)"
        SIGNED = "signed", "SignedUpdateFirmware (1.6)"
        V201 = "v201", "UpdateFirmware (2.0.1)"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="targets")
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="firmware_targets"
    )
    position = models.PositiveIntegerField(help_text="Order of rollout (canary first).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    method = models.CharField(max_length=8, choices=Method.choices, blank=True)
    request_id = models.IntegerField(null=True, blank=True)
    operation = models.ForeignKey(
        "chargers.ChargerOperation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The charger's firmware operation: its status notifications.",
    )
    previous_version = models.CharField(max_length=50, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_report_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "charger"], name="unique_campaign_charger")
        ]
        indexes = [models.Index(fields=["status", "campaign"], name="target_status")]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.charger_id}: {self.status}"


class TargetEvent(models.Model):
    """One step of a charger's update as the campaign saw it (queued, sent, the answer, each
    firmware status, the boot, the verdict): the target's timeline."""

    target = models.ForeignKey(CampaignTarget, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    status = models.CharField(max_length=40)
    details = models.CharField(max_length=300, blank=True)
    # Where it came from ("status:<ChargerOperationStatus id>"): recorded once.
    source = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "source"], condition=~models.Q(source=""), name="unique_tev_src"
            )
        ]

    def __str__(self) -> str:
        return f"{self.target_id} {self.status}"


class Baseline(models.Model):
    """The configuration one vendor/model should have on one protocol: 1.6 keys and values, or
    2.0.1 component/variable values (docs/operations.md "Configuration baselines"). Its
    `version` grows with every change of its settings: a charger is compared, and a reboot is
    asked, per version."""

    class Protocol(models.TextChoices):
        V16 = "1.6", "OCPP 1.6 (ChangeConfiguration)"
        V201 = "2.0.1", "OCPP 2.0.1 and 2.1 (SetVariables)"

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="config_baselines"
    )
    name = models.CharField(max_length=100)
    vendor = models.CharField(max_length=50)
    model = models.CharField(max_length=50, blank=True, help_text="Empty: every model.")
    protocol = models.CharField(max_length=5, choices=Protocol.choices)
    version = models.PositiveIntegerField(default=1, editable=False)
    apply_on_boot = models.BooleanField(
        default=True,
        help_text="Apply after a boot with another firmware, vendor or model, or when this "
        "version was never applied; a reconnect that changes nothing is left alone.",
    )
    reboot_when_required = models.BooleanField(
        default=True,
        help_text="Reset the charger once per version when a value needs a reboot (never on "
        "1.6 during a session).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["vendor", "model", "protocol", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "vendor", "model", "protocol"], name="unique_baseline"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.vendor} {self.model or '*'}, {self.protocol})"


class BaselineSetting(models.Model):
    """One value of a baseline: a 1.6 configuration key (`variable`), or a 2.0.1 variable of a
    component (evse 0 / connector 0: not on an EVSE / connector, as in the device model)."""

    baseline = models.ForeignKey(Baseline, on_delete=models.CASCADE, related_name="settings")
    component = models.CharField(max_length=50, blank=True, help_text="2.0.1 only.")
    component_instance = models.CharField(max_length=50, blank=True)
    evse_id = models.PositiveIntegerField(default=0)
    connector_id = models.PositiveIntegerField(default=0)
    variable = models.CharField(max_length=50, help_text="1.6: the configuration key.")
    variable_instance = models.CharField(max_length=50, blank=True)
    attribute_type = models.CharField(max_length=8, default="Actual")
    # 1.6 ChangeConfiguration value: 500 characters; 2.0.1 attributeValue: 1000.
    value = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["component", "variable", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "baseline",
                    "component",
                    "component_instance",
                    "evse_id",
                    "connector_id",
                    "variable",
                    "variable_instance",
                    "attribute_type",
                ],
                name="unique_baseline_setting",
            )
        ]

    def __str__(self) -> str:
        return f"{self.component + '.' if self.component else ''}{self.variable}={self.value}"


class BaselineApplication(models.Model):
    """A charger's last application of a baseline: the version, what the charger was (vendor,
    model, firmware) and each value's answer in its protocol's words; whether a reboot was
    asked for this version (once, never again for it)."""

    class Outcome(models.TextChoices):
        QUEUED = "queued", "Queued"
        APPLIED = "applied", "Applied"
        REBOOT = "reboot", "Applied; takes effect after a reboot"
        PARTIAL = "partial", "Some values refused"
        OFFLINE = "offline", "Charger offline"
        FAILED = "failed", "No answer"

    baseline = models.ForeignKey(Baseline, on_delete=models.CASCADE, related_name="applications")
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="baseline_applications"
    )
    version = models.PositiveIntegerField(default=0)
    fingerprint = models.CharField(max_length=160, blank=True)
    trigger = models.CharField(max_length=10, blank=True)  # boot, demand
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.QUEUED)
    results = models.JSONField(default=list, blank=True)
    requested_at = models.DateTimeField(
        null=True, blank=True, help_text="Asked on demand; the sweep applies it."
    )
    reboot_asked_version = models.PositiveIntegerField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["baseline", "charger"]
        constraints = [
            models.UniqueConstraint(fields=["baseline", "charger"], name="unique_baseline_charger")
        ]

    def __str__(self) -> str:
        return f"{self.baseline_id}/{self.charger_id}: {self.outcome}"
