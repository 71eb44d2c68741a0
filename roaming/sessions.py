"""Roaming sessions and CDRs: sessions of partners' tokens are pushed while charging, and a CDR
with our billing's cost is created and pushed when one ends (through the outbox: never lost)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from authorization.models import AuthorizationDecision, Token
from billing.price_shown import session_rate
from billing.pricing import Cost
from billing.services import session_cost
from billing.taxes import split_money
from chargers.models import ChargingSession
from chargers.sessions import rules
from metering.display import cdr_signed_records, transparency_url
from metering.services import session_signed_ingest

from . import location_data, mapping, ocpi, payments, selectors, services, versions
from .models import Cdr, Partner, PushedToken, RemoteCommand, TerminalPayment

logger = logging.getLogger(__name__)

_TOKEN_TYPES: dict[str, str] = {
    Token.Type.RFID: "RFID",
    Token.Type.APP: "APP_USER",
    Token.Type.OTHER: "OTHER",
    Token.Type.EMAID: "EMAID",  # 2.3.0; 2.2.1 says OTHER (roaming.versions.v221)
}
_NATURE = mapping.OCMF_NATURE


def roaming_sessions() -> QuerySet[ChargingSession]:
    """Return the sessions of cards of connected OCPI partners (a payment terminal's one-off
    card is its PTP's provider's; a party a hub routes is reached through the hub)."""
    return ChargingSession.objects.filter(
        Q(token__ocpi__partner__state=Partner.State.CONNECTED)
        | Q(token__msp__ocpi_partner__state=Partner.State.CONNECTED)
        | Q(token__msp__hub_route__partner__state=Partner.State.CONNECTED)
    ).select_related(
        "token",
        "token__msp",
        "charger",
        "charger__property",
        "charger__property__ocpi_profile",
        "charger__ocpi_profile",
    )


def partner_of(session: ChargingSession) -> Partner | None:
    """Return the connected partner whose card the session ran on, or None.

    Only a partner of the charger's own operator: another operator's partner never gets the
    session or its CDR, whatever the card.
    """
    token = session.token
    prop = session.charger.property
    if token is None or prop is None:
        return None
    connected = Partner.objects.filter(
        state=Partner.State.CONNECTED, organization_id=prop.organization_id
    )
    paid = payments.payment_of(session)
    if paid is not None:
        # Paid at a terminal: its PTP alone gets the session and the CDR.
        return connected.filter(pk=paid.partner_id).first()
    pushed = PushedToken.objects.filter(token=token).values_list("partner_id", flat=True).first()
    if pushed is not None:
        partner = connected.filter(pk=pushed).first()
        if partner is not None:
            return partner
    if token.msp_id is None:
        return None
    # Its provider's own partner, or the hub that routes its provider (a foreign contract asked
    # live through the hub has no push of its to name the partner).
    return (
        connected.filter(msp_id=token.msp_id).first()
        or connected.filter(role=Partner.Role.HUB, routed_parties__msp_id=token.msp_id).first()
    )


def _cdr_token(token: Token, paid: TerminalPayment | None = None) -> mapping.CdrTokenFacts:
    if paid is not None:
        # The PTP's Token of its START_SESSION (mod_commands: its information goes into the
        # Session and CDR), not the one-off card the charger used.
        data = paid.token_data
        return mapping.CdrTokenFacts(
            str(data.get("country_code", "")).upper(),
            str(data.get("party_id", "")).upper(),
            str(data.get("uid", ""))[:36],
            str(data.get("type") or "AD_HOC_USER"),
            str(data.get("contract_id") or data.get("uid", ""))[:36],
        )
    pushed = PushedToken.objects.filter(token=token).first()
    if pushed is not None:
        return mapping.CdrTokenFacts(
            pushed.country_code,
            pushed.party_id,
            pushed.uid,
            pushed.type,
            str(pushed.data.get("contract_id") or pushed.uid),
        )
    msp = token.msp
    return mapping.CdrTokenFacts(
        msp.country_code if msp else "",
        msp.party_id if msp else "",
        token.uid,
        _TOKEN_TYPES.get(str(token.type), "OTHER"),
        token.uid,
    )


def _auth_method(session: ChargingSession) -> tuple[str, str]:
    """Return (AuthMethod, authorization_reference): COMMAND after a START_SESSION, AUTH_REQUEST
    after a live check, else WHITELIST (mod_cdrs "AuthMethod enum"); the reference is the one the
    eMSP gave in its START_SESSION or real-time authorization answer, if any."""
    paid = payments.payment_of(session)
    if paid is not None:
        return "COMMAND", paid.authorization_reference
    # Our clock on both sides: the charger's may be off.
    since = session.received_start_at - timedelta(minutes=15)
    command = (
        RemoteCommand.objects.filter(
            charger_id=session.charger_id,
            type=RemoteCommand.Type.START_SESSION,
            result="ACCEPTED",
            created_at__gte=since,
            created_at__lte=session.received_start_at,
            request__token__uid=session.id_tag,
        )
        .order_by("-id")
        .first()
    )
    if command is not None:
        return "COMMAND", str(command.request.get("authorization_reference") or "")[:36]
    live = (
        AuthorizationDecision.objects.filter(
            station_id=session.charger.station_id,
            uid=session.id_tag,
            created_at__gte=since,
            created_at__lte=session.received_start_at,
            reason="accepted_msp_live",
        )
        # A start within the cache time reuses the live answer: its reference is the answer's.
        .exclude(msp_response__has_key="cached")
        .order_by("-id")
        .first()
    )
    if live is None:
        return "WHITELIST", ""
    answer = live.msp_response.get("data") if isinstance(live.msp_response, dict) else None
    reference = answer.get("authorization_reference") if isinstance(answer, dict) else None
    return "AUTH_REQUEST", str(reference or "")[:36]


def _line_total(cost: Cost, kind: str) -> Decimal | None:
    """The lines of one kind, excluding tax (OCPI's per-dimension costs are excl. VAT): where the
    prices included tax, their sum is split by billing.taxes with the receipt's rounding rule."""
    amounts = [Decimal(line["amount"]) for line in cost.lines if line["kind"] == kind]
    if not amounts:
        return None
    stated = sum(amounts, Decimal(0))
    if not cost.prices_include_tax:
        return stated
    return split_money(stated, cost.tax_percent, cost.currency, included=True).net


def cost_facts(cost: Cost, *, tax_percent: Decimal | None = None) -> mapping.CostFacts:
    others = [
        line["description"]
        for line in cost.lines
        if line["kind"] not in ("connection_fee", "energy", "charging_time", "idle_fee")
    ]
    if cost.energy_wh is None:
        # OCPI wants a number of kWh: 0 is sent, and the remark says it is not a measurement.
        others.insert(0, "No energy reading reported by the charger; priced by time only")
    return mapping.CostFacts(
        currency=cost.currency,
        subtotal=cost.subtotal,
        total=cost.total,
        fixed=_line_total(cost, "connection_fee"),
        energy=_line_total(cost, "energy"),
        time=_line_total(cost, "charging_time"),
        parking=_line_total(cost, "idle_fee"),
        energy_wh=cost.energy_wh if cost.energy_wh is not None else Decimal(0),
        charging_seconds=cost.charging_seconds,
        idle_seconds=cost.idle_seconds,
        remark="; ".join(others),
        tax_percent=tax_percent,
    )


def _last_reading(session: ChargingSession) -> datetime | None:
    last = session.meter_values.order_by("-timestamp").values_list("timestamp", flat=True).first()
    return max(last, session.received_start_at) if last else None


def session_facts(session: ChargingSession, *, cost: Cost | None = None) -> mapping.SessionFacts:
    assert session.token is not None
    cost = cost if cost is not None else session_cost(session)
    rate = session_rate(session)[0]  # the price version billed (billing.price_shown)
    auth_method, reference = _auth_method(session)
    return mapping.SessionFacts(
        id=str(session.pk),
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        token=_cdr_token(session.token, payments.payment_of(session)),
        auth_method=auth_method,
        authorization_reference=reference,
        location_id=str(session.charger.property_id or ""),
        evse_uid=ocpi.evse_uid(session.charger.station_id, session.connector_id),
        cost=cost_facts(cost, tax_percent=rate.tax_percent if rate else None),
        active=session.status == ChargingSession.Status.ACTIVE,
        last_updated=session.received_stop_at
        or _last_reading(session)
        or session.received_start_at,
        tariff_id=str(rate.pk) if rate else "",
    )


def _signed_data(session: ChargingSession) -> mapping.SignedDataFacts | None:
    """Return the session's signed meter values for its CDR: the OCMF records metering kept
    (with the meter's key), else the raw 'SignedData' values of StopTransaction."""
    ocmf = cdr_signed_records(session)
    if ocmf is not None:
        records, key_hex = ocmf
        return mapping.ocmf_signed_data(
            records,
            public_key_der=_der(key_hex),
            url=transparency_url(session.pk) if settings.SITE_URL else "",
        )
    raw = _signed_values(session)
    if not raw:
        return None
    # OCPP 1.6 'SignedData' sampled values as the charger sent them.
    return mapping.SignedDataFacts(encoding_method="OCPP1.6-SignedData", values=raw)


def _der(key_hex: str) -> bytes | None:
    try:
        return bytes.fromhex(key_hex) if key_hex else None
    except ValueError:
        return None


def _signed_values(session: ChargingSession) -> tuple[mapping.SignedValueFacts, ...]:
    """Return the 'SignedData' sampled values the charger sent in StopTransaction.transactionData."""
    found = []
    for meter_value in session.transaction_data or []:
        if not isinstance(meter_value, dict):
            continue
        for sampled in meter_value.get("sampledValue") or []:
            if (
                isinstance(sampled, dict)
                and sampled.get("format") == "SignedData"
                and sampled.get("value")
            ):
                context = str(sampled.get("context") or "")
                found.append(
                    mapping.SignedValueFacts(
                        nature=_NATURE.get(context, "Intermediate"),
                        plain_data=f"{meter_value.get('timestamp', '')} {sampled.get('measurand', '')} {context}".strip(),
                        signed_data=str(sampled["value"]),
                    )
                )
    return tuple(found)


def _cdr_location(session: ChargingSession) -> dict[str, Any]:
    charger = session.charger
    prop = selectors.property_of(charger)
    profile = getattr(prop, "ocpi_profile", None)
    spec = selectors.connector_spec(charger)
    uid = ocpi.evse_uid(charger.station_id, session.connector_id)
    data: dict[str, Any] = {
        "id": str(prop.pk),
        "name": prop.name,
        "address": (prop.address or "#NA")[:45],
    }
    # A location without OCPI data is not published, but a whitelisted card may still have
    # charged there: "#NA" where we have no value (transport_and_format "No data available").
    data["city"] = profile.city if profile else "#NA"
    if profile and profile.postal_code:
        data["postal_code"] = profile.postal_code
    data["country"] = profile.country if profile else "#NA"
    data["coordinates"] = (
        {
            "latitude": location_data.format_coordinate(profile.latitude),
            "longitude": location_data.format_coordinate(profile.longitude),
        }
        if profile
        else {"latitude": "#NA", "longitude": "#NA"}
    )
    data.update(
        {
            "evse_uid": uid,
            "evse_id": ocpi.evse_id(
                settings.OCPI_COUNTRY_CODE,
                settings.OCPI_PARTY_ID,
                charger.station_id,
                session.connector_id,
            ),
            "connector_id": "1",
            "connector_standard": spec.standard,
            "connector_format": spec.format,
            "connector_power_type": spec.power_type,
        }
    )
    return data


def session_push_queue(*, session_id: int) -> int | None:
    """Queue the session's current state (PUT) for its partner; return the partner id, or None.

    A state the partner already has (same kWh, cost and status) is not queued again.
    """
    session = roaming_sessions().filter(pk=session_id).first()
    partner = partner_of(session) if session is not None else None
    if (
        session is None
        or partner is None
        or not partner.endpoint("sessions", ocpi.InterfaceRole.RECEIVER)
    ):
        return None
    body = versions.of(partner.version).session(session_facts(session), party=selectors.our_party())
    object_key = f"session:{session.pk}"
    last = services.last_pushed(partner, object_key)
    same = ("kwh", "total_cost", "status", "end_date_time")
    if isinstance(last, dict) and all(last.get(k) == body.get(k) for k in same):
        return None
    services.delivery_enqueue(
        partner=partner,
        module="sessions",
        object_key=object_key,
        method="PUT",
        path=f"/{settings.OCPI_COUNTRY_CODE}/{settings.OCPI_PARTY_ID}/{session.pk}",
        body=body,
        coalesce=True,
        to_party=(body["cdr_token"]["country_code"], body["cdr_token"]["party_id"]),
    )
    return partner.pk


def cdr_create(*, session_id: int) -> Cdr | None:
    """Create the CDR of a finished roaming session and queue it for its partner; idempotent.
    Return the session's standing CDR.

    The costs are billing's (billing.services.session_cost), so the partner is charged what our
    own session record says. A CDR made on our estimate of the stop is credited and replaced
    once the charger's own stop has changed what it bills (cdr_correct).
    """
    standing = Cdr.objects.current().filter(session_id=session_id).first()
    if standing is not None:
        return cdr_correct(standing)
    session = (
        roaming_sessions().filter(pk=session_id, status=ChargingSession.Status.COMPLETED).first()
    )
    partner = partner_of(session) if session is not None else None
    if session is None or partner is None:
        return None
    data = _cdr_data(session, partner, cdr_id=f"CDR-{session.pk}")
    try:
        with transaction.atomic():
            cdr = _cdr_send(session, partner, data, estimated=_stop_estimated(session))
    except IntegrityError:  # created meanwhile by the sweep or a repeated signal
        return Cdr.objects.current().filter(session_id=session_id).first()
    return cdr


def cdr_correct(standing: Cdr) -> Cdr:
    """Credit and replace a CDR made on our estimate of the stop once the charger's own stop
    has come and changed what the CDR bills (its end, energy, times or cost): mod_cdrs "Credit
    CDRs", a CDR is never changed. The Credit CDR (`CDR-<session>-C`, total_cost negated) is
    queued before the new CDR (`CDR-<session>-2`). Return the CDR that stands."""
    if not standing.estimated:
        return standing
    session = (
        roaming_sessions()
        .filter(pk=standing.session_id, status=ChargingSession.Status.COMPLETED)
        .first()
    )
    if session is None or _stop_estimated(session):
        return standing  # still our estimate: nothing new to bill
    made = Cdr.objects.filter(session=session, credit_reference__isnull=True).count()
    data = _cdr_data(session, standing.partner, cdr_id=f"CDR-{session.pk}-{made + 1}")
    # The first CDR as the partner's version now writes it (it may have moved to 2.3.0 since).
    sent = versions.convert(
        "cdrs",
        standing.data,
        written_in=standing.version,
        to=standing.partner.version or ocpi.V221,
    )
    if all(data.get(key) == sent.get(key) for key in mapping.CDR_BILLED_FIELDS):
        Cdr.objects.filter(pk=standing.pk).update(estimated=False)  # the estimate was right
        return standing
    credit = mapping.credit_cdr(
        standing.data, credit_id=f"{standing.cdr_id}-C", created=timezone.now()
    )
    try:
        with transaction.atomic():
            _cdr_send(session, standing.partner, credit, credit_of=standing)
            cdr = _cdr_send(session, standing.partner, data, estimated=False)
    except IntegrityError:  # corrected meanwhile by the sweep or a repeated signal
        return Cdr.objects.current().filter(session=session).first() or standing
    logger.info("CDR %s credited and replaced by %s: the charger's own stop", standing, cdr)
    return cdr


def _stop_estimated(session: ChargingSession) -> bool:
    return session.stop_reason in rules.ESTIMATED_STOPS


def _cdr_data(session: ChargingSession, partner: Partner, *, cdr_id: str) -> dict[str, Any]:
    """The session's CDR in the partner's version, as billing prices the session now."""
    # A CDR cannot change once sent: have metering read the signed values first (idempotent),
    # in case its own task has not run yet (both follow session_finished).
    session_signed_ingest(session_id=session.pk)
    cost = session_cost(session)
    facts = session_facts(session, cost=cost)
    rate = session_rate(session)[0]  # the price version billed (billing.price_shown)
    paid = payments.payment_of(session)
    return versions.of(partner.version).cdr(
        facts,
        cdr_id=cdr_id,
        location=_cdr_location(session),
        rate=selectors.rate_facts(rate) if rate else None,
        signed=_signed_data(session),
        party=selectors.our_party(),
        created=timezone.now(),
        # Paid at a terminal: the invoice we issue for it (mod_payments "Transaction").
        invoice_reference_id=payments.invoice_reference(paid, session) if paid else "",
    )


def _cdr_send(
    session: ChargingSession,
    partner: Partner,
    data: dict[str, Any],
    *,
    estimated: bool = False,
    credit_of: Cdr | None = None,
) -> Cdr:
    """Store a CDR and queue its POST to the partner (in the caller's transaction)."""
    # Its last_updated is the moment it is stored, the one the list's date_from and date_to
    # compare (it was stamped when the data was made, and could show the second before).
    stored = timezone.now()
    data = {**data, "last_updated": ocpi.format_datetime(stored)}
    cdr = Cdr.objects.create(
        session=session,
        partner=partner,
        cdr_id=data["id"],
        data=data,
        created_at=stored,
        version=credit_of.version if credit_of else partner.version or ocpi.V221,
        estimated=estimated,
        credit_reference=credit_of,
    )
    if partner.endpoint("cdrs", ocpi.InterfaceRole.RECEIVER):
        services.delivery_enqueue(
            partner=partner,
            module="cdrs",
            object_key=f"cdr:{cdr.pk}",
            method="POST",
            path="",
            body=data,
            to_party=(data["cdr_token"]["country_code"], data["cdr_token"]["party_id"]),
        )
    return cdr


def cdrs_correct(cdr_ids: list[int]) -> dict[str, Any]:
    """Support's hand on CDRs on an estimated stop that the sweep no longer looks at (it takes
    the last week's; older ones were marked by migration roaming.0020): each standing one among
    `cdr_ids` is credited and replaced when the charger's own stop has changed what it bills
    (cdr_correct). Return the counts and the partner ids with something queued."""
    counts = {"replaced": 0, "confirmed": 0, "still_estimated": 0}
    partner_ids: set[int] = set()
    for standing in Cdr.objects.current().filter(pk__in=cdr_ids, estimated=True):
        cdr = cdr_correct(standing)
        if cdr.pk != standing.pk:
            counts["replaced"] += 1
            partner_ids.add(cdr.partner_id)
        elif Cdr.objects.filter(pk=standing.pk, estimated=False).exists():
            counts["confirmed"] += 1  # the charger's stop billed what the estimate billed
        else:
            counts["still_estimated"] += 1  # no stop from the charger yet: nothing new to bill
    return {**counts, "partner_ids": partner_ids}


def sessions_sweep(*, now: datetime | None = None, days: int = 7) -> set[int]:
    """Queue what partners miss: running sessions' progress, finished sessions' final state and
    CDR (a lost signal); return the partner ids with something queued."""
    now = now or timezone.now()
    partner_ids: set[int] = set()
    for session_id in (
        roaming_sessions().filter(status=ChargingSession.Status.ACTIVE).values_list("pk", flat=True)
    ):
        partner_id = session_push_queue(session_id=session_id)
        if partner_id:
            partner_ids.add(partner_id)
    finished = (
        roaming_sessions()
        .filter(
            status=ChargingSession.Status.COMPLETED,
            received_stop_at__gte=now - timedelta(days=days),
            ocpi_cdrs__isnull=True,
        )
        .values_list("pk", flat=True)
    )
    # And CDRs made on an estimated stop whose charger's own stop has come since (a lost signal).
    corrected = (
        Cdr.objects.current()
        .filter(estimated=True, session__received_stop_at__gte=now - timedelta(days=days))
        .exclude(session__stop_reason__in=rules.ESTIMATED_STOPS)
        .values_list("session_id", flat=True)
    )
    for session_id in [*finished, *corrected]:
        partner_id = session_push_queue(session_id=session_id)
        cdr = cdr_create(session_id=session_id)
        partner_ids.update(p for p in (partner_id, cdr.partner_id if cdr else None) if p)
    return partner_ids


# -- reads for the senders (pull) -------------------------------------------------------------------


def sessions_page(
    partner: Partner, page: ocpi.Page, *, version: str
) -> tuple[int, list[dict[str, Any]]]:
    """Return (total, page) of the partner's customers' sessions, oldest first."""
    mine = Q(token__ocpi__partner=partner)
    if partner.msp_id:
        mine |= Q(token__msp_id=partner.msp_id)
    if partner.role == Partner.Role.HUB:
        mine |= Q(token__msp__hub_route__partner=partner)  # the parties it routes
    candidates = (
        roaming_sessions()
        .filter(mine, charger__property__organization_id=partner.organization_id)
        .order_by("received_start_at", "pk")
    )
    sessions = [s for s in candidates if partner_of(s) == partner]
    session = versions.of(version).session
    objects = [session(session_facts(s), party=selectors.our_party()) for s in sessions]
    matching = [o for o in objects if selectors.in_window(o["last_updated"], page)]
    return len(matching), matching[page.offset : page.offset + page.limit]


def cdrs_page(
    partner: Partner, page: ocpi.Page, *, version: str
) -> tuple[int, list[dict[str, Any]]]:
    """Return (total, page) of the CDRs of the partner's customers, oldest first, as sent (a
    CDR made before the partner moved to 2.3.0 in its 2.3.0 shape: the same amounts)."""
    cdrs = Cdr.objects.filter(
        partner=partner, session__charger__property__organization_id=partner.organization_id
    )
    if page.date_from is not None:
        cdrs = cdrs.filter(created_at__gte=page.date_from)
    if page.date_to is not None:
        cdrs = cdrs.filter(created_at__lt=page.date_to)
    cdrs = cdrs.order_by("created_at", "pk")
    return cdrs.count(), [
        versions.convert("cdrs", cdr.data, written_in=cdr.version, to=version)
        for cdr in cdrs[page.offset : page.offset + page.limit]
    ]
