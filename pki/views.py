"""The organization's Plug & Charge page (docs/pki.md): its roots and its PKI provider. Members
read it; owners and managers add and remove roots and change the provider."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from backoffice import outbound
from backoffice.models import Organization
from backoffice.tenancy import require_role

from . import services
from .models import CertificateUse, PkiSettings, RootCertificate


def _post(request: HttpRequest, organization_id: int) -> str:
    """Apply one form of the page; return an error in a host's words ("" when it worked)."""
    what = request.POST.get("what", "")
    try:
        if what == "add_root":
            root = services.root_add(
                organization_id=organization_id,
                use=request.POST.get("use", ""),
                certificate_pem=request.POST.get("certificate_pem", ""),
            )
            messages.success(request, f"Root installed: {root.subject}.")
        elif what == "delete_root":
            root = get_object_or_404(
                RootCertificate,
                organization_id=organization_id,
                pk=request.POST.get("root_id", "").strip() or 0,
            )
            root.delete()
            messages.success(request, f"Root removed: {root.subject}.")
        elif what == "settings":
            services.settings_save(
                organization_id=organization_id,
                provider_url=request.POST.get("provider_url", "").strip(),
                provider_token=request.POST.get("provider_token") or None,
                v2g_signer=request.POST.get("v2g_signer", ""),
            )
            messages.success(request, "PKI settings saved.")
        elif what == "local_v2g":
            services.local_v2g_root_install(organization_id=organization_id)
            messages.success(request, "Our local V2G root is installed and signs V2G certificates.")
        else:
            return "Unknown action."
    except services.CertificateRefused as exc:
        return str(exc)
    except outbound.OutboundBlocked as exc:
        return exc.say("the PKI provider")
    except ValueError:
        return "Unknown certificate."
    return ""


@login_required
def organization_pki(request: HttpRequest, organization_id: int) -> HttpResponse:
    membership = require_role(request.user, organization_id)
    organization = get_object_or_404(Organization, pk=organization_id)
    error = ""
    if request.method == "POST":
        require_role(request.user, organization_id, edit=True)
        error = _post(request, organization_id)
        if not error:
            return redirect("pki:organization-pki", organization_id)
    row = PkiSettings.objects.filter(organization_id=organization_id).first()
    return render(
        request,
        "pki/organization_pki.html",
        {
            "organization": organization,
            "roots": RootCertificate.objects.filter(organization_id=organization_id),
            "pki": row or PkiSettings(organization_id=organization_id),
            "uses": CertificateUse.choices,
            "signers": PkiSettings.V2gSigner.choices,
            "can_edit": membership.can_write,
            "error": error,
        },
        status=400 if error else 200,
    )
