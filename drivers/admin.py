"""Driver accounts in the admin. An agent's cancel, delete, card removal and email change run the
driver's own self-service (drivers.services, billing.services): one code path, and each
confirmation page says what it does at the processor and on the driver's pages (issue 34)."""

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from billing.gateways import GatewayError
from support.admin import SupportUserAdmin

from . import selectors, services
from .models import ClaimedSession, DriverProfile, SavedCard


class SavedCardInline(admin.TabularInline):
    model = SavedCard
    extra = 0
    fields = ("brand", "last4", "exp_month", "exp_year", "is_default", "created_at", "remove")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Remove")
    def remove(self, obj: SavedCard) -> str:
        url = reverse("admin:drivers_driverprofile_card_remove", args=[obj.profile_id, obj.pk])
        return format_html('<a href="{}">Remove (detach at the processor)</a>', url)


@admin.register(DriverProfile)
class DriverProfileAdmin(admin.ModelAdmin):
    # Agents find a driver by email (the username of a driver is internal).
    list_display = ["email", "customer_ref", "created_at"]
    search_fields = ["user__email", "former_emails", "customer_ref", "cards__last4"]
    list_select_related = ["user"]
    autocomplete_fields = ["user"]
    readonly_fields = ["customer_ref", "former_emails", "created_at"]
    inlines = [SavedCardInline]

    @admin.display(description="Email", ordering="user__email")
    def email(self, obj: DriverProfile) -> str:
        return obj.user.email

    def get_urls(self) -> list:
        return [
            path(
                "<int:profile_id>/cards/<int:card_id>/remove/",
                self.admin_site.admin_view(self.card_remove_view),
                name="drivers_driverprofile_card_remove",
            ),
            *super().get_urls(),
        ]

    def card_remove_view(self, request: HttpRequest, profile_id: int, card_id: int) -> HttpResponse:
        """Confirm, then remove the card as the driver's own Remove does (detach at the processor)."""
        profile = get_object_or_404(DriverProfile.objects.select_related("user"), pk=profile_id)
        card = get_object_or_404(SavedCard, pk=card_id, profile=profile)
        if not self.has_change_permission(request, profile):
            raise PermissionDenied
        back = reverse("admin:drivers_driverprofile_change", args=[profile.pk])
        if request.method == "POST":
            try:
                services.card_remove(profile=profile, card_id=card.pk)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(
                    request, f"{card} was detached at the payment processor and removed."
                )
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Remove {card}",
            "profile": profile,
            "card": card,
            "pays_plans": card.is_default
            and selectors.subscriptions_for(profile).filter(status="active").exists(),
            "back": back,
        }
        return TemplateResponse(request, "admin/drivers/card_remove.html", context)


@admin.register(ClaimedSession)
class ClaimedSessionAdmin(admin.ModelAdmin):
    list_display = ["email", "guest_session", "claimed_at"]
    search_fields = ["profile__user__email", "guest_session__charger__station_id"]
    list_select_related = ["profile__user", "guest_session__charger"]
    autocomplete_fields = ["profile"]
    autocomplete_fields = ["guest_session"]

    @admin.display(description="Driver", ordering="profile__user__email")
    def email(self, obj: ClaimedSession) -> str:
        return obj.profile.user.email


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class DriverAwareUserAdmin(SupportUserAdmin):
    """Users: a driver's account is deleted by the driver's own account_delete, after a page that
    lists their active plans and says what happens to their saved cards at the processor."""

    delete_confirmation_template = "admin/drivers/user_delete_confirmation.html"

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        # One account at a time, on the page that says what deleting it does.
        actions.pop("delete_selected", None)
        return actions

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = self.get_object(request, unquote(object_id))
        summary = selectors.account_delete_summary(user) if user is not None else None
        if user is None or summary is None:
            return super().delete_view(request, object_id, extra_context)
        if request.method == "POST" and request.POST.get("post"):
            assert request.user.pk is not None  # the admin's views are for signed-in staff
            if not self.has_delete_permission(request, user):
                raise PermissionDenied
            pk = user.pk
            # Not inside the admin's transaction: the processor is called first (services).
            try:
                services.account_delete(user=user)
            except GatewayError as exc:
                # The processor is asked before anything here is erased: the account is whole
                # and the same deletion can be asked again.
                self.message_user(
                    request,
                    f"Driver account {pk} was not deleted: {exc} Nothing of the account was "
                    "erased here; delete it again once the processor answers.",
                    messages.ERROR,
                )
                return HttpResponseRedirect(reverse("admin:auth_user_delete", args=[pk]))
            LogEntry.objects.create(
                user_id=request.user.pk,
                content_type_id=ContentType.objects.get_for_model(User).pk,
                object_id=str(pk),
                object_repr=f"Driver account {pk}",  # not their email: it was just erased
                action_flag=DELETION,
                change_message="Deleted with the driver's own account deletion",
            )
            self.message_user(
                request,
                f"Driver account {pk} deleted as the driver's own deletion does: "
                f"{len(summary['active_subscriptions'])} plan(s) cancelled, "
                f"{len(summary['cards'])} card(s) detached at the processor, personal data erased, "
                "signed out everywhere, confirmation emailed.",
            )
            return HttpResponseRedirect(reverse("admin:auth_user_changelist"))
        return super().delete_view(request, object_id, {**(extra_context or {}), "driver": summary})
