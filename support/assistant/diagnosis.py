"""Live findings for the assistant: the charger, its connectors, recent refusals, the session's cost
lines, the payment and payouts, each as a sentence with its time and cause.

What a caller may see is decided here: a host sees their organizations' objects only (another
organization's charger or session is treated as unknown), an anonymous guest sees what the guest
page shows about a charger, recent refusals with the card number masked, and a session's cost only
when the email they give is the one the session was paid with.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import timezone

from authorization.decisions import CONTRACT_REASONS
from authorization.models import AuthorizationDecision, Token, normalize_uid
from backoffice.tenancy import readable_organization_ids
from billing.models import Payment, Payout, SessionCharge
from billing.selectors import rate_for_charger
from chargers.devices.commands import NOT_SENT, UNREACHABLE
from chargers.models import Charger, ChargerDeviation, ChargingSession, Command, Connector
from chargers.ocpp.quirks import CLOCK_WRONG
from reliability.services import charger_facts as reliability_facts
from reliability.services import fault_facts
from stays.selectors import stay_support_sentences

from ..models import VendorErrorCode
from . import lookups
from .card_refusal import card_refusal, host_fix_steps
from .error_codes import explain_error_code
from .intents import Intent, only_asks_where
from .refusals import refusals_at
from .topics import CLOCK_STEPS_GUEST, SECTIONS, Finding, Topic, clock_logs_step

ACCEPTED = "Accepted"
# How far back refusals count as "what just happened to you".
GUEST_REFUSAL_WINDOW = timedelta(minutes=30)
HOST_REFUSAL_WINDOW = timedelta(hours=24)
# Refusal reasons in a guest's words (host-facing messages name host settings and other cards).
GUEST_REASON_WORDS = {
    "license_inactive": "the charger's license is not active",
    "unknown_token": "the card is not registered here",
    "token_blocked": "the card is blocked",
    "token_invalid": "the card is not valid",
    "token_expired": "the card has expired",
    "msp_blocked": "the card's provider is not accepted here",
    "msp_rejected": "the card's provider refused it",
    "msp_timeout": "the card's provider did not answer in time",
    "msp_refused_our_credentials": (
        "the charger's operator could not check the card with its provider (the provider refused "
        "the operator's connection, not your card): try another card or the charger's QR page, "
        "and tell the operator"
    ),
    "charger_not_roaming": "this charger does not accept guest or other networks' cards",
    "remote_start_roaming_disabled": "this charger cannot be started from a phone",
    "not_in_local_group": "it is not in this charger's local token group (residents or registered guests)",
    "reimbursement_not_allowed": "the card may not charge at this station",
    "concurrent_tx": "the card already has a session running",
    "msp_token_invalid": "the card's provider marked it as not valid",
    "guest_token_spent": "that payment's session is over: pay again from the charger's QR page",
    "connector_reserved": "this connector is reserved for someone else",
    "reservation_other_unit": "the access code is for another unit or property",
    "reservation_not_active": "the access code does not allow charging at this time",
    "reservation_cap_reached": "the stay's included energy is used up",
    # Plug & Charge: the car presented its contract; the way out is a card or the QR page.
    "contract_revoked": (
        "the car's Plug & Charge contract is revoked by its provider: start with a card or the "
        "charger's QR page, and ask your provider for a new contract"
    ),
    "contract_expired": (
        "the car's Plug & Charge contract has expired: start with a card or the charger's QR "
        "page, and ask your provider to renew it"
    ),
    "contract_unverified": (
        "the car's Plug & Charge contract could not be checked here: start with a card or the "
        "charger's QR page"
    ),
    "contract_unknown_to_issuer": (
        "the car's Plug & Charge contract was refused by the provider it names: start with a "
        "card or the charger's QR page, and ask your provider about the contract"
    ),
}


@dataclass
class Viewer:
    """Who asks: a host (their organizations; None = staff, everything) or a guest.

    A signed-in driver (no organization) asks as a guest does, with their account's email: they
    see their own sessions and no organization's data.
    """

    user: Any = None
    organization_ids: list[int] | None = field(default_factory=list)

    @property
    def is_host(self) -> bool:
        return (
            self.user is not None
            and getattr(self.user, "is_authenticated", False)
            and (self.organization_ids is None or bool(self.organization_ids))
        )

    @property
    def driver_email(self) -> str:
        if self.is_host or self.user is None or not getattr(self.user, "is_authenticated", False):
            return ""
        return str(getattr(self.user, "email", "") or "")

    @classmethod
    def for_user(cls, user: Any) -> Viewer:
        if user is None or not getattr(user, "is_authenticated", False):
            return cls()
        return cls(user, readable_organization_ids(user))

    def may_see_org(self, organization_id: int | None) -> bool:
        if not self.is_host:
            return False
        return self.organization_ids is None or organization_id in self.organization_ids


@dataclass
class Diagnosis:
    facts: list[str] = field(default_factory=list)
    findings: set[Finding] = field(default_factory=set)
    charger: Charger | None = None
    session: ChargingSession | None = None
    property_name: str = ""
    # Details the live data answers (PMS name, the failed payout …), merged into the conversation's.
    details: dict[str, str] = field(default_factory=dict)
    # For the agent on the ticket only (identity verification), never shown to the asker.
    agent_facts: list[str] = field(default_factory=list)
    # What the ticket holds about a charger the asker sees only as its guest page shows it: the
    # full charger facts, for the charger's host and the agent (never in the reply).
    ticket_facts: list[str] = field(default_factory=list)
    # Direct answers to a request (a portal path), said before the section's steps.
    answers: list[str] = field(default_factory=list)
    # A host's own steps (the fix of a refused card, with its portal paths): said instead of the
    # section's steps, which are written for the guest at the charger.
    steps: list[str] = field(default_factory=list)
    # The refusals still current at the host's chargers that the facts name (for their fixes).
    refused: list[tuple[AuthorizationDecision, Charger]] = field(default_factory=list)


def _tz(charger: Charger | None) -> zoneinfo.ZoneInfo:
    name = (
        charger.property.timezone if charger is not None and charger.property is not None else "UTC"
    )
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def when(at: datetime, tz: zoneinfo.ZoneInfo, now: datetime) -> str:
    """Return a time as people say it: 10:42 today, or 21 Nov 10:42."""
    local = at.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M")
    return f"{local.day} {local.strftime('%b %H:%M')}"


def ago(at: datetime, now: datetime) -> str:
    """Return how long ago, roughly: 45 s, 12 min, 3 h, 2 days."""
    seconds = max(int((now - at).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def mask_uid(uid: str) -> str:
    """Return the first four characters of a card number and an ellipsis."""
    return uid[:4] + "…" if len(uid) > 4 else uid


def find_charger(station_id: str, viewer: Viewer) -> Charger | None:
    """Return the charger the viewer may ask about, or None (unknown and foreign look the same)."""
    if not station_id:
        return None
    charger = (
        Charger.objects.select_related("property")
        .prefetch_related("token_groups")
        .filter(station_id=station_id.strip())
        .first()
    )
    if charger is None:
        return None
    if page_only(charger, viewer) and charger.property_id is None:
        return None  # no guest page either: a charger on no property is not active for guests
    return charger


def page_only(charger: Charger, viewer: Viewer) -> bool:
    """Whether the viewer sees this charger only as its guest page shows it (issue 47 item 6):
    anonymous callers, drivers and hosts of other organizations alike."""
    return not viewer.may_see_org(charger.organization_id)


def _start_blockers(
    charger: Charger, now: datetime, tz: zoneinfo.ZoneInfo, diagnosis: Diagnosis
) -> None:
    """What keeps any session from starting, as the guest page says it too: the license, out of
    order, private, or no guest charging."""
    sid = charger.station_id
    facts, findings = diagnosis.facts, diagnosis.findings
    if not charger.license_active(now.astimezone(tz).date()):
        findings.add(Finding.LICENSE_INACTIVE)
        facts.append(f"Charger {sid}'s license is not active, so no session can start on it.")
    if charger.out_of_order:
        facts.append(f"Charger {sid} is marked out of order by the site host.")
    if charger.access_mode == Charger.AccessMode.PRIVATE:
        findings.add(Finding.RESTRICTED)
        facts.append(f"Charger {sid} is private: it accepts only the property's own cards.")
    elif not charger.effective_guest_charging_enabled:
        findings.add(Finding.GUEST_CHARGING_OFF)
        facts.append(f"Guest charging (QR code) is turned off at charger {sid}.")


def guest_page_facts(charger: Charger, now: datetime, diagnosis: Diagnosis) -> None:
    """What the charger's guest page (/s/<station id>) shows, and nothing more: whether a session
    can start (offline, license, out of order, private or residents only), each port's status and
    the price. No times, heartbeats, error codes, vendor codes or token group names."""
    sid = charger.station_id
    facts, findings = diagnosis.facts, diagnosis.findings
    if charger.ownership == Charger.Ownership.PRIVATE_OWNER:
        facts.append(
            f"Charger {sid} is a privately owned charger, not part of the public network: ask its "
            "owner for permission to use it."
        )
        findings.add(Finding.RESTRICTED)
        return
    if charger.is_online(now) and charger.last_seen_at is not None:
        findings.add(Finding.ONLINE)
        facts.append(f"Charger {sid} is online.")
    else:
        findings.add(Finding.OFFLINE)
        facts.append(
            f"Charger {sid} is out of order: it is offline right now, so no session can start on it."
        )
    tz = _tz(charger)
    _start_blockers(charger, now, tz, diagnosis)
    if charger.token_groups.exists():
        findings.add(Finding.RESTRICTED)
        facts.append(f"Charger {sid} accepts only the cards of residents or registered guests.")
    for connector in Connector.objects.filter(charger=charger, connector_id__gt=0).order_by(
        "connector_id"
    ):
        _port_fact(connector, diagnosis)
    price = _price_text(charger, now)
    if price:
        facts.append(f"Price at {sid}: {price}.")


_PORT_WORDS = {
    "Available": "free",
    "Preparing": "plugged in, waiting for a start",
    "Charging": "charging",
    "SuspendedEV": "in use (the car is not taking energy)",
    "SuspendedEVSE": "in use (the charger is holding the energy back)",
    "Finishing": "finishing a session",
    "Reserved": "reserved",
    "Unavailable": "out of service",
    "Faulted": "out of service",
}


def _port_fact(connector: Connector, diagnosis: Diagnosis) -> None:
    """A port as the guest page lists it: its number and status, in words."""
    status = "Faulted" if connector.error_code not in ("", "NoError") else connector.status
    if status == "Faulted":
        diagnosis.findings.add(Finding.FAULTED)
    elif status == "Charging":
        diagnosis.findings.add(Finding.CHARGING)
    elif status in ("Preparing", "SuspendedEV", "SuspendedEVSE", "Finishing"):
        diagnosis.findings.add(Finding.PLUGGED_IN)
    elif status == "Available":
        diagnosis.findings.add(Finding.CONNECTOR_OK)
    words = _PORT_WORDS.get(status, status.lower())
    diagnosis.facts.append(f"Connector {connector.connector_id} is {status} ({words}).")


def _price_text(charger: Charger, now: datetime) -> str:
    """The guest price as the guest page lists it (the processing fee is the host's, not shown)."""
    rate = rate_for_charger(charger, now)
    if rate is None:
        return ""
    currency = rate.property.currency
    parts = [f"{_money(rate.energy_price_per_kwh, currency)} per kWh"]
    if rate.connection_fee:
        parts.insert(0, f"{_money(rate.connection_fee, currency)} connection fee")
    if rate.time_price_per_hour:
        parts.append(f"{_money(rate.time_price_per_hour, currency)} per hour plugged in")
    if rate.idle_fee_per_minute:
        grace = f" after {rate.idle_grace_minutes} free minutes" if rate.idle_grace_minutes else ""
        parts.append(f"{_money(rate.idle_fee_per_minute, currency)} per idle minute{grace}")
    if rate.tax_percent:
        parts.append(f"tax {rate.tax_percent.normalize():f} %")
    return ", ".join(parts)


def _amount(text: str) -> Decimal | None:
    """Return the number in an amount as typed ("1.28 EUR", "€1,28", "41 bucks")."""
    match = re.search(r"\d+(?:[.,]\d{1,2})?", text or "")
    if not match:
        return None
    try:
        return Decimal(match.group(0).replace(",", "."))
    except ArithmeticError:
        return None


def _matches(payment: Payment, amount: Decimal | None, last4: str, email: str) -> int:
    """How many of the details the guest gave this payment matches."""
    charged = payment.amount_captured or payment.amount_held
    total = getattr(getattr(payment.session, "charge", None), "total", None)
    score = 0
    if amount is not None and amount in (charged, total):
        score += 1
    if last4 and payment.card_last4 == last4:
        score += 1
    if email and payment.email.lower() == email.strip().lower():
        score += 2
    return score


def find_session(
    session_id: int | None,
    viewer: Viewer,
    *,
    email: str,
    charger: Charger | None,
    amount: str = "",
    card_last4: str = "",
    now: datetime | None = None,
) -> ChargingSession | None:
    """Return the session the viewer may see.

    A host: by id, else the charger's session with that amount, else its latest. A guest: their
    own paid session, found by the email it was paid with (on the page's charger when there is
    one), or on the page's charger by the amount
    or the card's last 4 (last 24 h), or anywhere by the amount and the last 4 together (7 days);
    never someone else's.
    """
    sessions = ChargingSession.objects.select_related("charger", "charger__property")
    wanted = _amount(amount)
    if viewer.is_host:
        if viewer.organization_ids is not None:
            sessions = sessions.filter(
                charger__property__organization_id__in=viewer.organization_ids
            )
        if session_id is not None:
            return sessions.filter(pk=session_id).first()
        if charger is None:
            # No charger named: the one payment of the organization that fits (30 days).
            fits = lookups.host_payments_that_fit(
                viewer, now or timezone.now(), amount=wanted, last4=card_last4
            )
            one = {p.session_id for p in fits if p.session_id is not None}
            return sessions.filter(pk=one.pop()).first() if len(one) == 1 else None
        latest = sessions.filter(charger=charger).order_by("-started_at")
        if wanted is not None:
            priced = latest.filter(charge__total=wanted).first()
            if priced is not None:
                return priced
        return latest.first()
    now = now or timezone.now()
    payments = Payment.objects.exclude(session=None).select_related("session__charge")
    if session_id is not None:
        payments = payments.filter(session_id=session_id)
    elif email:
        payments = payments.filter(email__iexact=email.strip())
        if charger is not None:
            payments = payments.filter(session__charger=charger)
    elif charger is not None:
        payments = payments.filter(
            session__charger=charger, created_at__gte=now - timedelta(hours=24)
        )
    else:
        payments = payments.filter(created_at__gte=now - timedelta(days=7))
    needed = 2 if (charger is None and session_id is None) else 1
    best: tuple[int, int | None] | None = None
    for payment in payments.order_by("-created_at")[:200]:
        score = _matches(payment, wanted, card_last4, email)
        if score >= needed and (best is None or score > best[0]):
            best = (score, payment.session_id)
    return sessions.filter(pk=best[1]).first() if best and best[1] is not None else None


def vendor_explanation(vendor: str, code: str) -> str:
    """Return the plain words for a vendor's error code ('' when the table does not know it).

    Chargers name their vendor loosely in BootNotification ("Alfen BV", "ChargePoint, Inc."), so a
    row matches when its vendor is a word-start prefix of the charger's; the longest match wins, and
    a "*" row is the fallback for any vendor.
    """
    if not code:
        return ""
    reported = vendor.strip().lower()
    best: VendorErrorCode | None = None
    for row in VendorErrorCode.objects.filter(code__iexact=code.strip()):
        name = row.vendor.strip().lower()
        if name == "*":
            if best is None:
                best = row
            continue
        if reported == name or reported.startswith((name + " ", name + ",", name + "-")):
            if best is None or best.vendor == "*" or len(name) > len(best.vendor):
                best = row
    if best is None:
        return ""
    return best.explanation + (f" – {best.advice}" if best.advice else "")


def charger_facts(charger: Charger, viewer: Viewer, now: datetime, diagnosis: Diagnosis) -> None:
    """Add the charger's connection, license, access and connector facts."""
    if charger.ownership == Charger.Ownership.PRIVATE_OWNER and not viewer.is_host:
        diagnosis.facts.append(
            f"Charger {charger.station_id} is a privately owned charger, not part of the public "
            "network: ask its owner for permission to use it."
        )
        diagnosis.findings.add(Finding.RESTRICTED)
        return
    tz = _tz(charger)
    _connection_facts(charger, now, tz, diagnosis)
    if viewer.is_host and charger.last_seen_at is None:
        # Power and Wi-Fi aside, a charger that never reached us is usually pointed elsewhere.
        diagnosis.facts.append(
            f"Check that {charger.station_id}'s OCPP URL and Station ID are exactly those on its "
            f"setup card (linked from its page under Chargers, /chargers/{charger.station_id}/setup-card/): "
            "a charger set to another address or ID never reaches us."
        )
    if viewer.is_host:
        _unsent_command_fact(charger, viewer, now, tz, diagnosis)
        _clock_fact(charger, now, tz, diagnosis)
    _access_facts(charger, viewer, now, tz, diagnosis)
    if (
        viewer.is_host
    ):  # stays (docs/pms.md): its unit, the stays using it, calendar/PMS sync health
        diagnosis.facts.extend(stay_support_sentences(charger, now=now, tz=tz))
    for connector in Connector.objects.filter(charger=charger).order_by("connector_id"):
        _connector_facts(charger, connector, now, tz, diagnosis)


def _connection_facts(
    charger: Charger, now: datetime, tz: zoneinfo.ZoneInfo, diagnosis: Diagnosis
) -> None:
    """Online (since its last message) or offline (since when, its last heartbeat), or never
    connected."""
    sid = charger.station_id
    if charger.is_online(now) and charger.last_seen_at is not None:
        diagnosis.findings.add(Finding.ONLINE)
        diagnosis.facts.append(
            f"Charger {sid} is online (last message {ago(charger.last_seen_at, now)})."
        )
        return
    diagnosis.findings.add(Finding.OFFLINE)
    if charger.last_seen_at is None:
        diagnosis.facts.append(f"Charger {sid} has never connected to the network.")
        return
    since = charger.disconnected_at if not charger.connection_id else charger.last_seen_at
    since = since or charger.last_seen_at
    heartbeat = charger.last_heartbeat_at or charger.last_seen_at
    diagnosis.facts.append(
        f"Charger {sid} has been offline since {when(since, tz, now)} "
        f"(last heartbeat {ago(heartbeat, now)})."
    )


# A wrong clock older than this is history, not what the host asks about now.
CLOCK_RECENT = timedelta(days=7)


def _clock_fact(
    charger: Charger, now: datetime, tz: zoneinfo.ZoneInfo, diagnosis: Diagnosis
) -> None:
    """The charger sent times it cannot have meant (chargers.ocpp.clock): say what we did about
    it and how the host sets the clock, and where the Logs mark those messages."""
    seen = (
        ChargerDeviation.objects.filter(
            charger=charger, code=CLOCK_WRONG, last_seen_at__gte=now - CLOCK_RECENT
        )
        .only("detail", "count", "first_seen_at", "last_seen_at")
        .first()
    )
    if seen is None:
        return
    diagnosis.findings.add(Finding.CLOCK_WRONG)
    times = (
        "seen once"
        if seen.count == 1
        else f"seen {seen.count} times since {when(seen.first_seen_at, tz, now)}"
    )
    # The detail is the value as sent, then what is wrong with it (chargers.ocpp.clock.wrong).
    sent = re.match(r"^('[^']*'|\"[^\"]*\") (.+)$", seen.detail)
    what = f"{sent[1]}, {sent[2]}" if sent else seen.detail
    diagnosis.facts.append(
        f"Charger {charger.station_id}'s clock is wrong: a time it sent "
        f"{ago(seen.last_seen_at, now)}, {what} ({times}). We used the time each message reached "
        "us instead, so its sessions are timed and billed right. To fix it, set the charger's "
        "clock: it should take our time from the BootNotification and Heartbeat answers (check "
        'its time or NTP setting, then restart it). Those messages are marked "charger clock '
        'wrong" under Chargers > View > Logs.'
    )


def _unsent_commands(now: datetime) -> Any:
    """Commands a person sent in the last hour that were never sent to the charger (it still
    owed the answer to an earlier request, or our message service was away: docs/ocpp.md),
    newest first. The system's own (a power limit, a configuration push) have their own pages
    and retries."""
    return (
        Command.objects.filter(
            Q(error__startswith=NOT_SENT) | Q(error=UNREACHABLE),
            status=Command.Status.TIMEOUT,
            created_at__gte=now - timedelta(hours=1),
            requested_by__isnull=False,
        )
        .select_related("requested_by")
        .order_by("-created_at", "-pk")
    )


def _fleet_unsent(viewer: Viewer, now: datetime, diagnosis: Diagnosis) -> None:
    """A host who says a command was not sent and names no charger: their latest such one."""
    commands = _unsent_commands(now).exclude(charger__property=None)
    if viewer.organization_ids is not None:
        commands = commands.filter(charger__property__organization_id__in=viewer.organization_ids)
    unsent = commands.select_related("charger", "charger__property").first()
    if unsent is None:
        diagnosis.facts.append(
            "None of your chargers had a command left unsent in the last hour: which charger, "
            "and which command?"
        )
        return
    _pick(unsent.charger, viewer, now, diagnosis)


def _unsent_command_fact(
    charger: Charger, viewer: Viewer, now: datetime, tz: zoneinfo.ZoneInfo, diagnosis: Diagnosis
) -> None:
    """A command of the last hour that was never sent: why, and what to do."""
    unsent = _unsent_commands(now).filter(charger=charger).first()
    if unsent is None:
        return
    mine = viewer.user is not None and unsent.requested_by_id == viewer.user.pk
    whose = "Your" if mine else f"{unsent.requested_by.get_username()}'s"
    if unsent.error == UNREACHABLE:
        diagnosis.facts.append(
            f"{whose} {unsent.action} of {when(unsent.created_at, tz, now)} was not sent: a "
            f"service of ours was restarting, so nothing reached {charger.station_id}. Send it "
            "again; if it says the same, wait a minute and send it once more."
        )
        return
    earlier = re.search(r"\((\w+), sent", unsent.error)
    request = f" ({earlier.group(1)})" if earlier else ""
    diagnosis.facts.append(
        f"{whose} {unsent.action} of {when(unsent.created_at, tz, now)} was not sent: "
        f"{charger.station_id} had not yet answered an earlier request{request}. The network "
        "sends a charger one request at a time and waits for its answer: wait a minute and send "
        "it again. If it happens again while the charger shows online, the charger has stopped "
        "answering requests: restart it (power it off for a minute)."
    )


def _access_facts(
    charger: Charger, viewer: Viewer, now: datetime, tz: zoneinfo.ZoneInfo, diagnosis: Diagnosis
) -> None:
    """Who may start here: the license, out of order, private or no guest charging, local token
    groups (named to a host only), and (to a host) a charger with no property."""
    sid = charger.station_id
    facts, findings = diagnosis.facts, diagnosis.findings
    _start_blockers(charger, now, tz, diagnosis)
    restricted = list(charger.token_groups.all())
    if restricted:
        findings.add(Finding.RESTRICTED)
        names = (
            ", ".join(g.name for g in restricted)
            if viewer.is_host
            else "residents or registered guests"
        )
        facts.append(f"Charger {sid} accepts only cards in its local token groups ({names}).")
    if viewer.is_host and charger.property_id is None:
        findings.add(Finding.NO_PROPERTY)
        facts.append(f"Charger {sid} is not assigned to a property yet.")


# What a connector's status means, said after it (not for Available).
_STATUS_WORDS = {
    "SuspendedEV": " – the car is not taking energy (full, scheduled charging, or not ready)",
    "SuspendedEVSE": " – the charger is holding the energy back (power limit or a start "
    "that has not been authorized)",
    "Preparing": " – plugged in, waiting for a start",
    "Unavailable": " – taken out of service",
}


def _connector_facts(
    charger: Charger,
    connector: Connector,
    now: datetime,
    tz: zoneinfo.ZoneInfo,
    diagnosis: Diagnosis,
) -> None:
    """A fault (with the vendor's code and the error's meaning in plain words), or a connector's
    status when it is not Available."""
    at = f" since {when(connector.status_timestamp, tz, now)}" if connector.status_timestamp else ""
    label = "The charger" if connector.connector_id == 0 else f"Connector {connector.connector_id}"
    if connector.status == "Faulted" or connector.error_code not in ("", "NoError"):
        diagnosis.findings.add(Finding.FAULTED)
        diagnosis.facts.append(_fault_text(charger, connector, label, at) + ".")
        return
    if connector.connector_id <= 0:
        return
    if connector.status in ("Charging",):
        diagnosis.findings.add(Finding.CHARGING)
    if connector.status in ("Preparing", "SuspendedEV", "SuspendedEVSE", "Finishing"):
        diagnosis.findings.add(Finding.PLUGGED_IN)
    if connector.status == "Available":
        diagnosis.findings.add(Finding.CONNECTOR_OK)
    else:
        explanation = _STATUS_WORDS.get(connector.status, "")
        diagnosis.facts.append(f"{label} is {connector.status}{at}{explanation}.")


def _fault_text(charger: Charger, connector: Connector, label: str, at: str) -> str:
    text = f"{label} reports {connector.status}: {connector.error_code}"
    if connector.vendor_error_code:
        # "(vendor code E12: <plain words>)" when the vendor table knows the code.
        vendor_meaning = vendor_explanation(charger.vendor, connector.vendor_error_code)
        text += f" (vendor code {connector.vendor_error_code}"
        text += f": {vendor_meaning})" if vendor_meaning else ")"
    text += at
    meaning = explain_error_code(connector.error_code)
    if meaning:
        text += f" – {meaning}"
    return text


def _refusal_reason(decision: AuthorizationDecision, viewer: Viewer) -> str:
    reason = (
        decision.message
        if viewer.is_host
        else GUEST_REASON_WORDS.get(
            decision.reason, "the charger's access settings do not allow it"
        )
    )
    if viewer.is_host and decision.reason == "msp_refused_our_credentials" and decision.msp_id:
        # Which provider refused our credentials: the host has one to renew, not every one.
        msp = decision.msp
        if msp is not None and viewer.may_see_org(msp.organization_id):
            reason = reason.replace(
                "The card's mobility provider ", f"The card's mobility provider {msp.name} ", 1
            )
    reason = reason[0].lower() + reason[1:] if reason else reason
    return reason.rstrip(".")


def _refused_subject(decision: AuthorizationDecision, viewer: Viewer, yours: bool) -> str:
    """What was refused, in the viewer's words: a card, or a car's Plug & Charge contract (the
    reason or the card's type says so); a host sees its id, a guest only whether it is theirs."""
    contract = decision.reason in CONTRACT_REASONS or (
        decision.token is not None and decision.token.type == Token.Type.EMAID
    )
    if viewer.is_host:
        stay = (
            f" (access code of the reservation {decision.reservation})"
            if decision.reservation_id
            else ""
        )
        what = (
            f"The car's contract {decision.uid} (Plug & Charge)"
            if contract
            else f"Card {decision.uid}"
        )
        return what + stay
    if contract:
        return "A car's Plug & Charge contract"
    return "Your card" if yours else "A card"


def refusal_facts(
    charger: Charger, viewer: Viewer, now: datetime, diagnosis: Diagnosis, card_uid: str = ""
) -> None:
    """Add the refusals at this charger that are still a problem now (support/assistant/refusals.py).

    One sentence per card and reason. A host sees the card and, when they ask about that very
    card, since when a refusal is solved; a guest sees no card data of anyone else: "a card", or "your card" when they named it.
    """
    tz = _tz(charger)
    window = HOST_REFUSAL_WINDOW if viewer.is_host else GUEST_REFUSAL_WINDOW
    mine = normalize_uid(card_uid) if card_uid else ""
    for refusal in refusals_at(charger, since=now - window, now=now)[:3]:
        decision = refusal.decision
        yours = bool(mine) and (decision.uid_normalized or normalize_uid(decision.uid)) == mine
        if not refusal.current and not (viewer.is_host and yours):
            continue  # solved: worth saying only to a host asking about that very card
        times = f" {refusal.count} times" if refusal.count > 1 else ""
        at = when(decision.created_at, tz, now)
        last = f", last at {at}" if refusal.count > 1 else f" at {at}"
        reason = _refusal_reason(decision, viewer)
        subject = _refused_subject(decision, viewer, yours)
        text = f"{subject} was refused{'' if viewer.is_host else ' here'}{times}{last}"
        if viewer.is_host:
            text += f" ({decision.status})"
        text += f" because {reason}"
        if refusal.current:
            diagnosis.findings.add(Finding.CARD_REFUSED)
            diagnosis.facts.append(text + ".")
            if viewer.is_host:
                diagnosis.refused.append((decision, charger))
        elif refusal.solved_how == "charged" and refusal.solved_at is not None:
            diagnosis.facts.append(
                f"{text}, but it has charged here since {when(refusal.solved_at, tz, now)}: solved."
            )
        else:
            diagnosis.facts.append(f"{text}, but the charger's settings accept it now: solved.")


def _money(value: Decimal, currency: str) -> str:
    return f"{value.quantize(Decimal('0.01'))} {currency}"


def session_facts(
    session: ChargingSession, viewer: Viewer, now: datetime, diagnosis: Diagnosis
) -> None:
    """Add the session's energy, cost lines, payment and refund state."""
    tz = _tz(session.charger)
    started = when(session.started_at, tz, now)
    energy = session.energy_wh
    if session.status == ChargingSession.Status.ACTIVE:
        diagnosis.facts.append(
            f"Session {session.pk} at {session.charger.station_id} has been running since {started}."
        )
    else:
        kwh = (
            f"{Decimal(energy or 0) / 1000:.3f} kWh"
            if energy is not None
            else "an unknown amount of energy (the charger reported no energy reading)"
        )
        reason = f", stop reason {session.stop_reason}" if session.stop_reason else ""
        diagnosis.facts.append(
            f"Session {session.pk} at {session.charger.station_id} started {started} and delivered {kwh}{reason}."
        )
    lookups.signed_meter_facts(session, diagnosis)
    charge = SessionCharge.objects.filter(session=session).first()
    if charge is not None:
        diagnosis.findings.add(Finding.SESSION_PRICED)
        lines = []
        for line in charge.lines:
            amount = Decimal(str(line.get("amount", "0")))
            lines.append(
                f"{line.get('description', line.get('kind', ''))} = {_money(amount, charge.currency)}"
            )
            if line.get("kind") == "idle_fee":
                diagnosis.findings.add(Finding.IDLE_FEE)
        if charge.tax:
            lines.append(f"tax = {_money(charge.tax, charge.currency)}")
        diagnosis.facts.append(
            f"This session cost {_money(charge.total, charge.currency)}: " + "; ".join(lines) + "."
        )
    for payment in Payment.objects.filter(session=session).order_by("created_at"):
        last4 = getattr(payment, "card_last4", "")
        card = f" on the card ending {last4}" if last4 else ""
        text = (
            f"Payment {payment.reference[-8:]}: {payment.get_status_display().lower()}{card}, "
            f"held {_money(payment.amount_held, payment.currency)}, "
            f"charged {_money(payment.amount_captured, payment.currency)}"
        )
        if payment.amount_refunded:
            text += f", refunded {_money(payment.amount_refunded, payment.currency)}"
        if payment.status == Payment.Status.RELEASED and payment.release_reason:
            text += f" (released: {payment.release_reason})"
        diagnosis.facts.append(text + ".")
        if last4:
            diagnosis.details.setdefault("card_last4", last4)
        _hold_fact(payment, diagnosis)


def _hold_fact(payment: Payment, diagnosis: Diagnosis) -> None:
    """What "charged twice" usually is: the hold at the start and the smaller charge at the end."""
    if payment.status != Payment.Status.CAPTURED or payment.amount_held <= payment.amount_captured:
        return
    diagnosis.findings.add(Finding.CARD_HOLD)
    currency = payment.currency
    card = f"the card ending {payment.card_last4}" if payment.card_last4 else "the card"
    diagnosis.facts.append(
        f"This is one payment, not two: when the session started, {card} was held for "
        f"{_money(payment.amount_held, currency)} (a pre-authorization, not a charge); when it "
        f"ended, {_money(payment.amount_captured, currency)} was captured and the other "
        f"{_money(payment.amount_held - payment.amount_captured, currency)} of the hold released. "
        "The bank may show the hold as pending for a few days until it drops off."
    )


def payout_facts(viewer: Viewer, now: datetime, diagnosis: Diagnosis) -> None:
    """Add the host's recent payouts, failed ones with their reason."""
    payouts = Payout.objects.all()
    if viewer.organization_ids is not None:
        payouts = payouts.filter(organization_id__in=viewer.organization_ids)
    for payout in payouts.order_by("-period_end", "-id")[:3]:
        period = f"{payout.period_start:%d %b}–{payout.period_end:%d %b %Y}"
        if payout.status == Payout.Status.FAILED:
            diagnosis.findings.add(Finding.PAYOUT_FAILED)
            diagnosis.facts.append(
                f"Payout #{payout.pk} ({payout.reference}, {period}, {_money(payout.net, payout.currency)}) "
                f"failed: {payout.failure_reason or 'the bank did not accept it'}."
            )
        else:
            paid = f" on {payout.paid_at:%d %b}" if payout.paid_at else ""
            diagnosis.facts.append(
                f"Payout #{payout.pk} ({payout.reference}, {period}) is {payout.get_status_display().lower()}{paid}: "
                f"{_money(payout.gross, payout.currency)} gross − {_money(payout.processing_fees, payout.currency)} "
                f"processing − {_money(payout.platform_fees, payout.currency)} platform fees − "
                f"{_money(payout.refunds, payout.currency)} refunds + "
                f"{_money(payout.carried_over, payout.currency)} carried over = {_money(payout.net, payout.currency)}."
            )


CHARGER_TOPICS = frozenset(
    {
        Topic.CHARGER_CLOCK,
        Topic.CHARGER_OFFLINE,
        Topic.NOT_CHARGING,
        Topic.NO_PERMISSION,
        Topic.GUEST_START_ERROR,
        Topic.CHARGER_SETUP,
        Topic.OTHER,
    }
)
REFUSAL_TOPICS = frozenset(
    {Topic.NO_PERMISSION, Topic.GUEST_START_ERROR, Topic.NOT_CHARGING, Topic.OTHER}
)
SESSION_TOPICS = frozenset({Topic.BILLING_DISPUTE, Topic.COST_BREAKDOWN, Topic.NOT_CHARGING})


FLEET_TOPICS = frozenset({Topic.CHARGER_OFFLINE, Topic.GUEST_START_ERROR, Topic.NOT_CHARGING})


def _pick(charger: Charger, viewer: Viewer, now: datetime, diagnosis: Diagnosis) -> None:
    """The one charger of the fleet that fits: its facts, said as picked (nobody named it)."""
    diagnosis.charger = charger
    diagnosis.findings.add(Finding.FLEET_PICK)
    diagnosis.property_name = charger.property.name if charger.property else ""
    charger_facts(charger, viewer, now, diagnosis)


def _fleet_state(
    topic: Topic, viewer: Viewer, now: datetime, diagnosis: Diagnosis, wanted: frozenset[str]
) -> None:
    """A host who names no charger: answer from the fleet's live state. A fault question names
    the faulted charger; an offline one the offline chargers (asking which when several); nothing
    is said of a charger that does not fit."""
    faulted = lookups.host_faulted_chargers(viewer, now)
    offline = lookups.host_offline_chargers(viewer, now)
    if Intent.FAULT in wanted and Intent.OFFLINE not in wanted:
        candidates, what = faulted, "report a fault"
    elif Intent.OFFLINE in wanted:
        candidates, what = offline, "are offline"
    else:
        candidates, what = faulted + offline, "are faulted or offline"
    if len(candidates) == 1:
        _pick(candidates[0], viewer, now, diagnosis)
    elif candidates:
        names = ", ".join(_fleet_name(c, now) for c in candidates[:10])
        diagnosis.facts.append(
            f"{len(candidates)} of your chargers {what}: {names}. Which one is it?"
        )
        diagnosis.findings.add(Finding.FAULTED if what == "report a fault" else Finding.OFFLINE)
    elif Intent.FAULT in wanted:
        diagnosis.facts.append("None of your chargers reports a fault right now.")
    elif Finding.NO_PROPERTY not in diagnosis.findings:
        diagnosis.facts.append("All your chargers are online right now.")
        if faulted:
            diagnosis.facts.append(
                "Reporting a fault: " + ", ".join(c.station_id for c in faulted[:10]) + "."
            )


def clock_section(viewer: Viewer, station_id: str, now: datetime, diagnosis: Diagnosis) -> None:
    """The clock section's answer. The charger's host: which charger sent an impossible time
    (from their fleet when they name none) and the steps, with that charger's Logs page. Anyone
    else (a guest, a driver, a host of another organization): the guest's step, that the clock is
    the host's to set and the bill is right, and no charger fact the guest page does not show."""
    charger = diagnosis.charger
    if not viewer.is_host or (charger is not None and page_only(charger, viewer)):
        diagnosis.steps = list(CLOCK_STEPS_GUEST)
        return
    if charger is None and not station_id:
        _fleet_clock(viewer, now, diagnosis)
        charger = diagnosis.charger
    if charger is None:
        return
    sid = charger.station_id
    if Finding.CLOCK_WRONG not in diagnosis.findings:
        diagnosis.facts.append(
            f"Charger {sid} has sent no impossible time in the last {CLOCK_RECENT.days} days: "
            "each message's time is checked as it arrives (before 2015, or more than 10 minutes "
            'ahead of ours, is marked "charger clock wrong" in its Logs).'
        )
    generic = clock_logs_step("Chargers › View › Logs on the charger").text
    own = clock_logs_step(f"Chargers › View › Logs (/chargers/{sid}/logs/)").text
    diagnosis.steps = [
        own if step.text == generic else step.text for step in SECTIONS[Topic.CHARGER_CLOCK].steps
    ]


def _fleet_clock(viewer: Viewer, now: datetime, diagnosis: Diagnosis) -> None:
    """A host asking about a wrong clock without naming a charger: the ones of theirs that sent
    an impossible time in the last 7 days (the one, or the list and which one it is)."""
    chargers = lookups.host_chargers(viewer)
    wrong_ids = set(
        ChargerDeviation.objects.filter(
            charger__in=chargers, code=CLOCK_WRONG, last_seen_at__gte=now - CLOCK_RECENT
        ).values_list("charger_id", flat=True)
    )
    wrong = [c for c in chargers if c.pk in wrong_ids]
    if len(wrong) == 1:
        _pick(wrong[0], viewer, now, diagnosis)
    elif wrong:
        diagnosis.findings.add(Finding.CLOCK_WRONG)
        names = ", ".join(c.station_id for c in wrong[:10])
        diagnosis.facts.append(
            f"{len(wrong)} of your chargers sent a time they cannot have meant in the last "
            f"{CLOCK_RECENT.days} days: {names}. Which one is it?"
        )
    else:
        diagnosis.facts.append(
            f"None of your chargers sent an impossible time in the last {CLOCK_RECENT.days} "
            "days. Which charger shows the wrong time?"
        )


def _fleet_name(charger: Charger, now: datetime) -> str:
    if charger.last_seen_at is None:
        return f"{charger.station_id} (never connected)"
    if not charger.is_online(now):
        return f"{charger.station_id} (offline since {when(charger.disconnected_at or charger.last_seen_at, _tz(charger), now)})"
    return f"{charger.station_id} (faulted)"


def _fleet_refusals(viewer: Viewer, now: datetime, diagnosis: Diagnosis) -> None:
    """Cards refused at any of the host's chargers (24 h, still a problem) and guest card payments
    the bank declined, newest first."""
    start = len(diagnosis.facts)
    chargers = lookups.host_chargers(viewer)
    tz = _tz(chargers[0]) if chargers else zoneinfo.ZoneInfo("UTC")
    for charger in chargers:
        before = len(diagnosis.facts)
        refusal_facts(charger, viewer, now, diagnosis)
        for index in range(before, len(diagnosis.facts)):
            diagnosis.facts[index] = f"At {charger.station_id}: {diagnosis.facts[index]}"
    for payment in lookups.host_declined_payments(viewer, now):
        card = f" ending {payment.card_last4}" if payment.card_last4 else ""
        who = f" ({payment.email})" if payment.email else ""
        diagnosis.facts.append(
            f"A guest's card{card}{who} was declined by the bank at "
            f"{when(payment.created_at, tz, now)} when paying to charge: "
            f"{payment.last_error.rstrip('.')}. The guest can pay with another card."
        )
        diagnosis.findings.add(Finding.CARD_REFUSED)
    if len(diagnosis.facts) == start:
        diagnosis.facts.append("No card was refused at your chargers in the last 24 hours.")


def _never_connected(viewer: Viewer, now: datetime, diagnosis: Diagnosis) -> None:
    """Seed 003 §8: a charger missing from the network list is one that never connected."""
    never = [c for c in lookups.host_chargers(viewer) if c.last_seen_at is None]
    if not never:
        diagnosis.facts.append(
            "Every charger on your properties has connected. A new charger that has connected "
            "but is not on your network list is not assigned to your property yet: tell me its "
            "Station ID (under the QR code) and support links it."
        )
    for charger in never:
        place = f" at {charger.property.name}" if charger.property else ""
        diagnosis.facts.append(
            f"Charger {charger.station_id}{place} is registered but has never connected to the "
            "network: check its power, its internet (Wi-Fi or SIM) and that its OCPP server "
            "address is ours; it shows as online once it sends its first message."
        )
        diagnosis.details.setdefault("serial_or_station_id", charger.station_id)


def _host_lookups(
    topic: Topic,
    viewer: Viewer,
    now: datetime,
    diagnosis: Diagnosis,
    *,
    named_station: bool,
    wanted: frozenset[str] = frozenset(),
) -> None:
    """A host's question: answer from their chargers (when none is named), PMS and payouts."""
    unnamed = not named_station and diagnosis.charger is None
    if unnamed and Intent.NOT_SENT in wanted:
        _fleet_unsent(viewer, now, diagnosis)
    elif (
        unnamed
        and topic in FLEET_TOPICS
        and not (Intent.REFUSED in wanted and Intent.FAULT not in wanted)
    ):
        _fleet_state(topic, viewer, now, diagnosis, wanted)
    elif unnamed and (topic in REFUSAL_TOPICS or Intent.REFUSED in wanted):
        _fleet_refusals(viewer, now, diagnosis)
    if topic == Topic.CHARGER_SETUP:
        if unnamed and Intent.PMS_SYNC not in wanted or Intent.MISSING_CHARGER in wanted:
            _never_connected(viewer, now, diagnosis)
        diagnosis.details.update(lookups.pms_facts(viewer, now, diagnosis))
        if Intent.PMS_SYNC in wanted and Intent.MISSING_CHARGER not in wanted:
            # A PMS that does not sync is about the integration, not one charger's serial.
            diagnosis.details.setdefault("serial_or_station_id", "not needed: a PMS sync question")
    if topic == Topic.PAYOUTS_REPORTING:
        diagnosis.details.update(lookups.payout_account_facts(viewer, diagnosis))
        payout_facts(viewer, now, diagnosis)
    if not diagnosis.property_name:
        diagnosis.property_name = lookups.account_name(viewer)


def _unassigned_fact(station_id: str, now: datetime, diagnosis: Diagnosis) -> bool:
    """A host naming a charger that connected but belongs to no property yet (seed 003 §8)."""
    charger = Charger.objects.filter(station_id=station_id.strip(), property=None).first()
    if charger is None:
        return False
    seen = f" (last message {ago(charger.last_seen_at, now)})" if charger.last_seen_at else ""
    diagnosis.findings.add(Finding.NO_PROPERTY)
    diagnosis.facts.append(
        f"Charger {charger.station_id} has connected{seen} but is not assigned to any property "
        "yet: support links it to yours (a charger's location is set by support)."
    )
    diagnosis.details["station_id"] = charger.station_id
    return True


def _host_card(
    topic: Topic,
    viewer: Viewer,
    station_id: str,
    details: dict[str, str],
    now: datetime,
    diagnosis: Diagnosis,
    wanted: frozenset[str],
) -> bool:
    """A host asking about a card they name ("why was card 04A1B2C3 refused?"): its latest
    refusal at their chargers (or at the charger they name), why, and their fix
    (support/assistant/card_refusal.py). Another organization's charger is not searched."""
    uid = details.get("card_uid", "")
    if not (viewer.is_host and uid and (topic in REFUSAL_TOPICS or Intent.REFUSED in wanted)):
        return False
    charger = diagnosis.charger
    if station_id and (charger is None or page_only(charger, viewer)):
        return False  # unknown, or another organization's: what its guest page shows, only
    chargers = [charger] if charger is not None else lookups.host_chargers(viewer)
    answer = card_refusal(viewer, uid, chargers, now=now, when=lambda at, c: when(at, _tz(c), now))
    diagnosis.answers.append(answer.sentence)
    diagnosis.facts.append(answer.sentence)
    diagnosis.steps = answer.steps
    if answer.current:
        diagnosis.findings.add(Finding.CARD_REFUSED)
    if diagnosis.charger is None and answer.charger is not None:
        diagnosis.charger = answer.charger
        diagnosis.property_name = answer.charger.property.name if answer.charger.property else ""
    return True


def _host_refusal_steps(diagnosis: Diagnosis, viewer: Viewer) -> None:
    """A host asking why cards were refused, naming none: the fixes of the refusals found."""
    if diagnosis.steps:
        return
    for decision, charger in diagnosis.refused[:3]:
        for step in host_fix_steps(decision, charger, viewer):
            if step not in diagnosis.steps:
                diagnosis.steps.append(step)


def diagnose(
    topic: Topic,
    *,
    viewer: Viewer,
    station_id: str = "",
    session_id: int | None = None,
    email: str = "",
    details: dict[str, str] | None = None,
    now: datetime | None = None,
    wanted: frozenset[str] = frozenset(),
    reliability: bool = True,
) -> Diagnosis:
    """Return the live findings for this topic about the charger / session the viewer may see.
    `reliability` False leaves out the charger's reliability facts (open alerts, first aid, each
    port's uptime and success this month: about 35 queries a charger), for lists that name them
    one click away."""
    now = now or timezone.now()
    details = details or {}
    diagnosis = Diagnosis()
    charger = find_charger(station_id, viewer)
    session = (
        find_session(
            session_id,
            viewer,
            email=email,
            charger=charger,
            amount=details.get("amount", ""),
            card_last4=details.get("card_last4", ""),
            now=now,
        )
        if (topic in SESSION_TOPICS or session_id is not None)
        else None
    )
    if charger is None and session is not None:
        charger = session.charger
    diagnosis.charger, diagnosis.session = charger, session
    if (
        charger is not None
        and charger.property is not None
        and (viewer.is_host or charger.ownership != Charger.Ownership.PRIVATE_OWNER)
    ):
        diagnosis.property_name = charger.property.name
    if (
        station_id
        and charger is None
        and not (viewer.is_host and _unassigned_fact(station_id, now, diagnosis))
    ):
        diagnosis.findings.add(Finding.UNKNOWN_STATION)
        diagnosis.facts.append(
            f"No charger with Station ID {station_id.strip()[:48]} is known"
            + (
                " in your organizations."
                if viewer.is_host
                else ": check the ID under the QR code (it is case-sensitive)."
            )
        )
    if charger is not None and page_only(charger, viewer):
        guest_page_facts(charger, now, diagnosis)
        full = Diagnosis()
        charger_facts(charger, Viewer(), now, full)
        diagnosis.ticket_facts = full.facts
        if topic in REFUSAL_TOPICS:  # what the guest page said when the start was refused
            refusal_facts(charger, Viewer(), now, diagnosis, details.get("card_uid", ""))
    elif charger is not None and (topic in CHARGER_TOPICS or topic in SESSION_TOPICS):
        charger_facts(charger, viewer, now, diagnosis)
        if reliability and viewer.is_host and topic in CHARGER_TOPICS:
            # The same reliability facts the dashboard shows (open alerts, first aid, uptime).
            diagnosis.facts += reliability_facts(charger, now)
        elif viewer.is_host and topic in CHARGER_TOPICS:
            diagnosis.facts += fault_facts(charger)  # the open fault codes: one query
    card_named = _host_card(topic, viewer, station_id, details, now, diagnosis, wanted)
    if (
        charger is not None
        and topic in REFUSAL_TOPICS
        and not page_only(charger, viewer)
        and not card_named
    ):
        refusal_facts(charger, viewer, now, diagnosis, details.get("card_uid", ""))
    if session is not None:
        session_facts(session, viewer, now, diagnosis)
    elif topic in (Topic.BILLING_DISPUTE, Topic.COST_BREAKDOWN) and session_id is not None:
        diagnosis.facts.append(
            "I can't show that session here"
            + ("." if viewer.is_host else ": give the email the session was paid with.")
        )
    if topic == Topic.CHARGER_CLOCK:
        clock_section(viewer, station_id, now, diagnosis)
    if viewer.is_host:
        _host_lookups(
            topic,
            viewer,
            now,
            diagnosis,
            named_station=bool(station_id) or card_named,
            wanted=wanted,
        )
        _host_refusal_steps(diagnosis, viewer)
    self_service(topic, viewer, diagnosis, wanted)
    if topic in (Topic.ACCOUNT_CANCEL, Topic.ACCOUNT_EMAIL):
        diagnosis.agent_facts = lookups.identity_facts(details.get("account_email", "") or email)
    return diagnosis


def _logs_path(viewer: Viewer, diagnosis: Diagnosis) -> str:
    """Where a charger's OCPP messages are read (seed 001: Chargers > View > Logs)."""
    if not viewer.is_host:
        return (
            "A charger's message logs are shown to its site host (Chargers › View › Logs). Tell "
            "me the charger and what happened, and I'll read what it reported for you."
        )
    where = (
        f"{diagnosis.charger.station_id}'s logs: Chargers › View › Logs "
        f"(/chargers/{diagnosis.charger.station_id}/logs/)"
        if diagnosis.charger is not None
        else "A charger's logs: Chargers (/chargers/) › View on the charger › Logs"
    )
    return (
        f"{where}. Every OCPP message it sent and we answered, newest first: filter by action "
        "(a StartTransaction's idTagInfo status says why a card was accepted or refused) or "
        "search for a card's idTag. Proxy, beside it, shows which backoffice leads when the "
        "charger is also connected elsewhere."
    )


def _proxy_path(viewer: Viewer, diagnosis: Diagnosis) -> str:
    """Whether other backoffices take part through our proxy, and which leads (seed 001:
    Chargers > View > Proxy)."""
    charger = diagnosis.charger
    where = (
        f"Chargers › View › Proxy (/chargers/{charger.station_id}/proxy/)"
        if charger is not None
        else "Chargers (/chargers/) › View on the charger › Proxy"
    )
    if not viewer.is_host:
        return (
            f"Whether a charger also reports to another backoffice is shown to its site host "
            f"({where.split(' (')[0]})."
        )
    text = (
        f"{where} lists every backoffice the charger's messages are forwarded to besides us. Just "
        "us: only this system decides. More than one: the one set to Leader answers the "
        "charger, so a card must be accepted there too."
    )
    if charger is not None and Finding.OFFLINE in diagnosis.findings:
        text += (
            " The forwarding runs through the charger's connection to us: while it is offline "
            "here, no backoffice behind the proxy hears from it either."
        )
    return text


def _firmware_path(viewer: Viewer) -> str:
    """How chargers' firmware is updated here, with the host's campaigns as they stand."""
    if not viewer.is_host:
        return (
            "A charger's firmware is updated by its site host or operator; nothing is needed "
            "from you to charge. If a charger misbehaves, tell me its Station ID."
        )
    text = (
        "Firmware is updated by a campaign: Fleet › Firmware releases (/fleet/releases/) › Add "
        "a release (the vendor, model and version, its https download address and SHA-256, or "
        "upload the file on its row), then Fleet › Firmware campaigns (/fleet/campaigns/) › New "
        "campaign: choose the release and the locations, save the draft, check the chargers it "
        "took and press Start. A canary is updated first, then waves while they succeed; no "
        "charger is updated during a session or outside its location's maintenance window (set "
        "under Fleet › Maintenance windows, /fleet/windows/)."
    )
    now_running = lookups.firmware_campaign_sentences(viewer)
    return " ".join([text, *now_running])


# How a host does a task the portal has a page for (seed 003's menu paths, and the pages built
# since); a guest or driver hears who does it instead.
HOW_TO_HOST: dict[Intent, str] = {
    Intent.PRICES: (
        "Prices (/billing/prices/) › the location › Rates: the connection fee, the price per kWh "
        "and per hour, the idle fee after a grace time (with a cap), and whether tax is included. "
        "A new rate applies from the time you give; guests see it on the charger's page before "
        "they start, and each session is billed at the price shown when it started."
    ),
    Intent.ADD_CHARGER: (
        "Locations (/locations/) › the location › Add charger: name it, and its setup card "
        "gives the OCPP URL, the Station ID and the password to enter in the charger's own "
        "settings (its installer app or web page). It shows as online once it has connected."
    ),
    Intent.POWER: (
        "Power (/power/) › the location: its budget (amperes per phase the grid connection may "
        "give the chargers together), circuits under it, time-of-day limits and how the power is "
        "shared (equally, or by priority: stay guests, paying guests, employees, fleet). The "
        "chargers get their limits live; one that refuses limits is reserved its maximum so the "
        "site stays within its fuse."
    ),
    Intent.FREE_CHARGING: (
        "Add their charging cards (RFID) under Tokens (/tokens/), or put them in a group under "
        "Tokens › Groups and limit the group to the chargers they may use: sessions with your "
        "own cards are never charged to a card (they show as \u201cYour card\u201d under "
        "Sessions). To let everyone charge free, set the location's rate to 0 under Prices."
    ),
    Intent.CONFIGURATION: (
        "Fleet › Configuration baselines (/fleet/baselines/) › New baseline: the configuration "
        "keys (1.6) or component variables (2.0.1) one vendor's model should have, one per line. "
        "It is applied after each boot with new firmware and with Apply to every charger; each "
        "charger's Configuration tab shows where it drifts and re-applies it in one click."
    ),
    Intent.QR_LABEL: (
        "Chargers (/chargers/) › View on the charger › Overview › QR label › Print QR label: "
        "the label with the charger's QR code and Station ID that guests scan to pay and start."
    ),
    Intent.ALERTS: (
        "Uptime (/uptime/) › Alerts (/uptime/alerts/): a rule per problem (offline, faulted, "
        "a failed start, a refused power limit, a halted firmware campaign …), after how long, "
        "and who is emailed; an address that is not a member's confirms once by its link."
    ),
    Intent.REFUND: (
        "Sessions (/sessions/) › the session's cost › Refund… (owners), or Payouts "
        "(/billing/payouts/) › Card payments › Refund…: the amount (up to what is left to "
        "refund) and the reason; the guest gets an email and the receipt shows it."
    ),
}
# A guest or driver asking for their own refund is a billing dispute, not a how-to.
HOST_ONLY = frozenset({Intent.REFUND})
HOW_TO_GUEST = (
    "That is set by the charger's site host; the charger's page (scan its QR code, or type its "
    "Station ID) shows its price and whether you can charge before you start."
)


def _how_to(viewer: Viewer, wanted: frozenset[str]) -> list[str]:
    asked = [intent for intent in HOW_TO_HOST if intent in wanted]
    if not viewer.is_host:
        asked = [intent for intent in asked if intent not in HOST_ONLY]
    if not asked or not only_asks_where(wanted):
        return []
    if not viewer.is_host:
        return [HOW_TO_GUEST]
    return [HOW_TO_HOST[intent] for intent in asked]


def self_service(
    topic: Topic, viewer: Viewer, diagnosis: Diagnosis, wanted: frozenset[str]
) -> None:
    """Requests the portal answers with a path (seed 003 §6, §8, §10 menu paths)."""
    answers = diagnosis.answers
    if Intent.REMOVE_CARD in wanted and viewer.is_host:
        answers.append(
            "To stop a charging card (RFID) from working at your chargers: Tokens (/tokens/), open "
            "the card, untick Valid and Save; or take it out of a local group under Tokens › "
            "Groups › the group › Remove. A driver removes a saved payment card under Account › "
            "Cards (/driver/cards/)."
        )
    elif Intent.REMOVE_CARD in wanted:
        answers.append(
            "To remove a saved card: sign in, open Account › Cards (/driver/cards/) and press "
            "Remove next to the card. A card used only to pay as a guest (QR code) is not saved."
        )
    if Intent.EXPORT_CSV in wanted:
        answers.append(
            "Sessions › Export CSV (/sessions/) downloads the sessions you have filtered; "
            "Payouts › Statements (/billing/payouts/) prepares a CSV statement for any date range "
            "or year (Prepare CSV, then Download CSV)."
        )
    if only_asks_where(wanted) and Intent.LOGS in wanted:
        # Only a question: with a problem in the message ("refused, the logs say Invalid") the
        # section's diagnosis answers it, and reads the logs itself.
        answers.append(_logs_path(viewer, diagnosis))
    if Intent.PROXY in wanted:
        answers.append(_proxy_path(viewer, diagnosis))
    if Intent.FIRMWARE in wanted and only_asks_where(wanted):
        answers.append(_firmware_path(viewer))
    answers.extend(_how_to(viewer, wanted))
    if Intent.PMS_CONNECT in wanted:
        answers.append(
            "PMS sync › Connect a PMS (/stays/integrations/): choose Guesty, Hospitable or Track, "
            "paste its API credentials and press Connect and sync; the page then shows the sync state."
        )
    if Intent.PMS_DISCONNECT in wanted:
        answers.append(
            "PMS sync (/stays/integrations/) › open the PMS › Disconnect: its credentials are "
            "deleted and nothing syncs from it any more. Its upcoming reservations are cancelled, "
            "so their guests' charging codes stop working; add a calendar feed or connect "
            "another PMS first to keep guests charging."
        )
    if answers:
        diagnosis.findings.add(Finding.SELF_SERVICE)
