"""Our eMSP role: partner CPOs' Sessions and CDRs of our cards (mod_sessions and mod_cdrs
Receiver), each stored once; a CDR is checked against its tariff as it stood at the session's
start (the pure roaming.cdr_check) and either agrees, with our price to the driver set, or is a
dispute for support (Django admin, *Partner CDRs*), never charged on a guess.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from authorization.models import Token

from . import cdr_check, emsp, emsp_rules, ocpi
from .emsp_network import Refused, own_party, pull_pages
from .models import Partner, PartnerCdr, PartnerLocation, PartnerSession, PartnerTariff

logger = logging.getLogger(__name__)


def _list(value: Any) -> list:
    # A partner's array, or none: a number where the text has an array is not one.
    return value if isinstance(value, list) else []


def _our_card(partner: Partner, token: Any) -> Token | None:
    """The card of ours a Session's or CDR's token names (CdrToken: uid and type), if any."""
    if not isinstance(token, dict):
        return None
    card_type = emsp_rules.card_type_of(str(token.get("type", "RFID")))
    if card_type is None:
        return None
    return (
        emsp.issued_cards(partner.organization_id)
        .filter(uid__iexact=str(token.get("uid", "")), type=card_type)
        .order_by("pk")
        .first()
    )


# -- sessions -------------------------------------------------------------------------------------


def session_get(*, partner: Partner, country_code: str, party_id: str, session_id: str) -> dict:
    cc, pid = own_party(partner, country_code, party_id)
    row = PartnerSession.objects.filter(
        partner=partner, country_code=cc, party_id=pid, session_id=session_id
    ).first()
    if row is None:
        raise Refused(ocpi.Code.UNKNOWN_LOCATION, "Unknown session.", 404)
    return row.data


@transaction.atomic
def session_receive(
    *, partner: Partner, country_code: str, party_id: str, session_id: str, body: Any, patch: bool
) -> None:
    """Take a partner's PUT (whole) or PATCH (changed fields) of a Session of one of our cards."""
    cc, pid = own_party(partner, country_code, party_id)
    row = (
        PartnerSession.objects.select_for_update()
        .filter(partner=partner, country_code=cc, party_id=pid, session_id=session_id)
        .first()
    )
    try:
        emsp_rules.check_not_ahead(body, now=timezone.now())
        if patch:
            if row is None:
                raise Refused(ocpi.Code.UNKNOWN_LOCATION, "Unknown session.", 404)
            data = emsp_rules.patched(row.data, body)
        else:
            data = emsp_rules.check_owned(
                body, key="id", value=session_id, country_code=cc, party_id=pid
            )
        when = emsp_rules.last_updated_of(data)
    except emsp_rules.BadObject as exc:
        raise Refused(ocpi.Code.INVALID_PARAMETERS, str(exc)) from None
    if row is not None and when < row.last_updated:
        return  # an older state delivered late (a retried push): the newer one we hold stays
    token = _our_card(partner, data.get("cdr_token"))
    status = str(data.get("status", ""))[:12]
    if status in emsp_rules.OPEN_SESSION_STATUSES and _cdr_ended(partner, cc, pid, session_id):
        # Its CDR came (which ended it): a push retried or delivered late does not show the
        # driver charging again, nor keep them from starting.
        status = "COMPLETED"
    if row is None:
        # The same session PUT twice at once: get_or_create's savepoint and second look give
        # the loser the first's row, locked, which it then updates.
        row, created = PartnerSession.objects.select_for_update().get_or_create(
            partner=partner,
            country_code=cc,
            party_id=pid,
            session_id=session_id,
            defaults={
                "organization_id": partner.organization_id,
                "token": token,
                "status": status,
                "data": data,
                "last_updated": when,
            },
        )
        if created:
            return
    row.data, row.last_updated, row.status, row.token = data, when, status, token
    row.quiet_closed_at = None  # the CPO spoke of it again: what it says counts
    row.save(
        update_fields=["data", "last_updated", "status", "token", "received_at", "quiet_closed_at"]
    )


# A session of one of our cards at a CPO that stays open with no update nor CDR this long is
# closed on our side (our own chargers' sessions are closed by their stale checks, a guest's by
# its ceiling): the driver is not shown charging nor kept from starting for ever by a CPO that
# lost its end. Its CDR, whenever it comes, still bills it; its next update opens it again.
QUIET_AFTER = timedelta(hours=24)


def sessions_quiet_close(*, now: datetime | None = None) -> int:
    """Close on our side the open sessions no CPO has updated for QUIET_AFTER (after the sweep
    asked their Sessions Senders); return how many (again: none, it is idempotent)."""
    now = now or timezone.now()
    cutoff = now - QUIET_AFTER
    quiet = PartnerSession.objects.filter(
        status__in=list(emsp_rules.OPEN_SESSION_STATUSES),
        quiet_closed_at__isnull=True,
        last_updated__lt=cutoff,
        received_at__lt=cutoff,
    )
    closed = 0
    for row in quiet.select_related("partner").order_by("pk")[:500]:
        # Once, even with two sweeps at once; not one the CPO updated meanwhile.
        closed += PartnerSession.objects.filter(
            pk=row.pk, quiet_closed_at__isnull=True, received_at__lt=cutoff
        ).update(quiet_closed_at=now)
        logger.warning(
            "Partner %s session %s of card %s: no update nor CDR since %s; closed on our side",
            row.partner_id,
            row.session_id,
            row.token_id,
            row.received_at,
        )
    return closed


def _cdr_ended(partner: Partner, cc: str, pid: str, session_id: str) -> bool:
    return PartnerCdr.objects.filter(
        partner=partner, country_code=cc, party_id=pid, data__session_id=session_id
    ).exists()


# -- CDRs -----------------------------------------------------------------------------------------


def _tariff_at_start(partner: Partner, cdr: dict, cc: str, pid: str) -> PartnerTariff | None:
    """The version of the tariff the CDR names that was in force when the session started (the
    newest version received with `last_updated` up to the start; removed ones count)."""
    periods = _list(cdr.get("charging_periods"))
    named = next(
        (str(p["tariff_id"]) for p in periods if isinstance(p, dict) and p.get("tariff_id")),
        None,
    )
    if named is None:
        listed = [str(t.get("id")) for t in _list(cdr.get("tariffs")) if isinstance(t, dict)]
        # The connector's own tariffs (as the location we hold names them) choose among those
        # the CDR lists: a CDR listing its party's tariffs is not checked against the wrong one.
        own = _connector_tariffs(partner, cdr)
        fallback = listed or own
        named = next((t for t in listed if t in own), fallback[0] if fallback else None)
    if named is None:
        return None
    try:
        started = ocpi.parse_datetime(str(cdr.get("start_date_time")))
    except ValueError:
        return None
    return (
        PartnerTariff.objects.filter(
            partner=partner,
            country_code=cc,
            party_id=pid,
            tariff_id=named,
            last_updated__lte=started,
        )
        .order_by("-last_updated")
        .first()
    )


def _connector_tariffs(partner: Partner, cdr: dict) -> list[str]:
    """The tariff ids the CDR's connector names in the location we hold, [] when unknown."""
    place = cdr.get("cdr_location")
    if not isinstance(place, dict):
        return []
    row = PartnerLocation.objects.filter(partner=partner, location_id=str(place.get("id"))).first()
    if row is None:
        return []
    for evse in _list(row.data.get("evses")):
        if not isinstance(evse, dict) or evse.get("uid") != place.get("evse_uid"):
            continue
        for connector in _list(evse.get("connectors")):
            if isinstance(connector, dict) and connector.get("id") == place.get("connector_id"):
                return [str(t) for t in _list(connector.get("tariff_ids"))]
    return []


def _time_zone(partner: Partner, cdr: dict, cc: str, pid: str) -> str | None:
    """The time zone of the CDR's location as its party pushed it (a CDR carries none), None
    when we hold no such location: the tariff's local times are then not read as UTC."""
    place = cdr.get("cdr_location")
    location_id = str(place.get("id")) if isinstance(place, dict) else ""
    row = PartnerLocation.objects.filter(
        partner=partner, country_code=cc, party_id=pid, location_id=location_id
    ).first()
    zone = row.data.get("time_zone") if row is not None else None
    return zone if isinstance(zone, str) and zone else None


def _checked(partner: Partner, cdr: dict, cc: str, pid: str) -> dict[str, Any]:
    """The CDR's check and price: the fields of its row."""
    claimed = cdr_check.price_before_tax(cdr.get("total_cost"))
    if cdr.get("credit") is True:
        return {"claimed": claimed, "status": PartnerCdr.Status.CREDIT, "reason": "Credit CDR."}
    tariff = _tariff_at_start(partner, cdr, cc, pid)
    result = cdr_check.check(
        cdr,
        tariff.data if tariff is not None else None,
        threshold=Decimal(settings.OCPI_EMSP_DISPUTE_THRESHOLD_CENTS) / 100,
        time_zone=_time_zone(partner, cdr, cc, pid),
    )
    fields: dict[str, Any] = {
        "claimed": claimed,
        "recomputed": result.recomputed,
        "tariff": tariff,
        "reason": result.reason[:500],
        "status": PartnerCdr.Status.DISPUTE if result.dispute else PartnerCdr.Status.AGREES,
    }
    if not result.dispute:
        price = cdr_check.driver_price(
            claimed,
            margin_percent=Decimal(settings.OCPI_EMSP_MARGIN_PERCENT),
            fee=Decimal(settings.OCPI_EMSP_ROAMING_FEE_CENTS) / 100,
            vat_percent=Decimal(settings.OCPI_EMSP_VAT_PERCENT),
        )
        fields |= {"price_excl": price.excl, "price_vat": price.vat, "price_total": price.total}
    return fields


def _session_ended(partner: Partner, cc: str, pid: str, cdr: dict) -> None:
    """The CDR ends its session, whether or not the CPO sent its last update: the driver is not
    shown charging, nor kept from starting again."""
    session_id = cdr.get("session_id")
    if isinstance(session_id, str) and session_id:
        PartnerSession.objects.filter(
            partner=partner,
            country_code=cc,
            party_id=pid,
            session_id=session_id[:36],
            status__in=list(emsp_rules.OPEN_SESSION_STATUSES),
        ).update(status="COMPLETED")


def cdr_receive(*, partner: Partner, body: Any) -> tuple[PartnerCdr, bool]:
    """Store a partner's CDR once (mod_cdrs "POST Method"); return it and whether it is new. The
    same id again changes nothing (a CDR never changes; a correction is a credit CDR)."""
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise Refused(ocpi.Code.INVALID_PARAMETERS, "A CDR with its id is required.")
    cc, pid = own_party(partner, str(body.get("country_code", "")), str(body.get("party_id", "")))
    cdr_id = body["id"][:39]
    known = PartnerCdr.objects.filter(
        partner=partner, country_code=cc, party_id=pid, cdr_id=cdr_id
    ).first()
    if known is not None:
        return known, False
    try:
        emsp_rules.last_updated_of(body)
        currency = body.get("currency")
        if not isinstance(currency, str) or len(currency) != 3:
            raise emsp_rules.BadObject("currency: an ISO 4217 code.")
        fields = _checked(partner, body, cc, pid)
    except (emsp_rules.BadObject, cdr_check.NotRecomputable) as exc:
        raise Refused(ocpi.Code.INVALID_PARAMETERS, str(exc)) from None
    try:
        with transaction.atomic():
            row = PartnerCdr.objects.create(
                organization_id=partner.organization_id,
                partner=partner,
                country_code=cc,
                party_id=pid,
                cdr_id=cdr_id,
                token=_our_card(partner, body.get("cdr_token")),
                data=body,
                currency=currency,
                **fields,
            )
            # With the CDR or not at all: a failure between the two would leave the session
            # open, and the CPO's retry finds the CDR known.
            _session_ended(partner, cc, pid, body)
    except IntegrityError:  # the same CDR posted twice at once: the first one is kept
        return PartnerCdr.objects.get(
            partner=partner, country_code=cc, party_id=pid, cdr_id=cdr_id
        ), False
    if row.status == PartnerCdr.Status.DISPUTE:
        logger.info("Partner CDR %s of partner %s is a dispute: %s", cdr_id, partner.pk, row.reason)
    return row, True


def cdr_get(*, partner: Partner, cdr_id: str) -> dict:
    row = PartnerCdr.objects.filter(partner=partner, cdr_id=cdr_id).first()
    if row is None:
        raise Refused(ocpi.Code.UNKNOWN_LOCATION, "Unknown CDR.", 404)
    return row.data


@transaction.atomic
def disputes_settle(*, cdr_ids: list[int]) -> int:
    """Mark disputes settled (support checked them with the partner); return how many."""
    return PartnerCdr.objects.filter(pk__in=cdr_ids, status=PartnerCdr.Status.DISPUTE).update(
        status=PartnerCdr.Status.SETTLED
    )


# -- the pull: what a lost push left out ------------------------------------------------------------


def _pulled_session(partner: Partner, item: dict) -> None:
    cc = str(item.get("country_code") or partner.cpo_country_code)
    pid = str(item.get("party_id") or partner.cpo_party_id)
    session_id = str(item.get("id", ""))[:36]
    try:
        when = emsp_rules.last_updated_of(item)
    except emsp_rules.BadObject:
        when = None
    held = PartnerSession.objects.filter(
        partner=partner, country_code=cc.upper(), party_id=pid.upper(), session_id=session_id
    ).first()
    if held is not None and when is not None and held.last_updated >= when:
        return  # we hold this state or a newer one (pushed)
    session_receive(
        partner=partner,
        country_code=cc,
        party_id=pid,
        session_id=session_id,
        body=item,
        patch=False,
    )


def sessions_cdrs_pull(*, partner_id: int, since: datetime | None) -> tuple[int, int]:
    """GET the CPO partner's Sessions and CDRs changed since `since` (their Sender interfaces,
    every page) and keep those we miss: a session whose push was lost, a CDR never posted
    (mod_sessions / mod_cdrs "GET Method"). Return (sessions, CDRs) taken; an object the text
    does not allow is skipped. A partner that cannot be reached raises client.PartnerCallError."""
    partner = Partner.objects.filter(pk=partner_id, state=Partner.State.CONNECTED).first()
    if partner is None or not partner.is_cpo:
        return 0, 0
    params = {"date_from": ocpi.format_datetime(since)} if since is not None else None
    taken = [0, 0]
    for index, module in enumerate(("sessions", "cdrs")):
        if not partner.endpoint(module, ocpi.InterfaceRole.SENDER):
            continue
        for item in pull_pages(partner, module, params):
            try:
                if module == "sessions":
                    _pulled_session(partner, item)
                else:
                    cdr_receive(partner=partner, body=item)
            except Refused as exc:
                logger.info("Skipped pulled %s of partner %s: %s", module, partner_id, exc)
                continue
            taken[index] += 1
    return taken[0], taken[1]
