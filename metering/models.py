"""Signed metering: the meters' public keys and the signed readings of each session."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from chargers.sessions.energy import METER_DIGITS, WH_PLACES


class MeterKey(models.Model):
    """A meter's public key, registered for a charger by a host or an agent (OCMF signatures
    of this meter are checked with it)."""

    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="meter_keys"
    )
    meter_serial = models.CharField(
        max_length=64, help_text="The meter's serial number as the meter signs it (OCMF MS)."
    )
    public_key = models.BinaryField(help_text="DER SubjectPublicKeyInfo (ECDSA).")
    signing_method = models.CharField(max_length=50, default="ECDSA-secp256r1-SHA256")
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["charger", "meter_serial"]
        constraints = [
            models.UniqueConstraint(fields=["charger", "meter_serial"], name="unique_meter_key")
        ]

    def __str__(self) -> str:
        return f"{self.meter_serial} on {self.charger_id}"

    @property
    def public_key_hex(self) -> str:
        return bytes(self.public_key).hex()


class SignedReading(models.Model):
    """One signed meter reading of a session, kept as the charger sent it, with the result of
    checking it (metering.ocmf)."""

    class Nature(models.TextChoices):
        START = "start", "Start"
        END = "end", "End"
        INTERMEDIATE = "intermediate", "Intermediate"

    class Status(models.TextChoices):
        VERIFIED = "verified", "Verified"
        INVALID_SIGNATURE = "invalid_signature", "Invalid signature"
        UNKNOWN_KEY = "unknown_key", "Unknown key"
        MALFORMED = "malformed", "Malformed"

    session = models.ForeignKey(
        "chargers.ChargingSession", on_delete=models.CASCADE, related_name="signed_readings"
    )
    nature = models.CharField(max_length=12, choices=Nature.choices)
    raw = models.TextField(help_text="The OCMF text (OCMF|payload|signature), as signed.")
    sent = models.TextField(blank=True, help_text="The value as OCPP carried it, when wrapped.")
    encoding = models.CharField(max_length=50, default="OCMF")
    signing_method = models.CharField(max_length=50, blank=True)
    public_key_sent = models.TextField(blank=True, help_text="publicKey sent with the value.")
    meter_serial = models.CharField(max_length=64, blank=True)
    pagination = models.CharField(max_length=20, blank=True)
    value_wh = models.DecimalField(
        max_digits=METER_DIGITS, decimal_places=WH_PLACES, null=True, blank=True
    )
    time = models.DateTimeField(null=True, blank=True, help_text="The meter's clock (OCMF TM).")
    status = models.CharField(max_length=20, choices=Status.choices)
    reason = models.CharField(max_length=200, blank=True)
    verified_at = models.DateTimeField(auto_now=True)
    # sha256 of nature + OCMF text: a value sent twice (a 2.0.1 Ended repeating the Started
    # one, a resent message) is stored once.
    digest = models.CharField(max_length=64)

    class Meta:
        ordering = ["session", "time", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "digest"], name="unique_signed_reading")
        ]

    def __str__(self) -> str:
        return f"{self.nature} {self.value_wh} Wh of session {self.session_id}: {self.status}"
