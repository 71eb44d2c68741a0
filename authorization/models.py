"""Tokens (charging cards and app ids), local token groups, MSPs and recorded decisions."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower


def normalize_uid(uid: str) -> str:
    """Return the matching key for a card UID: case-insensitive, without separators.

    Readers print the same chip as `04a1b2c3`, `04A1B2C3` or `04:A1:B2:C3`.
    """
    return "".join(ch for ch in uid.strip().upper() if ch not in ": -")


_HEX_WITH_SEPARATORS = frozenset("0123456789abcdefABCDEF :-")


def typed_uid(text: str) -> str:
    """Return a UID someone typed the way chargers send it (issue 35 item 10).

    A chip number typed with spaces, colons or dashes, or in lower case ("04 a1 b2 c3 ff",
    "04:A1:B2:C3:FF") is stored as the charger's idTag reads it: 04A1B2C3FF. Anything that is not a
    hex chip number (an app id such as "NL-PLS-0001") is kept as typed, trimmed. Either way the
    token is found by both spellings through normalize_uid.
    """
    text = text.strip()
    if text and set(text) <= _HEX_WITH_SEPARATORS and any(ch.isalnum() for ch in text):
        return normalize_uid(text)
    return text


class MobilityServiceProvider(models.Model):
    """Another network whose cards may charge here (an eMSP in OCPI terms)."""

    class OnTimeout(models.TextChoices):
        REJECT = "reject", "Reject the card"
        ACCEPT = "accept", "Accept the card"

    organization = models.ForeignKey(
        "backoffice.Organization",
        on_delete=models.CASCADE,
        related_name="msps",
        help_text="The operator that has this roaming relation.",
    )
    name = models.CharField(max_length=200)
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    blocked = models.BooleanField(default=False)
    live_validation_url = models.URLField(
        blank=True, help_text="OCPI tokens endpoint, e.g. https://msp.example/ocpi/2.2.1/tokens"
    )
    live_validation_token = models.CharField(max_length=400, blank=True)
    # The OCPI version its tokens endpoint speaks (set by roaming when the partner connects):
    # a contract (eMAID) is asked live as type EMAID from 2.3.0 on, as OTHER in 2.2.1.
    ocpi_version = models.CharField(max_length=10, blank=True)
    # Reached through a hub (set by roaming when a hub routes this party): the tokens endpoint is
    # the hub's, and each live ask carries OCPI routing headers to this provider's party.
    via_hub = models.BooleanField(
        default=False,
        help_text="Reached through a hub: live checks go to the hub's tokens endpoint with OCPI "
        "routing headers to this provider's party (set by roaming).",
    )
    timeout_s = models.PositiveSmallIntegerField(default=15)
    on_timeout = models.CharField(max_length=6, choices=OnTimeout.choices, default=OnTimeout.REJECT)
    tokens_synced_at = models.DateTimeField(null=True, blank=True)
    # The provider's last refusal of OUR credentials on a live check (HTTP 401/403), in words,
    # and when; emptied by its next answer about a card (authorization.services).
    live_error = models.CharField(max_length=500, blank=True)
    live_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "mobility service provider"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "country_code", "party_id"], name="unique_msp_party"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.country_code}*{self.party_id})"


class Token(models.Model):
    # The labels of the one-time GUEST tokens: what the decision log calls them.
    GUEST_SESSION_LABEL = "Guest QR session"
    DRIVER_SESSION_LABEL = "Signed-in driver's session"

    class Type(models.TextChoices):
        RFID = "RFID", "RFID card"
        APP = "APP", "App user"
        OTHER = "OTHER", "Other"
        # A Plug & Charge contract: the uid is the eMAID the car presents (ISO 15118).
        EMAID = "EMAID", "Contract (eMAID)"
        GUEST = "GUEST", "Guest QR session"

    class Whitelist(models.TextChoices):
        # mod_tokens "WhitelistType": when the card's provider must be asked live.
        ALWAYS = "ALWAYS", "Always whitelisted: never asked live"
        ALLOWED = "ALLOWED", "Whitelisted (the provider allows it)"
        ALLOWED_OFFLINE = (
            "ALLOWED_OFFLINE",
            "Asked live; accepted when the provider cannot be reached",
        )
        NEVER = "NEVER", "Always asked live"

    uid = models.CharField(
        max_length=36, help_text="As printed on the card or read by the charger."
    )
    uid_normalized = models.CharField(max_length=36, db_index=True, editable=False)
    type = models.CharField(max_length=5, choices=Type.choices, default=Type.RFID)
    valid = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    blocked = models.BooleanField(default=False)
    organization = models.ForeignKey(
        "backoffice.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tokens",
    )
    msp = models.ForeignKey(
        MobilityServiceProvider,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tokens",
    )
    parent_id_tag = models.CharField(max_length=20, blank=True)
    allowed_station_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="Reimbursement: this card may only charge at these Station IDs. Empty = anywhere.",
    )
    single_session = models.BooleanField(
        default=False, help_text="Refuse a second session while this card has one running."
    )
    label = models.CharField(max_length=200, blank=True)
    # A guest token issued for a reservation's access code (docs/pms.md): the stay decides.
    reservation = models.ForeignKey(
        "stays.Reservation", on_delete=models.SET_NULL, null=True, blank=True, related_name="tokens"
    )
    # OCPI 2.2.1 WhitelistType of a token an eMSP pushed (mod_tokens); empty for other tokens.
    whitelist = models.CharField(max_length=15, choices=Whitelist.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["uid"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "uid_normalized"], name="unique_org_token"
            ),
            models.UniqueConstraint(fields=["msp", "uid_normalized"], name="unique_msp_token"),
            models.CheckConstraint(
                condition=models.Q(organization__isnull=False) | models.Q(msp__isnull=False),
                name="token_has_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.uid

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.uid_normalized = normalize_uid(self.uid)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not self.organization_id and not self.msp_id:
            raise ValidationError("A token belongs to an organization or to a mobility provider.")


class TokenGroup(models.Model):
    """A local token group: a named whitelist of cards owned by an organization."""

    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, related_name="token_groups"
    )
    name = models.CharField(max_length=200)
    tokens = models.ManyToManyField(Token, related_name="groups", blank=True)
    restricted_properties = models.ManyToManyField(
        "backoffice.Property",
        related_name="restricted_token_groups",
        blank=True,
        help_text="Chargers at these properties accept only cards of their restricted groups.",
    )
    version = models.PositiveIntegerField(
        default=1, help_text="Bumped on every change; sent as the local list version."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # "Staff" and "staff" are one group to the people who pick it: case-insensitive, as
            # the form's and the API's check (two created at once cannot both pass).
            models.UniqueConstraint(
                models.F("organization"),
                Lower("name"),
                name="unique_group_name_ci",
                violation_error_message="A group with this name exists already.",
            )
        ]

    def __str__(self) -> str:
        return self.name


def not_alarms() -> models.Q:
    """The refusals nobody needs to act on, left out of the dashboard's Needs attention and the
    Support page: a spent guest token (`decisions.NOT_ALARMS`), and any refusal at the stop of a
    guest's one-time token (recorded so before the reason existed): its session ran and ended."""
    from .decisions import NOT_ALARMS

    return models.Q(reason__in=NOT_ALARMS) | models.Q(
        context=AuthorizationDecision.Context.STOP_TRANSACTION, token__type=Token.Type.GUEST
    )


class AuthorizationDecision(models.Model):
    """Why a card was accepted or rejected, recorded for every Authorize, start and remote start."""

    class Context(models.TextChoices):
        LOCAL = "local", "Card at the charger"
        START_TRANSACTION = "start_transaction", "StartTransaction"
        REMOTE_APP = "remote_app", "Remote start from the app / portal"
        REMOTE_MSP = "remote_msp", "Remote start from an MSP"
        STOP_TRANSACTION = "stop_transaction", "StopTransaction (status for the charger's cache)"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    uid = models.CharField(max_length=36)
    uid_normalized = models.CharField(max_length=36, db_index=True)
    token = models.ForeignKey(
        Token, on_delete=models.SET_NULL, null=True, blank=True, related_name="decisions"
    )
    organization = models.ForeignKey(
        "backoffice.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    station_id = models.CharField(max_length=48)
    connector_id = models.IntegerField(null=True, blank=True)
    context = models.CharField(max_length=20, choices=Context.choices)
    status = models.CharField(max_length=12)
    reason = models.CharField(max_length=40, db_index=True)
    step = models.PositiveSmallIntegerField()
    message = models.TextField()
    msp = models.ForeignKey(
        MobilityServiceProvider, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    msp_response = models.JSONField(null=True, blank=True)
    msp_latency_ms = models.IntegerField(null=True, blank=True)
    ocpp_unique_id = models.CharField(max_length=36, blank=True)
    # The stay whose access code was used (allowed or refused by it).
    reservation = models.ForeignKey(
        "stays.Reservation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="decisions",
    )
    # Behind the proxy (docs/proxy.md) with an upstream Leader: what the Leader answered (the
    # charger obeyed it), or leader_answered=False when it was unreachable and we answered.
    leader_name = models.CharField(max_length=100, blank=True)
    leader_status = models.CharField(max_length=20, blank=True)
    leader_answered = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["station_id", "-created_at"], name="authdec_station_time")]

    def __str__(self) -> str:
        return f"{self.uid} at {self.station_id}: {self.status} ({self.reason})"

    @property
    def leader_summary(self) -> str:
        """Behind the proxy: who the charger obeyed, e.g. "Leader Acme CSMS answered Invalid;
        this system would accept (accepted_group)". Empty when this system leads."""
        if not self.leader_name:
            return ""
        if self.leader_answered is False:
            return f"Leader {self.leader_name} did not answer in time; this system answered {self.status} ({self.reason})"
        ours = "accept" if self.status == "Accepted" else f"refuse: {self.status}"
        return f"Leader {self.leader_name} answered {self.leader_status}; this system would {ours} ({self.reason})"
