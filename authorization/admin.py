from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from backoffice.admin import ReadOnlyAdmin
from backoffice.admin_paging import (
    EstimatedCountPaginator,
    ProbedDateHierarchy,
    fixed_choices_filter,
)
from backoffice.forms import StaleEditMixin
from backoffice.tenancy import check_same_organization

from .decisions import REASONS
from .models import AuthorizationDecision, MobilityServiceProvider, Token, TokenGroup
from .msp_client import MSP_URL_MESSAGE, BlockedMspUrl, check_msp_url
from .services import msp_set_blocked, token_group_add_uid, token_group_touch


class TokenGroupAdminForm(forms.ModelForm):
    whitelist_uids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Whitelist card UIDs into this group: one per line, as read by the charger (idTag).",
    )

    class Meta:
        model = TokenGroup
        fields = "__all__"  # noqa: DJ007 - admin forms edit every field the ModelAdmin shows

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        organization = data.get("organization")
        if organization is not None:
            check_same_organization(
                organization.pk,
                data.get("tokens"),
                field="tokens",
                message="Tokens must belong to the group's organization or its MSPs.",
            )
            check_same_organization(
                organization.pk,
                data.get("restricted_properties"),
                field="restricted_properties",
                message="Properties must belong to the group's organization.",
            )
        return data


class MspAdminForm(forms.ModelForm):
    live_validation_url = forms.URLField(
        required=False,
        max_length=200,
        assume_scheme="https",
        help_text=MobilityServiceProvider._meta.get_field("live_validation_url").help_text,
    )

    class Meta:
        model = MobilityServiceProvider
        fields = "__all__"  # noqa: DJ007 - admin forms edit every field the ModelAdmin shows

    def clean_live_validation_url(self) -> str:
        url = self.cleaned_data["live_validation_url"]
        if url:
            try:
                check_msp_url(url)
            except BlockedMspUrl:
                raise forms.ValidationError(
                    f"{MSP_URL_MESSAGE} Staff can allow a host with the OUTBOUND_URL_ALLOWLIST setting (MSP_URL_ALLOWLIST)."
                ) from None
        return url


@admin.register(MobilityServiceProvider)
class MspAdmin(admin.ModelAdmin):
    form = MspAdminForm
    list_display = [
        "name",
        "country_code",
        "party_id",
        "organization",
        "blocked",
        "timeout_s",
        "on_timeout",
        "tokens_synced_at",
    ]
    search_fields = ["name", "party_id", "organization__name"]
    list_filter = ["blocked", "on_timeout", "country_code"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    actions = ["block", "unblock"]

    @admin.action(description="Block selected mobility providers")
    def block(self, request: HttpRequest, queryset: QuerySet[MobilityServiceProvider]) -> None:
        for msp in queryset:
            msp_set_blocked(msp=msp, blocked=True)
        self.message_user(request, f"Blocked {queryset.count()} provider(s).", messages.SUCCESS)

    @admin.action(description="Unblock selected mobility providers")
    def unblock(self, request: HttpRequest, queryset: QuerySet[MobilityServiceProvider]) -> None:
        for msp in queryset:
            msp_set_blocked(msp=msp, blocked=False)
        self.message_user(request, f"Unblocked {queryset.count()} provider(s).", messages.SUCCESS)


class TokenAdminForm(StaleEditMixin, forms.ModelForm):
    """An agent's page opened before a host blocked the card cannot unblock it by saving."""

    class Meta:
        model = Token
        fields = "__all__"  # noqa: DJ007 - admin forms edit every field the ModelAdmin shows


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    form = TokenAdminForm
    list_display = ["uid", "type", "organization", "msp", "valid", "blocked", "expires_at"]
    search_fields = ["uid", "uid_normalized", "label"]
    list_filter = ["type", "valid", "blocked"]
    list_select_related = ["organization", "msp"]
    autocomplete_fields = ["organization", "msp"]
    actions = ["mark_valid", "mark_invalid", "block", "unblock"]

    def _update(self, request: HttpRequest, queryset: QuerySet[Token], **fields: bool) -> None:
        groups: set[int] = set()
        for token in queryset:
            for name, value in fields.items():
                setattr(token, name, value)
            token.save()
            groups |= set(token.groups.values_list("pk", flat=True))
        token_group_touch(group_ids=sorted(groups))
        self.message_user(request, f"Updated {queryset.count()} token(s).", messages.SUCCESS)

    @admin.action(description="Tick 'valid'")
    def mark_valid(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._update(request, queryset, valid=True)

    @admin.action(description="Untick 'valid'")
    def mark_invalid(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._update(request, queryset, valid=False)

    @admin.action(description="Block")
    def block(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._update(request, queryset, blocked=True)

    @admin.action(description="Unblock")
    def unblock(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._update(request, queryset, blocked=False)


@admin.register(TokenGroup)
class TokenGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "version"]
    search_fields = ["name", "organization__name", "tokens__uid"]
    list_filter = ["organization"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    filter_horizontal = ["tokens", "restricted_properties"]
    form = TokenGroupAdminForm

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        uids = [
            line.strip()
            for line in form.cleaned_data.get("whitelist_uids", "").splitlines()
            if line.strip()
        ]
        for uid in uids:
            token_group_add_uid(group=form.instance, uid=uid)
        if uids:
            self.message_user(
                request, f"Whitelisted {len(uids)} UID(s) in {form.instance}.", messages.SUCCESS
            )
        token_group_touch(group_ids=[form.instance.pk])


@admin.register(AuthorizationDecision)
class AuthorizationDecisionAdmin(ProbedDateHierarchy, ReadOnlyAdmin):
    list_display = [
        "created_at",
        "uid",
        "station_id",
        "connector_id",
        "context",
        "status",
        "reason",
        "msp_latency_ms",
        "reservation",
    ]
    list_select_related = [
        "reservation"
    ]  # the stay whose access code was used (stays, docs/pms.md)
    search_fields = ["uid", "uid_normalized", "station_id"]
    list_filter = [
        fixed_choices_filter(
            "status", "status", ["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"]
        ),
        # The engine's reasons, not SELECT DISTINCT over a million decisions on every page.
        fixed_choices_filter("reason", "reason", sorted(REASONS)),
        "context",
    ]
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator  # a decision per card presented: millions of rows
    search_help_text = (
        "A card UID or a Station ID, exactly (indexed lookups over millions of rows)."
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AuthorizationDecision], search_term: str
    ) -> tuple[QuerySet[AuthorizationDecision], bool]:
        # Substring matches scan every decision (2.9 s at 1M): the normalized UID or the station, exactly.
        from django.db.models import Q

        from .models import normalize_uid

        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(uid_normalized=normalize_uid(term)) | Q(station_id=term)), False
