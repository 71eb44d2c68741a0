"""Signed metering: the meters' public keys and the signed readings of each session."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q

from chargers.ocpp.energy import METER_DIGITS, WH_PLACES


class MeterKey(models.Model):
    """A meter's public key, registered for a charger by a host or an agent (OCMF signatures
    of this meter are checked with it).

    The meter is named by its serial as it signs it (OCMF MS), or, for a meter whose OCMF names
    no serial, by the connector (1.6) or EVSE (2.0.1) it measures: exactly one of the three.
    A key read from the charger's own configuration (1.6 `MeterPublicKey[ConnectorID]`, 2.0.1
    FiscalMetering.PublicKey, OCA signed meter values note 3.3.1 / 4.3.2) verifies nothing until
    a person confirms it matches the key printed on the meter: the charger vouching for its own
    meter is no proof. A key a person registers is confirmed by that act."""

    class Source(models.TextChoices):
        PERSON = "person", "Registered by a person"
        CHARGER = "charger", "Read from the charger's configuration"

    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.CASCADE, related_name="meter_keys"
    )
    meter_serial = models.CharField(
        max_length=64,
        blank=True,
        help_text="The meter's serial number as the meter signs it (OCMF MS); empty for a meter "
        "whose OCMF names none (then its connector or EVSE names it).",
    )
    connector_id = models.PositiveIntegerField(
        null=True, blank=True, help_text="OCPP 1.6: the connector whose meter this is."
    )
    evse_id = models.PositiveIntegerField(
        null=True, blank=True, help_text="OCPP 2.0.1: the EVSE whose meter this is."
    )
    public_key = models.BinaryField(help_text="DER SubjectPublicKeyInfo (ECDSA).")
    signing_method = models.CharField(max_length=50, default="ECDSA-secp256r1-SHA256")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.PERSON)
    confirmed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a person confirmed the key matches the one printed on the meter; "
        "empty: it verifies no reading yet.",
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
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
        ordering = ["charger", "meter_serial", "connector_id", "evse_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charger", "meter_serial"],
                condition=~Q(meter_serial=""),
                name="unique_meter_key",
            ),
            models.UniqueConstraint(
                fields=["charger", "connector_id"],
                condition=Q(connector_id__isnull=False),
                name="unique_meter_key_connector",
            ),
            models.UniqueConstraint(
                fields=["charger", "evse_id"],
                condition=Q(evse_id__isnull=False),
                name="unique_meter_key_evse",
            ),
            models.CheckConstraint(
                condition=(
                    (~Q(meter_serial="") & Q(connector_id__isnull=True) & Q(evse_id__isnull=True))
                    | (Q(meter_serial="") & Q(connector_id__isnull=False) & Q(evse_id__isnull=True))
                    | (Q(meter_serial="") & Q(connector_id__isnull=True) & Q(evse_id__isnull=False))
                ),
                name="meter_key_one_identity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identity} on {self.charger_id}"

    @property
    def public_key_hex(self) -> str:
        return bytes(self.public_key).hex()

    @property
    def fingerprint(self) -> str:
        """The key's short name to compare by eye: the first 16 bytes of the SHA-256 of its DER
        encoding, in groups of four hex digits ("3f2a 91c0 …")."""
        digest = hashlib.sha256(bytes(self.public_key)).hexdigest()[:32]
        return " ".join(digest[i : i + 4] for i in range(0, 32, 4))

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None

    @property
    def port(self) -> int | None:
        """The connector (1.6) or EVSE (2.0.1) this key is registered by, if not by serial."""
        return self.connector_id if self.connector_id is not None else self.evse_id

    @property
    def identity(self) -> str:
        if self.meter_serial:
            return f"meter {self.meter_serial}"
        if self.connector_id is not None:
            return f"connector {self.connector_id}"
        return f"EVSE {self.evse_id}"


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
