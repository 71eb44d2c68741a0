"""Admin of signed metering: meter keys (editable by staff) and signed readings (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from backoffice.admin import ReadOnlyAdmin

from . import ocmf, services
from .models import MeterKey, SignedReading


class MeterKeyForm(forms.ModelForm):
    key = forms.CharField(
        label="Public key",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="As printed on the meter: hex DER, PEM, Base64 DER or oca:base16:asn1:<hex>. "
        "Leave empty to keep the registered one.",
    )

    class Meta:
        model = MeterKey
        fields = ["charger", "meter_serial", "connector_id", "evse_id", "signing_method"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        charger = data.get("charger")
        if charger is not None:
            identity = services.MeterIdentity(
                data.get("meter_serial") or "", data.get("connector_id"), data.get("evse_id")
            )
            try:
                services.meter_identity_check(charger, identity)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        text = data.get("key") or ""
        if not text and not self.instance.pk:
            raise forms.ValidationError({"key": "Enter the meter's public key."})
        if text:
            try:
                der = ocmf.load_public_key(text)
                method = ocmf.signing_method_for(der)
            except ValueError as exc:
                raise forms.ValidationError({"key": str(exc)}) from None
            self.instance.public_key = der
            data["signing_method"] = method
        return data


def _shown_key(text: str) -> bytes | None:
    """The key the confirmation page showed (hex DER), or None when absent or not hex."""
    try:
        return bytes.fromhex(text.strip()) or None
    except ValueError:
        return None


@admin.register(MeterKey)
class MeterKeyAdmin(admin.ModelAdmin):
    list_display = (
        "identity",
        "charger",
        "signing_method",
        "source",
        "key_fingerprint",
        "is_confirmed",
        "registered_by",
        "updated",
    )
    search_fields = ("meter_serial", "charger__station_id")
    list_filter = ("signing_method", "source", ("confirmed_at", admin.EmptyFieldListFilter))
    list_select_related = ("charger", "registered_by")
    autocomplete_fields = ("charger", "registered_by")
    form = MeterKeyForm
    fields = (
        "charger",
        "meter_serial",
        "connector_id",
        "evse_id",
        "key",
        "signing_method",
        "public_key_hex",
        "key_fingerprint",
        "source",
        "confirmed_at",
        "confirmed_by",
    )
    readonly_fields = (
        "public_key_hex",
        "key_fingerprint",
        "source",
        "confirmed_at",
        "confirmed_by",
    )
    actions = ["confirm_keys"]

    @admin.display(description="Meter")
    def identity(self, obj: MeterKey) -> str:
        return obj.identity

    @admin.display(boolean=True, description="Confirmed")
    def is_confirmed(self, obj: MeterKey) -> bool:
        return obj.confirmed

    @admin.display(description="Key fingerprint")
    def key_fingerprint(self, obj: MeterKey) -> str:
        return obj.fingerprint if obj.public_key else ""

    @admin.action(description="Confirm: the key matches the one printed on the meter")
    def confirm_keys(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """First a page listing each unconfirmed key in full with its fingerprint; its button
        confirms the keys shown there, each only if it is still the key shown (a key the charger
        reported since is left unconfirmed and said so)."""
        keys = list(
            queryset.filter(confirmed_at__isnull=True)
            .select_related("charger")
            .order_by("charger__station_id", "meter_serial", "connector_id", "evse_id")
        )
        if not keys:
            self.message_user(
                request, "None of those keys is waiting for confirmation.", messages.ERROR
            )
            return None
        if "apply" not in request.POST:
            return render(
                request,
                "metering/admin_meter_key_confirm.html",
                {
                    "keys": keys,
                    "skipped": queryset.count() - len(keys),
                    "opts": self.model._meta,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                    "title": "Confirm meter keys",
                },
            )
        confirmed, changed = 0, []
        for key in keys:
            shown = _shown_key(request.POST.get(f"shown_{key.pk}", ""))
            if shown is None:
                changed.append(key)  # no key shown for it: nothing was compared
                continue
            try:
                services.meter_key_confirm(key=key, user=request.user, shown_key=shown)
            except services.KeyChanged:
                changed.append(key)
            else:
                confirmed += 1
        if confirmed:
            self.message_user(
                request, f"{confirmed} key(s) confirmed; their sessions were checked again."
            )
        if changed:
            names = ", ".join(f"{k.identity} on {k.charger.station_id}" for k in changed)
            self.message_user(
                request,
                f"Not confirmed: {names}. Its key is not the one the confirmation page showed "
                "(the charger reported another since): compare the key shown now with the one "
                "printed on the meter, then confirm again.",
                messages.ERROR,
            )
        return None

    def save_model(self, request: HttpRequest, obj: MeterKey, form: Any, change: bool) -> None:
        # Typed in by a person (staff) from the meter: confirmed by that act.
        obj.registered_by = request.user  # type: ignore[assignment]
        if "key" in form.changed_data or not change:
            obj.source = MeterKey.Source.PERSON
            obj.confirmed_at = timezone.now()
            obj.confirmed_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.display(description="Public key (hex DER)")
    def public_key_hex(self, obj: MeterKey) -> str:
        return obj.public_key_hex if obj.public_key else ""


@admin.register(SignedReading)
class SignedReadingAdmin(ReadOnlyAdmin):
    """What each signed reading verified to, and why not (support reads it here)."""

    list_display = ("session", "nature", "value_wh", "time", "status", "reason", "meter_serial")
    search_fields = ("session__charger__station_id", "meter_serial", "=session__transaction_id")
    list_filter = ("status", "nature")
    list_select_related = ("session", "session__charger")
