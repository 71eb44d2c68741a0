"""Driver accounts: the driver's profile, saved cards and the guest sessions they claimed."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DriverProfile(models.Model):
    """Marks a user as a driver (never a host): signed up through the driver pages."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="driver_profile"
    )
    # The payment processor's Customer holding the saved cards (created with the first card).
    customer_ref = models.CharField(max_length=100, blank=True)
    # Addresses the driver used before a change of email: payments and guest sessions made with
    # them are theirs too, and are erased with the account.
    former_emails = models.JSONField(default=list, blank=True)
    # A business driver's details for the receipts issued from now on (docs/billing.md, Receipts).
    company_name = models.CharField(max_length=200, blank=True)
    vat_id = models.CharField(max_length=20, blank=True)
    # The app token the driver charges with on partner networks (OCPI APP_USER, issued by the
    # eMSP identity that serves driver accounts; roaming.EmspIdentity.driver_accounts).
    roaming_token = models.OneToOneField(
        "authorization.Token",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="driver_profile",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Driver {self.pk}"


class SavedCard(models.Model):
    """A card saved at the processor (a PaymentMethod); only brand, last 4 and expiry are kept."""

    profile = models.ForeignKey(DriverProfile, on_delete=models.CASCADE, related_name="cards")
    reference = models.CharField(
        max_length=100, unique=True, help_text="The processor's PaymentMethod id."
    )
    brand = models.CharField(max_length=20, blank=True)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["profile"], condition=models.Q(is_default=True), name="one_default_card"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"


class ClaimedSession(models.Model):
    """A guest QR session paid with the driver's verified email, now in their history."""

    profile = models.ForeignKey(
        DriverProfile, on_delete=models.CASCADE, related_name="claimed_sessions"
    )
    guest_session = models.OneToOneField(
        "guest.GuestSession", on_delete=models.CASCADE, related_name="+"
    )
    claimed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-guest_session__created_at"]

    def __str__(self) -> str:
        return f"{self.profile_id}: guest session {self.guest_session_id}"


class DriverSignIn(models.Model):
    """The session of each driver sign-in: sessions copy the sign-in email (allauth), so they
    are ended and deleted with the account, on every device."""

    profile = models.ForeignKey(DriverProfile, on_delete=models.CASCADE, related_name="sign_ins")
    session_key = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.profile_id} sign-in {self.created_at:%Y-%m-%d %H:%M}"
