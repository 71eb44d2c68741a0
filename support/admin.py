"""Django admin for support agents: the ticket queue with its diagnostic bundle, thread and toolkit."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from authorization.models import TokenGroup
from backoffice.admin_paging import DateHierarchyInRange
from billing.gateways import GatewayError
from billing.models import Payment
from billing.services.refunds import RefundUnanswered

from . import toolkit
from .models import AssistantConversation, QuarantinedEmail, Ticket, TicketMessage, VendorErrorCode

logger = logging.getLogger(__name__)


class TicketMessageInline(admin.TabularInline):
    model = TicketMessage
    extra = 0
    can_delete = False
    fields = (
        "created_at",
        "direction",
        "author",
        "from_email",
        "to_email",
        "subject",
        "body",
        "delivered",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return format_html("<p>{}</p>", "None.")
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (
                format_html_join(
                    "", "<td>{}</td>", ((cell if cell is not None else "",) for cell in row)
                ),
            )
            for row in rows
        ),
    )
    return format_html(
        '<table class="bundle"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body
    )


def render_bundle(bundle: dict[str, Any]) -> str:
    """Return the diagnostic bundle as headed tables (escaped), for the ticket page."""
    parts = []
    if bundle.get("facts"):
        parts.append(
            format_html(
                "<h3>Findings</h3><ul>{}</ul>",
                format_html_join("", "<li>{}</li>", ((f,) for f in bundle["facts"])),
            )
        )
    charger = bundle.get("charger")
    if charger:
        keys = [
            "station_id",
            "property",
            "online",
            "last_seen_at",
            "last_heartbeat_at",
            "disconnected_at",
            "registration_status",
            "access_mode",
            "guest_charging",
            "license_valid_until",
            "out_of_order",
            "token_groups",
            "vendor",
            "model",
            "firmware_version",
            "ocpp_version",
        ]
        parts.append(
            format_html(
                "<h3>Charger</h3>{}",
                _table(["field", "value"], [[k, charger.get(k)] for k in keys]),
            )
        )
        parts.append(
            format_html(
                "<h3>Connectors</h3>{}",
                _table(
                    ["connector", "status", "error code", "vendor code", "info", "since"],
                    [
                        [
                            c["connector_id"],
                            c["status"],
                            c["error_code"],
                            c["vendor_error_code"],
                            c["info"],
                            c["status_timestamp"],
                        ]
                        for c in charger.get("connectors", [])
                    ],
                ),
            )
        )
    if "connector_history" in bundle:
        parts.append(
            format_html(
                "<h3>Connector history</h3>{}",
                _table(
                    ["time", "connector", "status", "error code"],
                    [
                        [e["timestamp"], e["connector_id"], e["status"], e["error_code"]]
                        for e in bundle["connector_history"]
                    ],
                ),
            )
        )
    if "decisions" in bundle:
        parts.append(
            format_html(
                "<h3>Recent authorization decisions</h3>{}",
                _table(
                    ["time", "UID", "context", "status", "reason", "why"],
                    [
                        [
                            d["created_at"],
                            d["uid"],
                            d["context"],
                            d["status"],
                            d["reason"],
                            d["message"],
                        ]
                        for d in bundle["decisions"]
                    ],
                ),
            )
        )
    session = bundle.get("session")
    if session:
        parts.append(
            format_html(
                "<h3>Session</h3>{}",
                _table(["field", "value"], [[k, v] for k, v in session.items()]),
            )
        )
    cost = bundle.get("cost")
    if cost:
        rows = [
            [
                line["description"],
                line["quantity"],
                line["unit"],
                line["unit_price"],
                line["amount"],
            ]
            for line in cost["lines"]
        ]
        rows += [
            ["Subtotal (excl. tax)", "", "", "", cost["subtotal"]],
            [
                "Tax"
                + (" (included in the prices)" if cost.get("prices_include_tax") else " (on top)"),
                "",
                "",
                "",
                cost["tax"],
            ],
            ["Total", "", "", "", f"{cost['total']} {cost['currency']}"],
        ]
        parts.append(
            format_html(
                "<h3>Cost lines</h3>{}",
                _table(["line", "quantity", "unit", "unit price", "amount"], rows),
            )
        )
    if bundle.get("payments"):
        parts.append(
            format_html(
                "<h3>Payments</h3>{}",
                _table(
                    [
                        "reference",
                        "status",
                        "email",
                        "card",
                        "held",
                        "charged",
                        "refunded",
                        "released because",
                    ],
                    [
                        [
                            p["reference"],
                            p["status"],
                            p["email"],
                            p.get("card_last4", ""),
                            p["held"],
                            p["captured"],
                            p["refunded"],
                            p["release_reason"],
                        ]
                        for p in bundle["payments"]
                    ],
                ),
            )
        )
    if bundle.get("payouts"):
        parts.append(
            format_html(
                "<h3>Payouts</h3>{}",
                _table(
                    ["id", "reference", "status", "period end", "net", "failure"],
                    [
                        [
                            p["id"],
                            p["reference"],
                            p["status"],
                            p["period_end"],
                            f"{p['net']} {p['currency']}",
                            p["failure_reason"],
                        ]
                        for p in bundle["payouts"]
                    ],
                ),
            )
        )
    if "frames" in bundle:
        parts.append(
            format_html(
                "<h3>Last {} OCPP frames</h3>{}",
                len(bundle["frames"]),
                _table(
                    ["time", "dir", "type", "action", "unique id", "payload"],
                    [
                        [
                            m["timestamp"],
                            m["direction"],
                            m["message_type"],
                            m["action"],
                            m["unique_id"],
                            str(m["payload"])[:300],
                        ]
                        for m in bundle["frames"]
                    ],
                ),
            )
        )
    if not parts:
        return format_html("<p>{}</p>", "No bundle (the ticket did not come from the assistant).")
    return format_html_join("", "{}", ((p,) for p in parts))


@admin.register(Ticket)
class TicketAdmin(DateHierarchyInRange, admin.ModelAdmin):
    list_display = (
        "reference",
        "created_at",
        "status",
        "topic",
        "station_id",
        "property_display",
        "email",
        "prompt",
        "assigned_to",
    )
    list_filter = ("status", "topic", "source", "created_at")
    search_fields = (
        "reference",
        "station_id",
        "email",
        "name",
        "phone",
        "property_name",
        "message",
    )
    list_select_related = ("property", "charger", "assigned_to")
    autocomplete_fields = (
        "charger",
        "property",
        "assigned_to",
        "organization",
        "session",
        "requested_by",
    )
    readonly_fields = (
        "reference",
        "source",
        "client_ip",
        "created_at",
        "updated_at",
        "toolkit_link",
        "details_display",
        "bundle_display",
        "quarantine_link",
    )
    date_hierarchy = "created_at"
    inlines = [TicketMessageInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "reference",
                    "status",
                    "assigned_to",
                    "topic",
                    "source",
                    "toolkit_link",
                    "quarantine_link",
                )
            },
        ),
        ("Customer", {"fields": ("name", "email", "phone", "requested_by")}),
        (
            "Charger",
            {
                "fields": (
                    "station_id",
                    "charger",
                    "property",
                    "property_name",
                    "organization",
                    "session",
                    "occurred_at",
                    "prompt",
                )
            },
        ),
        ("Message", {"fields": ("message", "details_display", "agent_notes")}),
        ("Diagnostic bundle", {"fields": ("bundle_display",)}),
        ("Audit", {"fields": ("client_ip", "created_at", "updated_at")}),
    )
    actions = ["mark_open", "mark_resolved"]

    @admin.display(description="Property", ordering="property__name")
    def property_display(self, obj: Ticket) -> str:
        return obj.property.name if obj.property is not None else obj.property_name

    @admin.display(description="Toolkit")
    def toolkit_link(self, obj: Ticket) -> str:
        if not obj.pk:
            return ""
        url = reverse("admin:support_ticket_toolkit", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">Reply, start a session, whitelist, refund, reset…</a>', url
        )

    @admin.display(description="Quarantined replies")
    def quarantine_link(self, obj: Ticket) -> str:
        # Replies naming this ticket from another address wait there (support.inbound).
        waiting = (
            obj.quarantined_emails.filter(attached_message__isnull=True).count() if obj.pk else 0
        )
        if not waiting:
            return "None"
        url = reverse("admin:support_quarantinedemail_changelist") + f"?ticket__id__exact={obj.pk}"
        return format_html(
            '<a href="{}">{} email(s) from another address name this ticket</a>', url, waiting
        )

    @admin.display(description="Details collected")
    def details_display(self, obj: Ticket) -> str:
        return _table(["detail", "value"], [[k, v] for k, v in (obj.details or {}).items()])

    @admin.display(description="Bundle")
    def bundle_display(self, obj: Ticket) -> str:
        return render_bundle(obj.bundle or {})

    def get_urls(self) -> list:
        return [
            path(
                "<int:ticket_id>/toolkit/",
                self.admin_site.admin_view(self.toolkit_view),
                name="support_ticket_toolkit",
            ),
            *super().get_urls(),
        ]

    def toolkit_view(self, request: HttpRequest, ticket_id: int) -> HttpResponse:
        ticket = get_object_or_404(
            Ticket.objects.select_related("charger", "organization", "session"), pk=ticket_id
        )
        if not self.has_change_permission(request, ticket):
            return HttpResponse(status=403)
        forms_ = {
            "reply": ReplyForm(prefix="reply"),
            "override": OverrideForm(prefix="override", ticket=ticket),
            "whitelist": WhitelistForm(prefix="whitelist", ticket=ticket),
            "refund": RefundForm(prefix="refund", ticket=ticket),
            "command": CommandForm(prefix="command"),
            "verify": VerifyForm(prefix="verify"),
            "email": EmailChangeForm(prefix="email"),
            "erase": EraseForm(prefix="erase"),
        }
        if ticket.charger_id is not None:
            # The charger's license, within the plan (billing.licenses); the host is answered.
            forms_["license"] = LicenseForm(prefix="license")
        if request.method == "POST":
            which = request.POST.get("action", "")
            if which in forms_:
                extra: dict[str, Any] = (
                    {"ticket": ticket} if which in ("override", "whitelist", "refund") else {}
                )
                form = type(forms_[which])(request.POST, prefix=which, **extra)
                forms_[which] = form
                if form.is_valid() and self._run(request, ticket, which, form.cleaned_data, form):
                    return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "ticket": ticket,
            "forms": forms_,
            "title": f"Toolkit for ticket #{ticket.reference}",
            "thread": ticket.thread.select_related("author"),
            "override_sessions": _override_sessions(ticket),
        }
        return TemplateResponse(request, "admin/support/ticket/toolkit.html", context)

    def _run(
        self, request: HttpRequest, ticket: Ticket, which: str, data: dict, form: forms.Form
    ) -> bool:
        user = request.user
        try:
            if which == "reply":
                toolkit.ticket_reply(
                    ticket=ticket, user=user, body=data["body"], status=data["status"]
                )
                self.message_user(request, f"Reply sent to {ticket.email}.", messages.SUCCESS)
            elif which == "override":
                command = toolkit.ticket_override_start(
                    ticket=ticket,
                    charger=data["charger"],
                    connector_id=data["connector_id"],
                    uid=data["uid"],
                    user=user,
                )
                self.message_user(
                    request,
                    f"The charger accepted the start (command {command.pk}).",
                    messages.SUCCESS,
                )
            elif which == "whitelist":
                toolkit.ticket_whitelist(
                    ticket=ticket, group=data["group"], uid=data["uid"], user=user
                )
                self.message_user(
                    request, f"{data['uid']} whitelisted into {data['group']}.", messages.SUCCESS
                )
            elif which == "refund":
                refund = toolkit.ticket_refund(
                    ticket=ticket,
                    payment=data["payment"],
                    amount=data["amount"],
                    reason=data["reason"],
                    user=user,
                )
                self.message_user(
                    request, f"Refunded {refund.amount}; confirmation emailed.", messages.SUCCESS
                )
            elif which == "verify":
                ok = toolkit.ticket_verify_identity(
                    ticket=ticket,
                    user=user,
                    session_date=data.get("session_date"),
                    card_last4=data.get("card_last4", ""),
                )
                self.message_user(
                    request,
                    "Identity verified."
                    if ok
                    else "Identity NOT verified: the details do not match.",
                    messages.SUCCESS if ok else messages.ERROR,
                )
            elif which == "email":
                changed = toolkit.ticket_change_email(
                    ticket=ticket, user=user, new_email=data["new_email"], request=request
                )
                self.message_user(
                    request,
                    f"Email changed on {changed} records; both addresses notified."
                    if changed
                    else f"A verification link was sent to {data['new_email']}; the driver's "
                    "email changes when they open it, exactly as when they change it themselves. "
                    f"{ticket.email} was told and signs in until then.",
                    messages.SUCCESS,
                )
            elif which == "erase":
                changed = toolkit.ticket_erase_customer(ticket=ticket, user=user)
                self.message_user(
                    request, f"Customer data erased on {changed} records.", messages.SUCCESS
                )
            elif which == "license":
                self.message_user(
                    request,
                    toolkit.ticket_license_activate(ticket=ticket, user=user),
                    messages.SUCCESS,
                )
            elif which == "command":
                if ticket.charger is None:
                    raise toolkit.ActionFailed("The ticket has no charger.")
                command = toolkit.ticket_charger_command(
                    ticket=ticket,
                    charger=ticket.charger,
                    action=data["action"],
                    connector_id=data["connector_id"],
                    user=user,
                )
                self.message_user(
                    request,
                    f"{command.action}: {command.result_status or command.status}.",
                    messages.SUCCESS,
                )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return False
        except Exception as exc:  # told in words a person reads; the services are atomic
            self._say_failure(request, exc, which, ticket)
            return False
        return True

    def _say_failure(
        self, request: HttpRequest, exc: Exception, which: str, ticket: Ticket
    ) -> None:
        """What the agent reads when a toolkit action failed: never an exception's text."""
        if isinstance(exc, RefundUnanswered):
            # The same refund asked on this ticket again (same payment and amount: same key)
            # returns it once the processor has answered, and sends the confirmation then.
            self.message_user(
                request,
                f"{exc} Ask this same refund on the ticket again later: it returns the refund "
                "once the processor has answered and emails the confirmation then.",
                messages.WARNING,
            )
        elif isinstance(exc, toolkit.ActionFailed | GatewayError):
            # The charger's, the engine's or the processor's refusal, written for people.
            self.message_user(request, str(exc), messages.ERROR)
        else:
            logger.exception("Ticket action %s on ticket %s failed", which, ticket.pk)
            self.message_user(
                request,
                "The action could not be completed; the error is logged for the developers.",
                messages.ERROR,
            )

    @admin.action(description="Mark selected tickets as in progress")
    def mark_open(self, request: HttpRequest, queryset: Any) -> None:
        from .services import tickets_set_status

        tickets_set_status(
            ticket_ids=list(queryset.values_list("pk", flat=True)), status=Ticket.Status.OPEN
        )

    @admin.action(description="Mark selected tickets as resolved")
    def mark_resolved(self, request: HttpRequest, queryset: Any) -> None:
        from .services import tickets_set_status

        tickets_set_status(
            ticket_ids=list(queryset.values_list("pk", flat=True)), status=Ticket.Status.RESOLVED
        )


def _override_sessions(ticket: Ticket) -> list:
    from chargers.models import ChargingSession

    override = (ticket.details or {}).get("override")
    if not override:
        return []
    return list(
        ChargingSession.objects.filter(
            charger__station_id=override["station_id"],
            id_tag=override["id_tag"],
        ).order_by("-started_at")[:5]
    )


class ReplyForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="reply")
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}), label="Reply to the customer"
    )
    status = forms.ChoiceField(
        choices=Ticket.Status.choices, initial=Ticket.Status.WAITING, label="Then set the status to"
    )


class OverrideForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="override")
    charger: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Charger")
    connector_id = forms.IntegerField(
        min_value=1, max_value=2**31 - 1, initial=1, label="Connector"
    )
    uid = forms.CharField(
        max_length=36,
        required=False,
        label="Card UID",
        help_text="Empty: an operator token made for this ticket (SUPPORT-<reference>).",
    )

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from chargers.models import Charger

        chargers = Charger.objects.all()
        if ticket.organization_id is not None:
            chargers = chargers.filter(property__organization_id=ticket.organization_id)
        field = self.fields["charger"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = chargers
        field.initial = ticket.charger_id


class WhitelistForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="whitelist")
    group: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, label="Local token group"
    )
    uid = forms.CharField(max_length=36, label="Card UID")

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        groups = TokenGroup.objects.select_related("organization")
        if ticket.organization_id is not None:
            groups = groups.filter(organization_id=ticket.organization_id)
        field = self.fields["group"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = groups
        refused = [
            d for d in (ticket.bundle or {}).get("decisions", []) if d.get("status") != "Accepted"
        ]
        if refused:
            self.fields["uid"].initial = refused[0]["uid"]


class RefundForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="refund")
    payment: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Payment")
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=14, decimal_places=2)
    reason = forms.CharField(
        max_length=300, help_text="The customer sees this in the confirmation email."
    )

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        payments = Payment.objects.filter(status=Payment.Status.CAPTURED)
        if ticket.session_id is not None:
            payments = payments.filter(session_id=ticket.session_id)
        elif ticket.email:
            payments = payments.filter(email__iexact=ticket.email)
        else:
            payments = payments.none()
        field = self.fields["payment"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = payments.order_by("-created_at")

    def clean_amount(self) -> Decimal:
        try:
            return Decimal(self.cleaned_data["amount"])
        except (InvalidOperation, TypeError) as exc:
            raise forms.ValidationError("Enter an amount.") from exc


class CommandForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="command")
    action_name = forms.ChoiceField(
        choices=[
            ("soft_reset", "Reset (soft)"),
            ("hard_reset", "Reset (hard)"),
            ("unlock", "Unlock connector"),
        ],
        label="Command",
    )
    connector_id = forms.IntegerField(
        min_value=1, max_value=2**31 - 1, initial=1, label="Connector (unlock)"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["action"] = data.get("action_name", "")
        return data


class LicenseForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="license")


class VerifyForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="verify")
    session_date = forms.DateField(required=False, label="A recent session date (YYYY-MM-DD)")
    card_last4 = forms.RegexField(regex=r"^\d{4}$", required=False, label="Card last 4 digits")


class EmailChangeForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="email")
    new_email = forms.EmailField(label="New email (after verifying identity)")


class EraseForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="erase")
    confirm = forms.BooleanField(
        label="Erase this customer's personal data (after verifying identity)"
    )


@admin.register(VendorErrorCode)
class VendorErrorCodeAdmin(admin.ModelAdmin):
    list_display = ("vendor", "code", "explanation", "advice")
    search_fields = ("vendor", "code", "explanation")
    list_filter = ("vendor",)


@admin.register(QuarantinedEmail)
class QuarantinedEmailAdmin(admin.ModelAdmin):
    """Replies that named a ticket but came from another address (support.inbound): an agent checks
    the sender and attaches the genuine ones; the rest are deleted."""

    list_display = ("received_at", "from_email", "subject", "ticket", "reason", "attached_message")
    list_filter = ("reason", "transport", "received_at")
    search_fields = ("from_email", "subject", "message_id", "ticket__reference", "ticket__email")
    list_select_related = ("ticket", "attached_message")
    autocomplete_fields = ("ticket", "attached_by")
    raw_id_fields = ("attached_message",)  # thread messages have no admin list of their own
    readonly_fields = (
        "message_id",
        "transport",
        "from_email",
        "to_email",
        "subject",
        "body",
        "reason",
        "ticket",
        "received_at",
        "attached_message",
        "attached_by",
    )
    actions = ["attach_to_ticket"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Attach to the ticket it names (sender checked)")
    def attach_to_ticket(self, request: HttpRequest, queryset: Any) -> None:
        from .inbound import quarantined_attach

        if not self.has_change_permission(request):
            raise PermissionDenied
        for row in queryset.select_related("ticket"):
            try:
                quarantined_attach(quarantined=row, user=request.user)
            except ValueError as exc:
                self.message_user(request, f"{row}: {exc}", messages.WARNING)
            else:
                self.message_user(
                    request, f"Attached to ticket #{row.ticket.reference}.", messages.SUCCESS
                )


@admin.register(AssistantConversation)
class AssistantConversationAdmin(admin.ModelAdmin):
    list_display = ("key", "updated_at", "topic", "station_id", "email", "user", "ticket")
    list_filter = ("topic",)
    search_fields = ("key", "station_id", "email")
    list_select_related = ("user", "ticket")
    autocomplete_fields = ("user", "charger", "session", "ticket")
    readonly_fields = ("key", "messages", "details", "client_ip", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SignInEmailChangeForm(UserChangeForm):
    """The user form that moves sign-in with the email: a host whose username is their email signs
    in with the new address once an agent changes it (toolkit.sign_in_name)."""

    pending_email = ""  # a driver's new address, verified through allauth (save_model)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (
            "email" not in self.changed_data
            or "username" in self.changed_data
            or not self.instance.pk
        ):
            return data
        old_email = str(self.initial.get("email") or "")
        new_email = str(data.get("email") or "")
        if new_email and toolkit.uses_email_addresses(self.instance):
            # A driver: the change goes through allauth's verification (SupportUserAdmin.save_model);
            # the account keeps its address until the new one is confirmed.
            self.pending_email = new_email
            data["email"] = old_email
            return data
        sign_in = toolkit.sign_in_name(
            username=str(self.initial.get("username") or ""),
            old_email=old_email,
            new_email=new_email,
        )
        if sign_in != self.initial.get("username"):
            taken = (
                get_user_model()
                .objects.exclude(pk=self.instance.pk)
                .filter(Q(username__iexact=new_email) | Q(email__iexact=new_email))
            )
            if taken.exists():
                self.add_error("email", "Another account signs in with that email.")
            else:
                data["username"] = sign_in
        return data


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class SupportUserAdmin(UserAdmin):
    form = SignInEmailChangeForm

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        pending = getattr(form, "pending_email", "")
        if pending:
            toolkit.agent_change_driver_email(request=request, account=obj, new_email=pending)
            messages.info(
                request,
                f"A verification link was sent to {pending}; the email changes when the driver opens "
                f"it, exactly as when they change it themselves. {form.initial.get('email')} was told "
                "and signs in until then.",
            )


# -- the support home: one search instead of a list of tables -------------------------------------


def find_view(request: HttpRequest) -> HttpResponse:
    """Admin's home search (support/find.py): station id, email, card's last four with a day or
    an amount, session, transaction or payment number, ticket reference."""
    from .find import find

    text = request.GET.get("q", "")
    context = {
        **admin.site.each_context(request),
        "title": "Find a customer or a charger",
        "q": text,
        "found": find(text, request.user) if text.strip() else None,
    }
    return TemplateResponse(request, "admin/support_find.html", context)


# The admin opens on the search; every table is still one click away below it.
admin.site.index_template = "admin/support_home.html"
