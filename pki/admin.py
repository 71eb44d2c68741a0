"""Admin for staff: an organization's Plug & Charge roots, known sub-CAs and PKI settings."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from backoffice import outbound

from . import chains, services
from .models import KeptCertificate, PkiSettings, RootCertificate, SubCaCertificate


class RootCertificateForm(forms.ModelForm):
    class Meta:
        model = RootCertificate
        fields = ["organization", "use", "certificate_pem"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        organization, use, text = (
            data.get("organization"),
            data.get("use"),
            data.get("certificate_pem"),
        )
        if organization is not None and use and text:
            try:
                self.stored = services.root_add(
                    organization_id=organization.pk, use=use, certificate_pem=text
                )
            except services.CertificateRefused as exc:
                raise forms.ValidationError(str(exc)) from None
        return data


class SubCaCertificateForm(forms.ModelForm):
    class Meta:
        model = SubCaCertificate
        fields = ["organization", "use", "certificate_pem"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        organization, use, text = (
            data.get("organization"),
            data.get("use"),
            data.get("certificate_pem"),
        )
        if organization is not None and use and text:
            try:
                certificates = chains.load_pem_chain(text)
            except ValueError:
                raise forms.ValidationError(
                    "This is not a PEM encoded X.509 certificate."
                ) from None
            kept = (
                services.sub_cas_add(
                    organization_id=organization.pk, use=use, certificates=certificates
                )
                if len(certificates) == 1
                else []
            )
            if len(kept) != 1:
                raise forms.ValidationError(
                    "Add one sub-CA certificate that chains to a root the organization installed."
                )
            self.stored = kept[0]
        return data


class KeptCertificateAdmin(admin.ModelAdmin):
    """A root or sub-CA is added (through its service, in the form's clean()) or deleted, never
    edited: its fingerprint is what chargers know it by."""

    list_display = ["subject", "use", "organization", "not_after", "added_at"]
    search_fields = ["subject", "fingerprint_sha256", "organization__name"]
    list_filter = ["use"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]

    def get_readonly_fields(self, request: HttpRequest, obj: KeptCertificate | None = None) -> Any:
        if obj is not None:
            return [
                "organization",
                "use",
                "certificate_pem",
                "fingerprint_sha256",
                "subject",
                "not_after",
            ]
        return []

    def save_model(
        self, request: HttpRequest, obj: KeptCertificate, form: Any, change: bool
    ) -> None:
        if not change:  # the form's clean() stored it through the service
            obj.pk = form.stored.pk
            obj.refresh_from_db()


@admin.register(RootCertificate)
class RootCertificateAdmin(KeptCertificateAdmin):
    form = RootCertificateForm


@admin.register(SubCaCertificate)
class SubCaCertificateAdmin(KeptCertificateAdmin):
    form = SubCaCertificateForm


class PkiSettingsForm(forms.ModelForm):
    provider_url = forms.URLField(required=False, assume_scheme="https", max_length=200)
    new_provider_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Leave empty to keep the stored token.",
    )

    class Meta:
        model = PkiSettings
        fields = ["organization", "provider_url", "v2g_signer"]

    def clean_provider_url(self) -> str:
        url = str(self.cleaned_data.get("provider_url") or "")
        if url:
            try:
                outbound.check_url(url, schemes=("https",), unresolvable_ok=True)
            except outbound.OutboundBlocked as exc:
                raise forms.ValidationError(exc.say("the PKI provider")) from None
        return url


@admin.register(PkiSettings)
class PkiSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "provider_url", "v2g_signer", "updated_at"]
    search_fields = ["organization__name", "provider_url"]
    list_filter = ["v2g_signer"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    form = PkiSettingsForm
    actions = ["install_local_v2g_root"]

    def save_model(self, request: HttpRequest, obj: PkiSettings, form: Any, change: bool) -> None:
        token = form.cleaned_data.get("new_provider_token") or None
        saved = services.settings_save(
            organization_id=obj.organization_id,
            provider_url=obj.provider_url,
            provider_token=token,
            v2g_signer=obj.v2g_signer,
        )
        obj.pk = saved.pk

    @admin.action(description="Install our local V2G root and sign V2G certificates with it")
    def install_local_v2g_root(self, request: HttpRequest, queryset: QuerySet[PkiSettings]) -> None:
        for row in queryset:
            services.local_v2g_root_install(organization_id=row.organization_id)
        messages.success(
            request, f"Local V2G root installed for {queryset.count()} organization(s)."
        )
