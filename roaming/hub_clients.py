"""Hub Client Info (mod_hub_client_info): the parties a hub partner connects and their status,
as the hub pushes them to our Receiver (PUT/GET `/ocpi/{v}/hubclientinfo/{cc}/{pid}`), as we pull
them from its Sender list, or as its 2.3.0 credentials list them. In our eMSP role a hub's CPO
parties are the networks behind it: their locations, tariffs, sessions and CDRs come through the
hub, and our drivers' commands go to them through it (routing headers).

Configuration module: no routing headers (transport_and_format "Message Routing Headers").
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import client, emsp_rules, ocpi
from .models import HubClient, Partner

logger = logging.getLogger(__name__)

ROLES = frozenset(r.value for r in ocpi.Role)
_COUNTRY = re.compile(r"[A-Z]{2}")
_PARTY = re.compile(r"[A-Z0-9]{1,3}")


Refused = ocpi.Refused  # a ClientInfo we do not take


def _checked(body: Any, country_code: str, party_id: str) -> dict[str, Any]:
    """The ClientInfo's fields, or Refused 2001 saying what the text does not allow."""
    if not isinstance(body, dict):
        raise Refused(ocpi.Code.INVALID_PARAMETERS, "A ClientInfo object is required.")
    cc, pid = str(body.get("country_code", "")).upper(), str(body.get("party_id", "")).upper()
    if (cc, pid) != (country_code.upper(), party_id.upper()):
        raise Refused(ocpi.Code.INVALID_PARAMETERS, "country_code and party_id must be the URL's.")
    if not (_COUNTRY.fullmatch(cc) and _PARTY.fullmatch(pid)):
        # CiString(2) and CiString(3): longer ones would not fit a row (and name no party).
        raise Refused(
            ocpi.Code.INVALID_PARAMETERS,
            "country_code: two letters; party_id: up to three letters or digits.",
        )
    role, status = body.get("role"), body.get("status")
    if role not in ROLES:
        raise Refused(ocpi.Code.INVALID_PARAMETERS, "role: a Role (CPO, EMSP, HUB, ...).")
    if status not in HubClient.Status.values:
        raise Refused(
            ocpi.Code.INVALID_PARAMETERS,
            "status: CONNECTED, OFFLINE, PLANNED or SUSPENDED (ConnectionStatus).",
        )
    try:
        when = emsp_rules.last_updated_of(body)
        emsp_rules.check_not_ahead(body, now=timezone.now())
    except emsp_rules.BadObject as exc:
        raise Refused(ocpi.Code.INVALID_PARAMETERS, str(exc)) from None
    return {"country_code": cc, "party_id": pid, "role": role, "status": status, "when": when}


def _store(partner: Partner, info: dict[str, Any]) -> None:
    """Keep a ClientInfo, unless we hold a newer one of that party and role (a retry, or a
    pulled list older than a push): a party that went offline is not made connected again."""
    key = {
        "partner": partner,
        "country_code": info["country_code"],
        "party_id": info["party_id"],
        "role": info["role"],
    }
    with transaction.atomic():
        held = HubClient.objects.select_for_update().filter(**key).first()
        if held is not None and info["when"] < held.last_updated:
            return
        HubClient.objects.update_or_create(
            **key, defaults={"status": info["status"], "last_updated": info["when"]}
        )


def _hub_only(partner: Partner) -> None:
    if partner.role != Partner.Role.HUB:
        raise Refused(ocpi.Code.CLIENT_ERROR, "Only a hub sends ClientInfo.", 403)


@transaction.atomic
def client_info_receive(*, partner: Partner, country_code: str, party_id: str, body: Any) -> None:
    """Take a hub's PUT of a ClientInfo (mod_hub_client_info Receiver "PUT Method")."""
    _hub_only(partner)
    _store(partner, _checked(body, country_code, party_id))


def client_info_get(*, partner: Partner, country_code: str, party_id: str) -> list[dict]:
    """The ClientInfo objects (one per role) we hold for a party of this hub; Refused 404."""
    _hub_only(partner)
    rows = HubClient.objects.filter(
        partner=partner, country_code=country_code.upper(), party_id=party_id.upper()
    )
    found = [
        {
            "party_id": r.party_id,
            "country_code": r.country_code,
            "role": r.role,
            "status": r.status,
            "last_updated": ocpi.format_datetime(r.last_updated),
        }
        for r in rows
    ]
    if not found:
        raise Refused(ocpi.Code.UNKNOWN_LOCATION, "Unknown party.", 404)
    return found


@transaction.atomic
def listed_in_credentials(partner: Partner, parties: list[tuple[str, str]]) -> None:
    """A 2.3.0 hub's credentials list the CPO parties it reaches: connected as of now."""
    now = timezone.now()
    for cc, pid in parties:
        _store(
            partner,
            {
                "country_code": cc,
                "party_id": pid,
                "role": "CPO",
                "status": "CONNECTED",
                "when": now,
            },
        )


def pull(partner: Partner) -> int:
    """GET the hub's ClientInfo list (its Sender interface, every page) and keep it; return how
    many were taken. A hub without the interface has nothing to pull."""
    url: str | None = partner.endpoint("hubclientinfo", ocpi.InterfaceRole.SENDER)
    taken = pages = 0
    while url and pages < 1000:
        answer = client.call(
            partner=partner,
            method="GET",
            url=url,
            token=partner.outgoing_token,
            module="hubclientinfo",
        )
        for item in answer.data if isinstance(answer.data, list) else []:
            if not isinstance(item, dict):
                continue
            try:
                info = _checked(item, str(item.get("country_code")), str(item.get("party_id")))
            except Refused as exc:
                logger.info("Skipped a ClientInfo of hub %s: %s", partner.pk, exc.message)
                continue
            _store(partner, info)
            taken += 1
        link = answer.headers.get("Link") or ""
        url = link[link.index("<") + 1 : link.index(">")] if 'rel="next"' in link else None
        if url:
            client.check_partner_url(url)
        pages += 1
    return taken


def cpo_party(partner: Partner, country_code: str, party_id: str) -> HubClient | None:
    """The hub's CPO party (cc, pid), if the hub says it connects one."""
    if partner.role != Partner.Role.HUB:
        return None
    return HubClient.objects.filter(
        partner=partner, country_code=country_code, party_id=party_id, role="CPO"
    ).first()
