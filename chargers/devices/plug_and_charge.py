"""A charger's Plug & Charge switch (issue 52 item 6, docs/pki.md): the ISO15118Ctrlr variables
set with one SetVariables, once the charger is ready for it: the organization installed a V2G
root and an MO root, the charger holds a V2G certificate valid for more than a day, and a PKI
provider is configured when cars are to get contract certificates through it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chargers.models import Charger, ChargerCertificate
from pki import services as pki_services
from pki.models import CertificateUse, RootCertificate

COMPONENT = "ISO15118Ctrlr"


def readiness(charger: Charger, now: datetime) -> list[str]:
    """What is missing before Plug & Charge may be turned on (empty: ready), in a host's words."""
    missing = []
    if charger.ocpp_version != Charger.OcppVersion.V201:
        return ["Plug & Charge needs an OCPP 2.0.1 charger."]
    organization_id = charger.organization_id
    if organization_id is None:
        return ["The charger belongs to no organization."]
    uses = set(
        RootCertificate.objects.filter(
            organization_id=organization_id, not_after__gt=now
        ).values_list("use", flat=True)
    )
    if CertificateUse.V2G not in uses:
        missing.append("Install a V2G root certificate for the organization (PKI settings).")
    if CertificateUse.MO not in uses:
        missing.append("Install a mobility operator (MO) root certificate for the organization.")
    certificate = (
        ChargerCertificate.objects.filter(
            charger=charger, certificate_type="V2GCertificate", revoked_at__isnull=True
        )
        .order_by("-not_after")
        .first()
    )
    if certificate is None or certificate.not_after < now + timedelta(days=1):
        missing.append("The charger has no valid V2G certificate: ask it for one.")
    elif certificate.delivery != "Accepted":
        missing.append("The charger has not accepted its V2G certificate yet.")
    if not pki_services.settings_of(organization_id).url:
        missing.append("Choose a PKI provider for the organization (cars get contracts from it).")
    return missing


def switch_payload(on: bool) -> dict[str, Any]:
    """SetVariables for ISO15118Ctrlr: Plug & Charge on (the CSMS checks contracts it cannot
    check itself, C07.FR.06; none are accepted offline, C07.FR.07; certificates are installed
    through us, M01/M02) or off."""
    value = "true" if on else "false"
    variables = {
        "PnCEnabled": value,
        "CentralContractValidationAllowed": value,
        "ContractValidationOffline": "false",
        "V2GCertificateInstallationEnabled": value,
        "ContractCertificateInstallationEnabled": value,
    }
    return {
        "setVariableData": [
            {"attributeValue": v, "component": {"name": COMPONENT}, "variable": {"name": k}}
            for k, v in variables.items()
        ]
    }
