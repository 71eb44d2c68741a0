"""Admin of signed metering: meter keys (editable by staff) and signed readings (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from backoffice.admin import ReadOnlyAdmin

from . import ocmf
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
        fields = ["charger", "meter_serial", "signing_method"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
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


@admin.register(MeterKey)
class MeterKeyAdmin(admin.ModelAdmin):
    list_display = ("meter_serial", "charger", "signing_method", "registered_by", "updated")
    search_fields = ("meter_serial", "charger__station_id")
    list_filter = ("signing_method",)
    list_select_related = ("charger", "registered_by")
    autocomplete_fields = ("charger", "registered_by")
    form = MeterKeyForm
    fields = ("charger", "meter_serial", "key", "signing_method", "public_key_hex")
    readonly_fields = ("public_key_hex",)

    def save_model(self, request: HttpRequest, obj: MeterKey, form: Any, change: bool) -> None:
        obj.registered_by = request.user  # type: ignore[assignment]
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
