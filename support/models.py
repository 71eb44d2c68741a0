"""Support tickets: what a guest or host reports, with the charger facts an agent needs."""

import secrets

from django.conf import settings
from django.db import models


def _ticket_reference() -> str:
    return secrets.token_hex(4).upper()


def _conversation_key() -> str:
    # Unguessable: the key is all an anonymous guest holds to continue a conversation.
    return secrets.token_urlsafe(24)


class Ticket(models.Model):
    """One contact request, from the guest page or the contact form."""

    class Topic(models.TextChoices):
        # The sections of the support article (seed 003), in its words.
        OFFLINE = "offline", "Charger is offline or not working"
        NOT_CHARGING = "not_charging", "Plugged in but the car is not charging or keeps stopping"
        NOT_ALLOWED = "not_allowed", "“Not allowed to use this charger” or “No permission”"
        BILLING = "billing", "Overcharge, idle fee or refund request"
        COST = "cost", "Why is this session so expensive? (cost breakdown)"
        ACCOUNT = "account", "Cancel a subscription, delete an account or remove a card"
        EMAIL_CHANGE = "email_change", "Change my email or account details"
        ASSIGNMENT = "assignment", "Assign chargers to properties or sync with a PMS"
        GUEST_START = "guest_start", "Guest can't start a charge (QR code or app errors)"
        PAYOUTS = "payouts", "Payouts, reporting and usage history"
        LICENSE = "license", "Activate or renew a charger's license"
        OTHER = "other", "Something else"

    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "In progress"
        WAITING = "waiting", "Waiting for the customer"
        RESOLVED = "resolved", "Resolved"

    class Source(models.TextChoices):
        GUEST_PAGE = "guest_page", "Guest charging page"
        CONTACT_FORM = "contact_form", "Contact form"
        ASSISTANT = "assistant", "Support assistant"
        PORTAL = "portal", "Host portal"

    reference = models.CharField(
        max_length=8, unique=True, default=_ticket_reference, editable=False
    )
    topic = models.CharField(max_length=20, choices=Topic.choices, default=Topic.OTHER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.CONTACT_FORM)
    name = models.CharField(max_length=200, blank=True)
    # Empty when the assistant handed over before the customer gave an address.
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    # What the guest typed or scanned, kept verbatim: an invalid ID is exactly what support must check.
    station_id = models.CharField(max_length=60, blank=True)
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets"
    )
    property = models.ForeignKey(
        "backoffice.Property",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
    )
    property_name = models.CharField(
        max_length=200,
        blank=True,
        help_text="As the customer gave it (the charger's property if known).",
    )
    occurred_at = models.DateTimeField(
        null=True, blank=True, help_text="When the problem happened."
    )
    prompt = models.CharField(
        max_length=120, blank=True, help_text="The error prompt the guest saw, if any."
    )
    message = models.TextField()
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    agent_notes = models.TextField(blank=True)
    # The host organization the ticket concerns (its charger's, or the asking host's): hosts see
    # their organizations' tickets in the portal.
    organization = models.ForeignKey(
        "backoffice.Organization",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    session = models.ForeignKey(
        "chargers.ChargingSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The signed-in host who asked, if any.",
    )
    # What the assistant collected (asks_for names -> values) and found when it handed over.
    details = models.JSONField(default=dict, blank=True)
    bundle = models.JSONField(default=dict, blank=True, help_text="Diagnostic bundle at hand-off.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="ticket_org_time"),
            models.Index(fields=["status", "-created_at"], name="ticket_status_time"),
            models.Index(fields=["station_id"], name="ticket_station"),
        ]

    def __str__(self) -> str:
        return f"#{self.reference} {self.get_topic_display()}"


class TicketMessage(models.Model):
    """One email of a ticket's thread: an agent's reply sent, or the customer's reply received."""

    class Direction(models.TextChoices):
        OUT = "out", "Sent to the customer"
        IN = "in", "Received from the customer"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="thread")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_email = models.EmailField(blank=True)
    from_email = models.EmailField(blank=True)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    # RFC 5322 Message-ID, and the one it answers: mail clients thread on these.
    message_id = models.CharField(max_length=200, unique=True)
    in_reply_to = models.CharField(max_length=200, blank=True)
    delivered = models.BooleanField(default=False)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} on #{self.ticket.reference}: {self.subject}"


class AssistantConversation(models.Model):
    """A chat with the support assistant: what was said, the topic, the details collected."""

    key = models.CharField(max_length=40, unique=True, default=_conversation_key, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    topic = models.CharField(max_length=20, default="other")
    station_id = models.CharField(max_length=60, blank=True)
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    session = models.ForeignKey(
        "chargers.ChargingSession",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    email = models.EmailField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    # [{"role": "user"|"assistant", "text": ..., "at": iso, "topic": ...}]
    messages = models.JSONField(default=list, blank=True)
    ticket = models.ForeignKey(
        Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="conversations"
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"Conversation {self.key[:8]} ({self.topic})"


class VendorErrorCode(models.Model):
    """A charger vendor's error code (StatusNotification vendorErrorCode) in plain language."""

    vendor = models.CharField(
        max_length=50, help_text="As the charger reports it in BootNotification (case-insensitive)."
    )
    code = models.CharField(max_length=50)
    explanation = models.CharField(max_length=400)
    advice = models.CharField(
        max_length=400, blank=True, help_text="What the guest or host should do."
    )

    class Meta:
        ordering = ["vendor", "code"]
        constraints = [
            models.UniqueConstraint(fields=["vendor", "code"], name="unique_vendor_error_code")
        ]

    def __str__(self) -> str:
        return f"{self.vendor} {self.code}"


class QuarantinedEmail(models.Model):
    """An inbound email that names a ticket but not from its customer: kept apart for an agent.

    Replies are attached only when the sender is the ticket's customer (support.inbound); anything
    else that points at a ticket lands here, so a customer writing from another address is not lost
    and a forged reply never reaches the thread. Mail that names no ticket is logged and dropped.
    """

    class Reason(models.TextChoices):
        SENDER_MISMATCH = "sender_mismatch", "Sender is not the ticket's customer"

    message_id = models.CharField(max_length=200, unique=True)
    transport = models.CharField(max_length=10, help_text="mime (mail hook) or mailgun.")
    from_email = models.CharField(max_length=254, blank=True)
    to_email = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    ticket = models.ForeignKey(
        Ticket,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="quarantined_emails",
        help_text="The ticket the email names (by its headers or subject).",
    )
    received_at = models.DateTimeField(auto_now_add=True)
    # Set when an agent, having checked the sender, attached it to the ticket's thread.
    attached_message = models.OneToOneField(
        TicketMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_email}: {self.subject}"
