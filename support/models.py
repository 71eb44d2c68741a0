"""Support tickets: what a guest or host reports, with the charger facts an agent needs."""

import secrets

from django.conf import settings
from django.db import models


def _ticket_reference() -> str:
    return secrets.token_hex(4).upper()


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
        OTHER = "other", "Something else"

    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "In progress"
        WAITING = "waiting", "Waiting for the customer"
        RESOLVED = "resolved", "Resolved"

    class Source(models.TextChoices):
        GUEST_PAGE = "guest_page", "Guest charging page"
        CONTACT_FORM = "contact_form", "Contact form"

    reference = models.CharField(max_length=8, unique=True, default=_ticket_reference, editable=False)
    topic = models.CharField(max_length=20, choices=Topic.choices, default=Topic.OTHER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.CONTACT_FORM)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField()
    phone = models.CharField(max_length=40, blank=True)
    # What the guest typed or scanned, kept verbatim: an invalid ID is exactly what support must check.
    station_id = models.CharField(max_length=60, blank=True)
    charger = models.ForeignKey(
        "chargers.Charger", on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets"
    )
    property = models.ForeignKey(
        "backoffice.Property", on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets"
    )
    property_name = models.CharField(
        max_length=200, blank=True, help_text="As the customer gave it (the charger's property if known)."
    )
    occurred_at = models.DateTimeField(null=True, blank=True, help_text="When the problem happened.")
    prompt = models.CharField(
        max_length=120, blank=True, help_text="The error prompt the guest saw, if any."
    )
    message = models.TextField()
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    agent_notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="ticket_status_time"),
            models.Index(fields=["station_id"], name="ticket_station"),
        ]

    def __str__(self) -> str:
        return f"#{self.reference} {self.get_topic_display()}"
