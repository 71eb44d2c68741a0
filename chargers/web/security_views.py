"""Portal pages of a charger's security: the Overview card, the Security tab, password rotation,
profile changes, log uploads, signed firmware updates and installing our CA certificate."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from backoffice.tenancy import require_role
from chargers.devices import commands
from chargers.models import (
    AuthorizationKeyChange,
    Charger,
    ChargerCertificate,
    ChargerOperation,
    SecurityEvent,
)
from chargers.security import services as security_services
from chargers.web.security_forms import GetLogForm, SecurityProfileForm, SignedFirmwareForm
from chargers.web.selectors import charger_for_user, chargers_for

CRITICAL_DAYS = 7


def charger_or_404(user: Any, station_id: str) -> Charger:
    charger = charger_for_user(user, station_id)
    if charger is None:
        raise Http404("No such charger")
    return charger


def security_overview(charger: Charger, *, staff: bool = False) -> dict:
    """Return what the Overview shows about the charger's identity and security."""
    since = timezone.now() - timedelta(days=CRITICAL_DAYS)
    return {
        "security_profile_form": SecurityProfileForm(charger=charger, staff=staff),
        "security_events": list(
            SecurityEvent.objects.filter(charger=charger).order_by("-timestamp", "-id")[:5]
        ),
        "critical_events_recent": SecurityEvent.objects.filter(
            charger=charger, critical=True, received_at__gte=since
        ).count(),
        "last_key_change": AuthorizationKeyChange.objects.filter(charger=charger).first(),
    }


def dashboard_security_figures(*, user: Any, now: datetime, **kwargs: Any) -> dict:
    """Return what needs attention for security: critical events (whitepaper §8) of the last
    days, and chargers that accept connections without authentication."""
    chargers = chargers_for(user)
    return {
        "security_alerts": list(
            SecurityEvent.objects.filter(
                charger__in=chargers,
                critical=True,
                received_at__gte=now - timedelta(days=CRITICAL_DAYS),
            )
            .select_related("charger")
            .order_by("-received_at", "-id")[:10]
        ),
        "unauthenticated_chargers": list(
            chargers.filter(security_profile=Charger.SecurityProfile.NONE)[:10]
        ),
        # Refused handshakes of known chargers (kept at most once a minute per kind): someone
        # guessing, or a charger whose credentials or profile are wrong (S2 in the checklist).
        "refused_connections": list(
            Charger.objects.filter(
                pk__in=chargers.values("pk"),
                security_events__source=SecurityEvent.Source.CSMS,
                security_events__received_at__gte=now - timedelta(hours=24),
            )
            .annotate(refusals=Count("security_events"))
            .order_by("-refusals")[:10]
        ),
    }


def _overview(request: HttpRequest, charger: Charger, **extra: Any) -> HttpResponse:
    from chargers.web.views import overview_context

    context = overview_context(request, charger)
    context.update(extra)
    return render(request, "chargers/charger_overview.html", context)


@login_required
@require_POST
def charger_rotate_password(request: HttpRequest, station_id: str) -> HttpResponse:
    """Generate a new password and show it once (or push a new AuthorizationKey over OCPP)."""
    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    if request.POST.get("over_ocpp"):
        from chargers.devices.remote import authorization_key_push_sync

        try:
            command = authorization_key_push_sync(charger, source="portal", user_id=request.user.pk)
        except commands.ChargerOffline:
            messages.error(
                request, "The charger is offline: no new key was sent, the password is unchanged."
            )
        except commands.CommandTimeout:
            messages.error(
                request, "The charger did not answer in time: the password is unchanged."
            )
        else:
            if command.status == command.Status.ANSWERED and command.result_status == "Accepted":
                messages.success(
                    request,
                    "The charger accepted a new key. It reconnects with it; the old password no longer works.",
                )
            else:
                messages.warning(
                    request,
                    f"The charger answered {command.result_status or command.get_status_display()}: "
                    "the old password stays valid.",
                )
        return redirect("chargers:charger-detail", charger.station_id)
    password = security_services.charger_rotate_password(charger=charger)
    charger.refresh_from_db()
    response = _overview(request, charger, new_password=password)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def charger_security_profile(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    form = SecurityProfileForm(request.POST, charger=charger, staff=request.user.is_staff)
    if not form.is_valid():
        messages.error(request, "Choose one of the offered security profiles.")
        return redirect("chargers:charger-detail", charger.station_id)
    try:
        password = security_services.charger_set_security_profile(
            charger=charger,
            profile=form.cleaned_data["security_profile"],
            by_staff=request.user.is_staff,
        )
    except security_services.SecurityProfileRefused as exc:
        messages.error(request, str(exc))
        return redirect("chargers:charger-detail", charger.station_id)
    messages.success(request, f"Security profile set to {charger.get_security_profile_display()}.")
    if password:
        charger.refresh_from_db()
        response = _overview(request, charger, new_password=password)
        response["Cache-Control"] = "no-store"
        return response
    return redirect("chargers:charger-detail", charger.station_id)


def _pnc_missing(charger: Charger) -> list[str] | None:
    """What Plug & Charge still needs on a 2.0.1 charger (None for other chargers)."""
    from chargers.devices import plug_and_charge

    if charger.ocpp_version != Charger.OcppVersion.V201:
        return None
    return plug_and_charge.readiness(charger, timezone.now())


def _security_context(request: HttpRequest, charger: Charger, **forms: Any) -> dict:
    from chargers.web.views import tab_context

    context = tab_context(request, charger, "security")
    events = SecurityEvent.objects.filter(charger=charger).order_by("-id")
    before = request.GET.get("before", "")
    if before.isdigit():
        events = events.filter(id__lt=int(before))
    rows = list(events[:51])
    older = ""
    if len(rows) > 50:
        rows = rows[:50]
        older = f"?before={rows[-1].id}"
    context.update(
        {
            "events": rows,
            "older_url": older,
            "operations": list(
                ChargerOperation.objects.filter(charger=charger).prefetch_related("history")[:20]
            ),
            "certificates": list(ChargerCertificate.objects.filter(charger=charger)[:20]),
            "pnc_missing": _pnc_missing(charger),
            "key_changes": list(AuthorizationKeyChange.objects.filter(charger=charger)[:10]),
            "log_form": forms.get("log_form") or GetLogForm(),
            "firmware_form": forms.get("firmware_form") or SignedFirmwareForm(),
        }
    )
    return context


@login_required
def charger_security(request: HttpRequest, station_id: str) -> HttpResponse:
    charger = charger_or_404(request.user, station_id)
    return render(request, "chargers/charger_security.html", _security_context(request, charger))


def _send(request: HttpRequest, charger: Charger, label: str, action: str, payload: dict) -> None:
    try:
        command = commands.send_command_sync(
            charger, action, payload, source="portal", user_id=request.user.pk
        )
    except commands.ChargerOffline:
        messages.error(request, f"{label} was not sent: the charger is offline.")
    except commands.CommandTimeout as exc:
        messages.error(request, exc.told(label))
    except commands.InvalidCommand as exc:
        messages.error(request, f"{label} is not valid: {exc}")
    else:
        answer = command.result_status or command.get_status_display()
        level = messages.SUCCESS if answer == "Accepted" else messages.WARNING
        messages.add_message(request, level, f"{label}: the charger answered {answer}.")


def _switch_plug_and_charge(request: HttpRequest, charger: Charger, *, on: bool) -> None:
    from chargers.devices import plug_and_charge

    missing = plug_and_charge.readiness(charger, timezone.now()) if on else []
    if missing:
        messages.error(request, "Plug & Charge was not turned on: " + " ".join(missing))
        return
    _send(
        request,
        charger,
        f"Turning Plug & Charge {'on' if on else 'off'}",
        "SetVariables",
        plug_and_charge.switch_payload(on),
    )


def _install_roots(request: HttpRequest, charger: Charger) -> None:
    """M05: the organization's roots (V2G, MO, CSMS, manufacturer) to a 2.0.1 charger, one
    InstallCertificate each (docs/pki.md)."""
    from pki.models import RootCertificate

    if charger.ocpp_version != Charger.OcppVersion.V201:
        messages.error(request, "Only OCPP 2.0.1 chargers take ISO 15118 roots.")
        return
    organization_id = charger.organization_id
    roots = (
        list(RootCertificate.objects.filter(organization_id=organization_id))
        if organization_id is not None
        else []
    )
    if not roots:
        messages.error(request, "The organization has no root certificates yet (PKI settings).")
        return
    for root in roots:
        _send(
            request,
            charger,
            f"Installing {root.get_use_display().split(' (')[0]} {root.subject}",
            "InstallCertificate",
            {"certificateType": root.use, "certificate": root.certificate_pem},
        )


@login_required
@require_POST
def charger_security_action(request: HttpRequest, station_id: str) -> HttpResponse:
    """Start a log upload or a signed firmware update, install our CA certificate on the
    charger, or ask it for a new client certificate."""
    from chargers.devices.remote import new_request_id

    charger = charger_or_404(request.user, station_id)
    require_role(request.user, charger.organization_id, edit=True)
    what = request.POST.get("what")
    if what == "log":
        log_form = GetLogForm(request.POST)
        if not log_form.is_valid():
            return render(
                request,
                "chargers/charger_security.html",
                _security_context(request, charger, log_form=log_form),
                status=400,
            )
        _send(request, charger, "Log upload", "GetLog", log_form.payload(new_request_id()))
    elif what == "firmware":
        firmware_form = SignedFirmwareForm(request.POST)
        if not firmware_form.is_valid():
            return render(
                request,
                "chargers/charger_security.html",
                _security_context(request, charger, firmware_form=firmware_form),
                status=400,
            )
        _send(
            request,
            charger,
            "Signed firmware update",
            "SignedUpdateFirmware",
            firmware_form.payload(new_request_id(), timezone.now()),
        )
    elif what == "install_ca":
        from chargers.security.pki import get_ca

        _send(
            request,
            charger,
            "Installing the central system's CA certificate",
            "InstallCertificate",
            {
                "certificateType": "CentralSystemRootCertificate",
                "certificate": get_ca().certificate_pem,
            },
        )
    elif what in ("pnc_on", "pnc_off"):
        _switch_plug_and_charge(request, charger, on=what == "pnc_on")
    elif what == "install_roots":
        _install_roots(request, charger)
    elif what == "renew_v2g_certificate":
        # A02 for ISO 15118: the charger answers with a SignCertificate(V2GCertificate).
        _send(
            request,
            charger,
            "Asking the charger for a new V2G certificate",
            "TriggerMessage",
            {"requestedMessage": "SignV2GCertificate"},
        )
    elif what == "renew_certificate":
        # Whitepaper A02: the charger answers with a SignCertificate, which our CA signs.
        _send(
            request,
            charger,
            "Asking the charger for a new certificate",
            "ExtendedTriggerMessage",
            {"requestedMessage": "SignChargePointCertificate"},
        )
    else:
        messages.error(request, "Unknown security action.")
    return redirect("chargers:charger-security", charger.station_id)
