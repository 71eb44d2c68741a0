"""Django admin for support agents: a charger's upstream backoffices (saved through the same
service as the portal and API, so one Leader and the live reload hold here too)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from chargers.proxy import services
from chargers.proxy.models import Backoffice


class BackofficeAdminForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The charger's password at that backoffice. Leave empty to keep the current one.",
    )

    class Meta:
        model = Backoffice
        fields = ["charger", "name", "url", "password", "role", "allowed_actions"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        charger = data.get("charger")
        if charger is not None and self.errors == {}:
            try:  # validate with the service's rules before save_model runs it
                services.backoffice_clean(
                    charger,
                    name=data.get("name", ""),
                    url=data.get("url", ""),
                    role=data.get("role", ""),
                    allowed_actions=data.get("allowed_actions") or [],
                )
            except ValidationError as exc:
                raise forms.ValidationError(exc.messages) from None
        return data


@admin.register(Backoffice)
class BackofficeAdmin(admin.ModelAdmin):
    form = BackofficeAdminForm
    list_display = ["name", "charger", "role", "status", "last_message_at", "last_error"]
    list_filter = ["role", "status"]
    search_fields = ["name", "charger__station_id", "url"]
    list_select_related = ["charger"]
    autocomplete_fields = ["charger"]
    readonly_fields = ["status", "last_error", "connected_at", "disconnected_at", "last_message_at"]

    def save_model(self, request: HttpRequest, obj: Backoffice, form: Any, change: bool) -> None:
        data = form.cleaned_data
        saved = services.backoffice_save(
            data["charger"],
            backoffice=obj if change else None,
            name=data["name"],
            url=data["url"],
            role=data["role"],
            allowed_actions=list(data.get("allowed_actions") or []),
            password=data["password"] if data.get("password") or not change else None,
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Backoffice) -> None:
        services.backoffice_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.backoffice_delete(obj)
