"""Payments (OCPI 2.3.0 mod_payments) with a payment terminal provider (PTP): its terminals, the
EVSEs the operator assigns to them, the sessions its terminals start, the invoice we issue and
its financial advice confirmations.

A session started from a terminal runs on a one-off card of ours (its uid is ours, so no card
of a driver, host or guest can be taken for it), is tied to the terminal's
`authorization_reference` (TerminalPayment), goes to the PTP alone (Session, CDR with our
`invoice_reference_id`) and is paid once, at the terminal: the PTP's financial advice
confirmation (what it captured, the EFT data) completes our invoice.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from authorization.models import Token
from backoffice.models import Property
from chargers.models import Charger, ChargingSession

from . import mapping, ocpi, selectors, services
from .models import (
    Cdr,
    FinancialAdviceConfirmation,
    Partner,
    Terminal,
    TerminalActivation,
    TerminalAssignment,
    TerminalPayment,
)
from .versions import v230

logger = logging.getLogger(__name__)


class PaymentRefused(Exception):
    """A Payments request we cannot take: `code` the OCPI status, `http_status` the HTTP one."""

    def __init__(self, code: int, message: str, *, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


# -- terminals ---------------------------------------------------------------------------------------


def terminal_receive(*, partner: Partner, body: Any) -> tuple[Terminal, bool]:
    """Store a Terminal the PTP pushed (POST; again with the same id: its new data); return it
    and whether it is new. The locations and EVSEs it serves are the operator's to assign."""
    try:
        pushed = v230.read_terminal(body)
    except v230.InvalidObject as exc:
        raise PaymentRefused(ocpi.Code.INVALID_PARAMETERS, exc.message) from None
    details = dict(pushed.details)
    last_updated = pushed.last_updated or timezone.now()
    with transaction.atomic():
        # Pushed twice at once: get_or_create's savepoint and second look give the loser the
        # first push's row, locked.
        terminal, created = Terminal.objects.select_for_update().get_or_create(
            partner=partner,
            terminal_id=pushed.terminal_id,
            defaults={
                "organization_id": partner.organization_id,
                "details": details,
                "last_updated": last_updated,
                "invoice_key": secrets.token_urlsafe(16),
            },
        )
        if not created:
            if pushed.last_updated is not None and pushed.last_updated < terminal.last_updated:
                # Older than the terminal we hold (a retry delivered late): it changes nothing,
                # and does not bring back a terminal we deactivated since.
                return terminal, False
            # Pushed again (after we deactivated it: the PTP created it anew, reactivated).
            terminal.details, terminal.last_updated = details, last_updated
            terminal.deactivated_at = None
            terminal.save(update_fields=["details", "last_updated", "deactivated_at"])
            return terminal, False
    logger.info("PTP %s pushed terminal %s", partner.pk, pushed.terminal_id)
    _activation_answered(terminal)
    return terminal, True


def terminal_get(*, partner: Partner, terminal_id: str) -> Terminal | None:
    """Return the PTP's terminal (terminal ids are CiStrings: any case), or None."""
    return Terminal.objects.filter(partner=partner, terminal_id__iexact=terminal_id).first()


def assigned(terminal: Terminal) -> tuple[list[str], list[str]]:
    """Return (location ids, EVSE uids) we assigned to the terminal, as OCPI ids."""
    locations, evses = [], []
    for row in terminal.assignments.select_related("charger").order_by("property_id", "pk"):
        if row.charger_id is None:
            locations.append(str(row.property_id))
        else:
            assert row.charger is not None and row.connector_id is not None
            evses.append(ocpi.evse_uid(row.charger.station_id, row.connector_id))
    return locations, evses


def terminal_object(terminal: Terminal) -> dict[str, Any]:
    """Return the Terminal as we hold it (mod_payments "Terminal Object")."""
    locations, evses = assigned(terminal)
    moments = [terminal.last_updated, *([terminal.assigned_at] if terminal.assigned_at else [])]
    return v230.terminal(
        mapping.TerminalFacts(
            terminal_id=terminal.terminal_id,
            details=tuple(terminal.details.items()),
            location_ids=tuple(locations),
            evse_uids=tuple(evses),
            last_updated=max(moments),
        )
    )


def invoice_base_url(terminal: Terminal) -> str:
    """Return the invoice URL the terminal shows the driver, before the authorization reference
    (mod_payments InvoiceCreator CPO: invoice_base_url + authorization_reference); '' without
    SITE_URL (no public address to give)."""
    if not settings.SITE_URL:
        return ""
    path = reverse("partners:terminal-invoice-base", args=[terminal.invoice_key])
    return f"{settings.SITE_URL}{path}"


class InvalidAssignment(ValueError):
    """An assignment the operator cannot make, in words for the portal and the API."""


def _published(terminal: Terminal) -> dict[int, Charger]:
    chargers = selectors.published_chargers(terminal.organization_id)
    return {charger.pk: charger for charger in chargers}


def _assignment_rows(
    terminal: Terminal, location_ids: list[int], evses: list[tuple[int, int]]
) -> list[TerminalAssignment]:
    published = _published(terminal)
    published_locations = {int(c.property_id or 0) for c in published.values()}
    rows = []
    for location_id in sorted(set(location_ids)):
        if location_id not in published_locations:
            raise InvalidAssignment(
                "Only a location with public chargers on roaming can be paid at a terminal."
            )
        rows.append(TerminalAssignment(terminal=terminal, property_id=location_id))
    for charger_id, connector_id in sorted(set(evses)):
        charger = published.get(charger_id)
        if charger is None or charger.property_id is None or connector_id < 1:
            raise InvalidAssignment(
                "Only a public charger on roaming can be paid at a terminal: "
                "switch roaming on for it first."
            )
        rows.append(
            TerminalAssignment(
                terminal=terminal,
                property_id=charger.property_id,
                charger=charger,
                connector_id=connector_id,
            )
        )
    return rows


def terminal_assign(
    *, terminal: Terminal, location_ids: list[int], evses: list[tuple[int, int]]
) -> Terminal:
    """Set the locations (all their EVSEs) and single EVSEs (charger id, connector id) the
    terminal serves, and tell the PTP (PATCH, through the outbox). Only the operator's public
    roaming chargers can be assigned; raises InvalidAssignment."""
    rows = _assignment_rows(terminal, location_ids, evses)
    with transaction.atomic():
        locked = Terminal.objects.select_for_update().get(pk=terminal.pk)
        before = set(locked.assignments.values_list("property_id", flat=True))
        locked.assignments.all().delete()
        TerminalAssignment.objects.bulk_create(rows)
        locked.assigned_at = timezone.now()
        locked.save(update_fields=["assigned_at"])
        _tell_ptp(locked)
        # Their EVSEs now take (or no longer take) cards on the spot: partners get the change.
        for property_id in sorted(before | {row.property_id for row in rows}):
            services.location_changed(property_id)
    return locked


def _tell_ptp(terminal: Terminal) -> None:
    locations, evses = assigned(terminal)
    body: dict[str, Any] = {"location_ids": locations, "evse_uids": evses}
    base = invoice_base_url(terminal)
    if base and terminal.invoice_creator == "CPO":
        body["invoice_base_url"] = base
    assert terminal.assigned_at is not None
    body["last_updated"] = ocpi.format_datetime(terminal.assigned_at)
    services.delivery_enqueue(
        partner=terminal.partner,
        module="payments",
        object_key=f"terminal:{terminal.pk}",
        method="PATCH",
        path=f"/terminals/{terminal.terminal_id}",
        body=body,
        coalesce=True,
    )
    partner_id = terminal.partner_id
    transaction.on_commit(lambda: services.deliveries_send_later(partner_id))


# -- activating and deactivating a terminal (mod_payments, the CPO's calls to the PTP) ----------


def terminal_activate(
    *, partner: Partner, reference: str, location_ids: list[int], evses: list[tuple[int, int]]
) -> TerminalActivation:
    """Ask the PTP to activate the terminal known by `reference` (a serial number, say) for
    these locations and EVSEs (POST {terminals}/activate, through the outbox). The PTP answers
    by creating the Terminal, which then gets this assignment. Raises InvalidAssignment.

    Asked once: while the PTP has not created the terminal of an activation of that reference
    (the outbox delivers the ask until the PTP accepts it), the same ask again (the button
    pressed twice, also at once) asks nothing more; the waiting activation takes the places
    chosen last and is returned."""
    reference = reference.strip()
    if not reference or len(reference) > 36:
        raise InvalidAssignment(
            "Give the terminal's reference (its serial number), 36 characters at most."
        )
    probe = Terminal(organization_id=partner.organization_id, partner=partner)
    rows = _assignment_rows(probe, location_ids, evses)  # the same rule as an assignment
    party = selectors.our_party()
    body: dict[str, Any] = {
        "reference": reference,
        "country_code": party.country_code,
        "party_id": party.party_id,
        "location_ids": sorted({str(row.property_id) for row in rows if row.charger is None}),
        "evse_uids": [
            ocpi.evse_uid(row.charger.station_id, int(row.connector_id or 0))
            for row in rows
            if row.charger is not None
        ],
        "last_updated": ocpi.format_datetime(timezone.now()),
    }
    places = {
        "location_ids": sorted(set(location_ids)),
        "evses": [list(pair) for pair in sorted(set(evses))],
    }
    with transaction.atomic():
        # The partner's activations one at a time: two presses at once both found none waiting.
        Partner.objects.select_for_update(no_key=True).filter(pk=partner.pk).first()
        waiting = TerminalActivation.objects.filter(
            partner=partner, reference__iexact=reference, terminal__isnull=True
        ).first()
        if waiting is not None:
            TerminalActivation.objects.filter(pk=waiting.pk).update(**places)
            waiting.refresh_from_db()
            return waiting
        activation = TerminalActivation.objects.create(
            organization_id=partner.organization_id,
            partner=partner,
            reference=reference,
            **places,
        )
        services.delivery_enqueue(
            partner=partner,
            module="payments",
            object_key=f"activation:{activation.pk}",
            method="POST",
            path="/terminals/activate",
            body=body,
        )
        partner_id = partner.pk
        transaction.on_commit(lambda: services.deliveries_send_later(partner_id))
    return activation


def _activation_answered(terminal: Terminal) -> None:
    """A new terminal whose reference we asked to activate gets the assignment we asked for."""
    reference = str(terminal.details.get("reference") or "")
    if not reference:
        return
    activation = (
        TerminalActivation.objects.filter(
            partner_id=terminal.partner_id, reference__iexact=reference, terminal__isnull=True
        )
        .order_by("-requested_at")
        .first()
    )
    if activation is None:
        return
    TerminalActivation.objects.filter(pk=activation.pk).update(terminal=terminal)
    try:
        terminal_assign(
            terminal=terminal,
            location_ids=[int(x) for x in activation.location_ids],
            evses=[(int(c), int(n)) for c, n in activation.evses],
        )
    except InvalidAssignment as exc:  # a charger left roaming meanwhile: the host assigns anew
        logger.warning("Activated terminal %s not assigned: %s", terminal.terminal_id, exc)


def terminal_deactivate(*, terminal: Terminal) -> Terminal:
    """Deactivate a terminal (broken, moved): it serves no EVSE from now on, its EVSEs stop
    offering payment by card there, and the PTP is told (POST {terminals}/{id}/deactivate)."""
    with transaction.atomic():
        locked = Terminal.objects.select_for_update().get(pk=terminal.pk)
        if locked.deactivated_at is not None:
            return locked
        served = set(locked.assignments.values_list("property_id", flat=True))
        locked.assignments.all().delete()
        locked.deactivated_at = timezone.now()
        locked.save(update_fields=["deactivated_at"])
        services.delivery_enqueue(
            partner=locked.partner,
            module="payments",
            object_key=f"terminal:{locked.pk}:deactivate",
            method="POST",
            path=f"/terminals/{locked.terminal_id}/deactivate",
            body={},  # the call has no request body in the text; an empty object says nothing
        )
        for property_id in sorted(served):
            services.location_changed(property_id)
        partner_id = locked.partner_id
        transaction.on_commit(lambda: services.deliveries_send_later(partner_id))
    return locked


def terminals_covering(partner: Partner, charger: Charger, connector_id: int) -> list[Terminal]:
    """Return the PTP's terminals that serve this EVSE (its location, or it alone)."""
    return list(
        Terminal.objects.filter(partner=partner, deactivated_at__isnull=True)
        .filter(
            Q(assignments__property_id=charger.property_id, assignments__charger__isnull=True)
            | Q(assignments__charger=charger, assignments__connector_id=connector_id)
        )
        .distinct()
        .order_by("pk")
    )


# -- a session started from a terminal ----------------------------------------------------------------


@dataclass(frozen=True)
class TerminalStart:
    """What a PTP's START_SESSION becomes: the one-off card the charger gets, and the payment."""

    uid: str
    payment: TerminalPayment


def _checked_token(partner: Partner, token: Any) -> dict[str, Any]:
    if not isinstance(token, dict) or not isinstance(token.get("uid"), str) or not token["uid"]:
        raise PaymentRefused(ocpi.Code.INVALID_PARAMETERS, "token (a Token object) is required.")
    if (str(token.get("country_code", "")).upper(), str(token.get("party_id", "")).upper()) != (
        partner.country_code,
        partner.party_id,
    ):
        # mod_commands "StartSession": only Tokens the sender owns.
        raise PaymentRefused(
            ocpi.Code.INVALID_PARAMETERS, "The token must be your own (your country and party)."
        )
    return token


def _one_off_uid() -> str:
    # OCPP 1.6 idTag is a CiString20: "PT" + 18 hex characters, unique for the payment.
    return "PT" + secrets.token_hex(9).upper()


def terminal_start_prepare(
    *, partner: Partner, body: dict[str, Any], charger: Charger, connector_id: int | None
) -> TerminalStart:
    """Check a PTP's START_SESSION and create its one-off card and payment (not yet tied to a
    command): the EVSE must be one of its terminals', the authorization_reference new. Raises
    PaymentRefused (the command's answer)."""
    if connector_id is None:
        raise PaymentRefused(
            ocpi.Code.INVALID_PARAMETERS,
            "evse_uid is required: a terminal pays for one EVSE.",
        )
    reference = body.get("authorization_reference")
    if not isinstance(reference, str) or not 1 <= len(reference) <= 36:
        raise PaymentRefused(
            ocpi.Code.INVALID_PARAMETERS,
            "authorization_reference (1 to 36 characters) is required: it ties the payment to "
            "the session, its CDR and its financial advice confirmation.",
        )
    token = _checked_token(partner, body.get("token"))
    covering = terminals_covering(partner, charger, connector_id)
    if not covering:
        raise PaymentRefused(
            ocpi.Code.SUCCESS, "This EVSE is not assigned to any of your payment terminals."
        )
    if TerminalPayment.objects.filter(partner=partner, authorization_reference=reference).exists():
        raise PaymentRefused(
            ocpi.Code.SUCCESS, "This authorization_reference was used for another session."
        )
    uid = _one_off_uid()
    card = Token.objects.create(
        uid=uid,
        msp=partner.msp,
        type=Token.Type.OTHER,
        valid=True,
        whitelist=Token.Whitelist.ALWAYS,
        single_session=True,
        label=f"Paid at terminal {covering[0].terminal_id} ({reference})"[:200],
    )
    payment = TerminalPayment(
        organization_id=partner.organization_id,
        partner=partner,
        terminal=covering[0],
        authorization_reference=reference,
        token=card,
        token_data=token,
        charger=charger,
        connector_id=connector_id,
    )
    return TerminalStart(uid=uid, payment=payment)


def terminal_start_refused(start: TerminalStart) -> None:
    """The start was refused (decision, charger): its one-off card never works."""
    Token.objects.filter(pk=start.payment.token_id).update(valid=False)


def terminal_command_failed(*, remote_command_id: int) -> None:
    """The charger did not take a terminal's START_SESSION: its one-off card never works."""
    Token.objects.filter(terminal_payment__command_id=remote_command_id).update(valid=False)


def terminal_start_record(start: TerminalStart, *, command_id: int) -> TerminalPayment:
    """Keep the payment of an accepted START_SESSION, tied to its command."""
    payment = start.payment
    payment.command_id = command_id
    try:
        with transaction.atomic():
            payment.save()
    except IntegrityError:  # the same reference in a concurrent START_SESSION
        raise PaymentRefused(
            ocpi.Code.SUCCESS, "This authorization_reference was used for another session."
        ) from None
    return payment


def payment_of(session: ChargingSession) -> TerminalPayment | None:
    """Return the terminal payment the session runs on (tying them on first sight), or None."""
    if session.token_id is None:
        return None
    payment = (
        TerminalPayment.objects.select_related("partner", "terminal")
        .filter(token_id=session.token_id)
        .first()
    )
    if payment is not None and payment.session_id is None:
        TerminalPayment.objects.filter(pk=payment.pk, session__isnull=True).update(session=session)
        payment.session = session
    return payment


def _session_of(payment: TerminalPayment) -> ChargingSession | None:
    """Return the payment's session, tying it when no roaming task did yet."""
    if payment.session is not None:
        return payment.session
    session = (
        ChargingSession.objects.select_related("charger__property")
        .filter(token_id=payment.token_id)
        .order_by("pk")
        .first()
    )
    if session is not None:
        payment_of(session)  # ties them
    return session


def terminal_session_finished(*, session_id: int) -> None:
    """A session paid at a terminal ended: its one-off card never works again."""
    Token.objects.filter(
        terminal_payment__session_id=session_id,
    ).update(valid=False)
    session = ChargingSession.objects.filter(pk=session_id).first()
    if session is not None:
        payment_of(session)


def stale_cards_release(*, minutes: int = 30) -> int:
    """Make unusable the one-off cards of terminal payments whose session ended (a missed
    signal) or that never became a session (the charger refused or never started); return how
    many."""
    cutoff = timezone.now() - timedelta(minutes=minutes)
    never = TerminalPayment.objects.filter(
        session__isnull=True, created_at__lt=cutoff, token__valid=True
    ).exclude(token__sessions__isnull=False)
    ended = Token.objects.filter(valid=True, terminal_payment__isnull=False).filter(
        sessions__status=ChargingSession.Status.COMPLETED
    )
    released = Token.objects.filter(pk__in=never.values("token_id")).update(valid=False)
    return released + Token.objects.filter(pk__in=ended.values("pk")).update(valid=False)


def invoice_reference(payment: TerminalPayment, session: ChargingSession) -> str:
    """Return the number of the invoice we issue for a terminal-paid session ('' when the PTP
    invoices the driver: mod_payments, an invoice_reference_id says the CPO created it)."""
    terminal = payment.terminal
    if terminal is not None and terminal.invoice_creator != "CPO":
        return ""
    if not payment.invoice_reference_id:
        number = f"{settings.OCPI_PARTY_ID}-{session.started_at:%Y}-T{payment.pk:06d}"
        TerminalPayment.objects.filter(pk=payment.pk, invoice_reference_id="").update(
            invoice_reference_id=number
        )
        payment.refresh_from_db(fields=["invoice_reference_id"])
    return payment.invoice_reference_id


# -- financial advice confirmations ---------------------------------------------------------------


def financial_advice_receive(
    *, partner: Partner, body: Any
) -> tuple[FinancialAdviceConfirmation, bool]:
    """Store the PTP's Financial Advice Confirmation, tied by its authorization_reference to
    the session its terminal started (and that session's CDR); return it and whether it is new.
    The same id again replaces it (a capture retried)."""
    try:
        advice = v230.read_financial_advice(body)
    except v230.InvalidObject as exc:
        raise PaymentRefused(ocpi.Code.INVALID_PARAMETERS, exc.message) from None
    payment = (
        TerminalPayment.objects.select_related("session__charger__property")
        .filter(partner=partner, authorization_reference=advice.authorization_reference)
        .first()
    )
    if payment is None:
        raise PaymentRefused(
            ocpi.Code.INVALID_PARAMETERS,
            "Unknown authorization_reference: none of your START_SESSIONs carried it.",
            http_status=404,
        )
    session = _session_of(payment)
    prop = session.charger.property if session is not None else None
    if prop is not None and advice.currency != prop.currency:
        raise PaymentRefused(
            ocpi.Code.INVALID_PARAMETERS,
            f"currency: the session was charged in {prop.currency}.",
        )
    values = {
        "organization_id": partner.organization_id,
        "payment": payment,
        "capture_status_code": advice.capture_status_code,
        "capture_status_message": advice.capture_status_message,
        "currency": advice.currency,
        "total_excl_tax": advice.total_excl_tax,
        "total_incl_tax": advice.total_incl_tax,
        "eft_data": list(advice.eft_data),
        "data": body,
        "last_updated": advice.last_updated,
    }
    with transaction.atomic():
        held = (
            FinancialAdviceConfirmation.objects.select_for_update()
            .filter(partner=partner, fac_id=advice.id)
            .first()
        )
        if held is not None and advice.last_updated < held.last_updated:
            # Older than the one we hold (a FAILED capture retried after the SUCCESS that
            # followed it): the newer one stands.
            return held, False
        confirmation, created = FinancialAdviceConfirmation.objects.update_or_create(
            partner=partner, fac_id=advice.id, defaults=values
        )
    logger.info(
        "PTP %s confirmed %s for %s: %s",
        partner.pk,
        advice.total_incl_tax,
        advice.authorization_reference,
        advice.capture_status_code,
    )
    return confirmation, created


def financial_advice_get(*, partner: Partner, fac_id: str) -> FinancialAdviceConfirmation | None:
    return FinancialAdviceConfirmation.objects.filter(
        partner=partner, fac_id__iexact=fac_id
    ).first()


# -- what the portal and the invoice say --------------------------------------------------------------


@dataclass(frozen=True)
class PaymentStatus:
    """A terminal payment in words: where it stands, and whether the capture matches our CDR."""

    state: str
    words: str
    captured: Decimal | None = None
    billed: Decimal | None = None

    @property
    def mismatch(self) -> bool:
        return (
            self.captured is not None and self.billed is not None and self.captured != self.billed
        )


def payment_status(payment: TerminalPayment) -> PaymentStatus:
    """Return where a terminal payment stands, in words an operator can act on."""
    confirmation = payment.confirmations.order_by("-received_at", "-pk").first()
    session = payment.session
    billed = _billed(session) if session is not None else None
    if confirmation is not None:
        captured = confirmation.total_incl_tax
        amount = f"{captured.normalize():f} {confirmation.currency}"
        if confirmation.capture_status_code == FinancialAdviceConfirmation.Capture.FAILED:
            said = confirmation.capture_status_message or "no reason given"
            return PaymentStatus("failed", f"The capture failed at the terminal: {said}.")
        words = (
            f"Paid at the terminal: {amount}"
            if confirmation.capture_status_code == FinancialAdviceConfirmation.Capture.SUCCESS
            else f"Partly paid at the terminal: {amount}"
        )
        status = PaymentStatus("paid", words + ".", captured, billed)
        if status.mismatch:
            words += f", while the session cost {billed} {confirmation.currency}"
            return PaymentStatus("paid", words + ": check with the PTP.", captured, billed)
        return status
    if session is None:
        return PaymentStatus("starting", "Waiting for the charger to start.")
    if session.status == ChargingSession.Status.ACTIVE:
        return PaymentStatus("charging", "Charging.")
    return PaymentStatus(
        "finished", "Finished: waiting for the PTP's confirmation of the capture.", None, billed
    )


def _billed(session: ChargingSession) -> Decimal | None:
    cdr = Cdr.objects.current().filter(session=session).first()
    if cdr is None:
        return None
    total = cdr.data.get("total_cost") if isinstance(cdr.data, dict) else None
    if not isinstance(total, dict):
        return None
    if "incl_vat" in total:
        return Decimal(str(total["incl_vat"]))
    before = Decimal(str(total.get("before_taxes", 0)))
    taxes = total.get("taxes") or []
    return before + sum((Decimal(str(t.get("amount", 0))) for t in taxes), Decimal(0))


def partner_property_ids(partner: Partner) -> list[int]:
    """Return the operator's locations that have public roaming chargers (assignable)."""
    return sorted(
        {
            int(pk)
            for pk in selectors.published_chargers(partner.organization_id).values_list(
                "property_id", flat=True
            )
        }
    )


def assignable(partner: Partner) -> list[tuple[Property, list[tuple[Charger, int]]]]:
    """Return the operator's published locations with their EVSEs (charger, connector id), for
    the assignment form."""
    by_property: dict[int, list[tuple[Charger, int]]] = {}
    props: dict[int, Property] = {}
    for charger in selectors.published_chargers(partner.organization_id):
        assert charger.property is not None
        props[charger.property.pk] = charger.property
        connectors = sorted(c.connector_id for c in charger.connectors.all() if c.connector_id >= 1)
        for connector_id in connectors or [1]:
            by_property.setdefault(charger.property.pk, []).append((charger, connector_id))
    return [(props[pk], by_property[pk]) for pk in sorted(props)]
