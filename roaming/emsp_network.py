"""Our eMSP role, their network in: partner CPOs' Locations and Tariffs, as they push them
(mod_locations / mod_tariffs Receiver: PUT, PATCH, DELETE) and as we pull them (their Sender
interface, paginated). Each row is the partner's operator's: no other organization sees it.

Writes are atomic; the object rules (ids, parts, patches) are the pure `roaming.emsp_rules`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import client, emsp_rules, hub_clients, ocpi
from .models import Partner, PartnerLocation, PartnerTariff

logger = logging.getLogger(__name__)


# A push we do not take (its OCPI and HTTP status): one exception for every eMSP receiver.
Refused = ocpi.Refused


def own_party(partner: Partner, country_code: str, party_id: str) -> tuple[str, str]:
    """A CPO partner pushes its own CPO party's objects only, a hub those of the CPO parties it
    connects (its ClientInfo): another party is unknown here."""
    cc, pid = country_code.upper(), party_id.upper()
    if partner.is_cpo and (cc, pid) == (partner.cpo_country_code, partner.cpo_party_id):
        return cc, pid
    if partner.is_cpo and hub_clients.cpo_party(partner, cc, pid) is not None:
        return cc, pid
    raise Refused(ocpi.Code.UNKNOWN_LOCATION, "You push your own CPO party's objects only.", 404)


def _bad(exc: Exception) -> Refused:
    return Refused(ocpi.Code.INVALID_PARAMETERS, str(exc))


# -- locations ----------------------------------------------------------------------------------


def location_get(
    *,
    partner: Partner,
    country_code: str,
    party_id: str,
    location_id: str,
    evse_uid: str | None = None,
    connector_id: str | None = None,
) -> dict:
    """Return the Location (or one EVSE or connector of it) as we hold it; Refused 2003."""
    cc, pid = own_party(partner, country_code, party_id)
    row = PartnerLocation.objects.filter(
        partner=partner, country_code=cc, party_id=pid, location_id=location_id
    ).first()
    if row is None:
        raise Refused(ocpi.Code.UNKNOWN_LOCATION, "Unknown location.", 404)
    try:
        return emsp_rules.part_of(row.data, evse_uid, connector_id)
    except emsp_rules.UnknownObject as exc:
        raise Refused(ocpi.Code.UNKNOWN_LOCATION, str(exc), 404) from None


@transaction.atomic
def location_receive(
    *,
    partner: Partner,
    country_code: str,
    party_id: str,
    location_id: str,
    body: Any,
    patch: bool,
    evse_uid: str | None = None,
    connector_id: str | None = None,
) -> bool:
    """Take a partner's PUT or PATCH of a Location, an EVSE or a connector; return whether the
    location is new. Refused: 2001 for an object the text does not allow, 2003 (404) for a part
    of a location we do not know (a PATCH of anything we do not have)."""
    cc, pid = own_party(partner, country_code, party_id)
    row = (
        PartnerLocation.objects.select_for_update()
        .filter(partner=partner, country_code=cc, party_id=pid, location_id=location_id)
        .first()
    )
    try:
        emsp_rules.check_not_ahead(body, now=timezone.now())
        if evse_uid is None and not patch:
            data = emsp_rules.check_owned(
                body, key="id", value=location_id, country_code=cc, party_id=pid
            )
        elif row is None:
            raise Refused(ocpi.Code.UNKNOWN_LOCATION, "Unknown location.", 404)
        elif evse_uid is None:
            data = emsp_rules.patched(row.data, body)
        else:
            if not isinstance(body, dict):
                raise emsp_rules.BadObject("An object is required.")
            data = emsp_rules.with_part(row.data, evse_uid, connector_id, body, patch=patch)
        when = emsp_rules.last_updated_of(emsp_rules.check_location_shape(data))
    except emsp_rules.BadObject as exc:
        raise _bad(exc) from None
    except emsp_rules.UnknownObject as exc:
        raise Refused(ocpi.Code.UNKNOWN_LOCATION, str(exc), 404) from None
    if row is not None and evse_uid is None and when < row.last_updated:
        # The location (whole, or its fields patched) as it stood before what we hold (retried
        # after a lost answer, or late): taken, and the newer state stays.
        return False
    if row is None:
        # The same location PUT twice at once: get_or_create's savepoint and second look give
        # the loser the first's row, locked, which it then updates.
        row, created = PartnerLocation.objects.select_for_update().get_or_create(
            partner=partner,
            country_code=cc,
            party_id=pid,
            location_id=location_id,
            defaults={
                "organization_id": partner.organization_id,
                "data": data,
                "last_updated": when,
            },
        )
        if created:
            return True
    row.data, row.last_updated = data, when
    row.save(update_fields=["data", "last_updated", "received_at"])
    return False


# -- tariffs --------------------------------------------------------------------------------------


def _tariff_versions(partner: Partner, cc: str, pid: str, tariff_id: str) -> Any:
    return PartnerTariff.objects.filter(
        partner=partner, country_code=cc, party_id=pid, tariff_id=tariff_id
    )


def tariff_get(*, partner: Partner, country_code: str, party_id: str, tariff_id: str) -> dict:
    """Return the tariff's current version; Refused 2003 (404) when unknown or deleted."""
    cc, pid = own_party(partner, country_code, party_id)
    row = (
        _tariff_versions(partner, cc, pid, tariff_id)
        .filter(removed_at__isnull=True)
        .order_by("-last_updated")
        .first()
    )
    if row is None:
        raise Refused(ocpi.Code.UNKNOWN_LOCATION, "Unknown tariff.", 404)
    return row.data


@transaction.atomic
def tariff_receive(
    *, partner: Partner, country_code: str, party_id: str, tariff_id: str, body: Any
) -> bool:
    """Take a partner's PUT of a Tariff: a new `last_updated` is a new version (the old ones are
    kept for the sessions that started under them). Return whether the tariff is new."""
    cc, pid = own_party(partner, country_code, party_id)
    try:
        data = emsp_rules.check_owned(
            body, key="id", value=tariff_id, country_code=cc, party_id=pid
        )
        when = emsp_rules.last_updated_of(data)
        emsp_rules.check_not_ahead(data, now=timezone.now())
    except emsp_rules.BadObject as exc:
        raise _bad(exc) from None
    if not isinstance(data.get("currency"), str) or not isinstance(data.get("elements"), list):
        raise Refused(ocpi.Code.INVALID_PARAMETERS, "A Tariff has a currency and elements.")
    versions = _tariff_versions(partner, cc, pid, tariff_id)
    new = not versions.filter(removed_at__isnull=True).exists()
    versions.filter(removed_at__isnull=False).update(removed_at=None)
    PartnerTariff.objects.update_or_create(
        partner=partner,
        country_code=cc,
        party_id=pid,
        tariff_id=tariff_id,
        last_updated=when,
        defaults={"organization_id": partner.organization_id, "data": data, "removed_at": None},
    )
    return new


@transaction.atomic
def tariff_remove(*, partner: Partner, country_code: str, party_id: str, tariff_id: str) -> None:
    """Take a partner's DELETE of a Tariff: no longer offered; its versions are kept."""
    cc, pid = own_party(partner, country_code, party_id)
    removed = (
        _tariff_versions(partner, cc, pid, tariff_id)
        .filter(removed_at__isnull=True)
        .update(removed_at=timezone.now())
    )
    if not removed:
        raise Refused(ocpi.Code.UNKNOWN_LOCATION, "Unknown tariff.", 404)


# -- the pull -------------------------------------------------------------------------------------


def _storable_objects(partner: Partner, module: str, data: Any) -> list[dict]:
    """The objects of a page we can keep: a page that is not a list has none, and an object
    with text PostgreSQL cannot store (a NUL, a lone surrogate) is skipped in words, so the
    others of its page are still taken."""
    found = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        problem = ocpi.text_problem(item)
        if problem:
            # repr: the id itself may hold the character no log line should carry raw.
            item_id = str(item.get("id", ""))[:36]
            logger.info("Skipped %s %r of partner %s: %s", module, item_id, partner.pk, problem)
            continue
        found.append(item)
    return found


def pull_pages(partner: Partner, module: str, params: dict[str, str] | None = None) -> list[dict]:
    """Every object of the partner's `module` Sender list (all pages, following `Link`, each
    next URL through the outbound guard); `params` (date_from) on the first request."""
    url: str | None = partner.endpoint(module, ocpi.InterfaceRole.SENDER)
    found: list[dict] = []
    pages = 0
    while url and pages < 1000:  # a partner's Link that never ends stops here
        # To its CPO party; to a hub's own party, a GET ALL of every CPO behind it.
        answer = client.call(
            partner=partner,
            method="GET",
            url=url,
            token=partner.outgoing_token,
            module=module,
            params=params if pages == 0 else None,
            to_party=(partner.cpo_country_code, partner.cpo_party_id),
        )
        found.extend(_storable_objects(partner, module, answer.data))
        url = _next_page(answer.headers.get("Link") or "", module)
        pages += 1
    return found


def _next_page(link: str, module: str) -> str | None:
    """The next page's URL of a Link header, or None. One we cannot read or may not call (the
    outbound guard) is this partner's failure (PartnerCallError), like an unreachable partner:
    a sweep goes on with its other partners."""
    if 'rel="next"' not in link:
        return None
    start, end = link.find("<"), link.find(">")
    if start < 0 or end < start:
        raise client.PartnerCallError(f"{module}: the next page's Link header is not readable.")
    url = link[start + 1 : end]
    try:
        client.check_partner_url(url)
    except client.BlockedPartnerUrl as exc:
        raise client.PartnerCallError(f"{module}: the next page's Link: {exc}") from None
    return url


def network_pull(*, partner_id: int) -> tuple[int, int]:
    """GET the CPO partner's locations and tariffs (their Sender interfaces, every page) and keep
    them; return (locations, tariffs) taken. An object the text does not allow is skipped (and
    logged); a partner that cannot be reached raises client.PartnerCallError."""
    partner = Partner.objects.filter(pk=partner_id, state=Partner.State.CONNECTED).first()
    if partner is None or not partner.is_cpo:
        return 0, 0
    if partner.role == Partner.Role.HUB:
        hub_clients.pull(partner)  # which CPO parties are behind it, before their objects
    taken = [0, 0]
    for index, module in enumerate(("locations", "tariffs")):
        for item in pull_pages(partner, module):
            item_id = str(item.get("id", ""))
            # Each object names its owner (a hub's GET ALL mixes its CPOs); own_party decides.
            cc = str(item.get("country_code") or partner.cpo_country_code)
            pid = str(item.get("party_id") or partner.cpo_party_id)
            try:
                if module == "locations":
                    location_receive(
                        partner=partner,
                        country_code=cc,
                        party_id=pid,
                        location_id=item_id,
                        body=item,
                        patch=False,
                    )
                else:
                    tariff_receive(
                        partner=partner,
                        country_code=cc,
                        party_id=pid,
                        tariff_id=item_id,
                        body=item,
                    )
            except Refused as exc:
                logger.info("Skipped %s %s of partner %s: %s", module, item_id, partner_id, exc)
                continue
            taken[index] += 1
    Partner.objects.filter(pk=partner_id).update(last_pull_at=timezone.now())
    return taken[0], taken[1]
