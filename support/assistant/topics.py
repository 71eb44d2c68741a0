"""The ten sections of the support article (seed 003) as data: steps, what rules a step out, details.

Pure: no Django. `reply_steps` drops the steps the live findings already rule out; `missing_details`
is what the article says to collect for the section and the conversation has not collected yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Topic(StrEnum):
    CHARGER_OFFLINE = "charger_offline"
    NOT_CHARGING = "not_charging"
    NO_PERMISSION = "no_permission"
    BILLING_DISPUTE = "billing_dispute"
    COST_BREAKDOWN = "cost_breakdown"
    ACCOUNT_CANCEL = "account_cancel"
    ACCOUNT_EMAIL = "account_email"
    CHARGER_SETUP = "charger_setup"
    GUEST_START_ERROR = "guest_start_error"
    PAYOUTS_REPORTING = "payouts_reporting"
    # Not one of seed 003's ten: a charger whose clock sends impossible times (docs/quirks.md).
    CHARGER_CLOCK = "charger_clock"
    OTHER = "other"


class Finding(StrEnum):
    """What the diagnosis established; steps name the findings that make them pointless."""

    ONLINE = "online"
    OFFLINE = "offline"
    FAULTED = "faulted"
    CONNECTOR_OK = "connector_ok"
    PLUGGED_IN = "plugged_in"
    CHARGING = "charging"
    CARD_REFUSED = "card_refused"
    LICENSE_INACTIVE = "license_inactive"
    RESTRICTED = "restricted"
    GUEST_CHARGING_OFF = "guest_charging_off"
    UNKNOWN_STATION = "unknown_station"
    SESSION_PRICED = "session_priced"
    IDLE_FEE = "idle_fee"
    PAYOUT_FAILED = "payout_failed"
    NO_PROPERTY = "no_property"
    # The card was held at the start and charged less at the end (what "charged twice" often is).
    CARD_HOLD = "card_hold"
    # The charger was picked from the host's fleet, not named by anyone.
    FLEET_PICK = "fleet_pick"
    # A request the portal answers with a path (remove a card, a CSV, connect a PMS).
    SELF_SERVICE = "self_service"
    # The charger sent a time it cannot have meant in the last 7 days (ChargerDeviation clock_wrong).
    CLOCK_WRONG = "clock_wrong"


@dataclass(frozen=True)
class Step:
    text: str
    # The step is skipped when any of these findings holds (e.g. "check the breaker" when the
    # charger is online: it has power and internet).
    ruled_out_by: frozenset[Finding] = frozenset()


@dataclass(frozen=True)
class Section:
    topic: Topic
    title: str
    steps: tuple[Step, ...]
    # Details the article says to send support, as `asks_for` names.
    details: tuple[str, ...]
    # Sections whose outcome only an agent can bring about (refund, deletion, email change).
    needs_human: bool = False
    # A question that only a host (site owner) asks.
    host_only: bool = False


def _s(text: str, *ruled_out_by: Finding) -> Step:
    return Step(text, frozenset(ruled_out_by))


def clock_logs_step(logs: str) -> Step:
    """Where the host sees the messages whose time was replaced (`logs`: the Logs page's path)."""
    return _s(
        f'Check {logs}: the messages that carried an impossible time are marked "charger clock '
        'wrong"; once the clock is right, new messages no longer are.'
    )


# The clock section's steps for the charger's host (the Logs step names the charger's own page
# when one is known: support.assistant.diagnosis).
CLOCK_STEPS_HOST: tuple[Step, ...] = (
    _s(
        "The charger should take its time from us: our answers to its BootNotification and "
        "Heartbeat carry the current time (UTC), and a charger that uses them keeps its clock right."
    ),
    _s(
        "In the charger's own menu (its installer app or web page), set its date and time, or turn "
        "on its NTP (network time) setting with a time server it can reach."
    ),
    _s(
        "Restart the charger (power it off for a minute): it sends a BootNotification when it "
        "starts again and takes the time from our answer."
    ),
    clock_logs_step("Chargers › View › Logs on the charger"),
    _s(
        "Meanwhile its sessions are still timed and billed right: we use the time each message "
        "reached us instead of a time the charger cannot have meant."
    ),
)
# The same section for a guest or driver (and a host of another organization): the clock is
# the charger's host's to set, and what it means for them.
CLOCK_STEPS_GUEST: tuple[str, ...] = (
    "A charger's clock is set by its site host; a wrong time on its screen does not change what "
    "you pay: sessions are timed and billed from when the charger's messages reach us.",
)

SECTIONS: dict[Topic, Section] = {
    Topic.CHARGER_OFFLINE: Section(
        Topic.CHARGER_OFFLINE,
        "Charger is offline or not working",
        (
            _s("Check that the charger's breaker is ON and that its LEDs are lit.", Finding.ONLINE),
            _s(
                "Power-cycle the charger: breaker OFF for 1–2 minutes, then ON, and wait until it has "
                "booted fully.",
                Finding.ONLINE,
            ),
            _s(
                "Check that the site's internet works and that the charger is on the right Wi-Fi or "
                "router.",
                Finding.ONLINE,
            ),
            _s(
                "If another port or charger here is free, use that one meanwhile.",
                Finding.UNKNOWN_STATION,
            ),
        ),
        ("property", "station_id", "occurred_at"),
    ),
    Topic.NOT_CHARGING: Section(
        Topic.NOT_CHARGING,
        "Plugged in but the car is not charging or keeps stopping",
        (
            _s(
                "Push the connector fully into the car and put the car in Park, ready to charge.",
                Finding.CHARGING,
            ),
            _s(
                "Restart the session: stop it, unplug, wait about 30 seconds, plug back in and start "
                "again.",
                Finding.OFFLINE,
            ),
            _s(
                "Note the charger's light colour or pattern and any message in the car or the app.",
            ),
        ),
        ("property", "station_id", "occurred_at", "screenshot"),
    ),
    Topic.NO_PERMISSION: Section(
        Topic.NO_PERMISSION,
        "“Not allowed to use this charger” or “No permission”",
        (
            _s(
                "Make sure you are signed in and your profile is complete.",
                Finding.LICENSE_INACTIVE,
            ),
            _s(
                "Scan the QR code on the charger you are physically at (not a photo of another one).",
                Finding.LICENSE_INACTIVE,
            ),
            _s(
                "If this charger is for residents or registered guests only, ask the property to "
                "confirm that you should have access."
            ),
        ),
        ("property", "station_id", "account_email"),
    ),
    Topic.BILLING_DISPUTE: Section(
        Topic.BILLING_DISPUTE,
        "Overcharge, idle fee or refund request",
        (
            _s(
                "A session costs a connection fee (once, if the site has one), the energy (kWh × the "
                "site's rate), idle minutes after charging finished (after any free grace time) and "
                "taxes where they apply."
            ),
            _s(
                "Compare the lines below with the rate posted at the charger; support reviews the "
                "session logs and refunds a confirmed mischarge with a confirmation email."
            ),
        ),
        ("property", "occurred_at", "amount", "card_last4"),
        needs_human=True,
    ),
    Topic.COST_BREAKDOWN: Section(
        Topic.COST_BREAKDOWN,
        "Why is this session so expensive? (cost breakdown)",
        (
            _s(
                "Each line below is one part of the price: connection fee, energy (kWh × rate), idle "
                "minutes after the grace time, and taxes or processing fees where they apply."
            ),
            _s(
                "If a line does not match the price posted at the charger, tell me and a person will "
                "check the site's configuration and correct it."
            ),
        ),
        ("property", "station_id", "occurred_at", "amount"),
    ),
    Topic.ACCOUNT_CANCEL: Section(
        Topic.ACCOUNT_CANCEL,
        "Cancel a subscription, delete an account or remove a card",
        (
            _s(
                "Subscriptions are cancelled from the link in your subscription email; the plan stays "
                "active until the end of the paid month."
            ),
            _s(
                "Support verifies your identity (a recent session date or the last 4 digits of your "
                "card), then stops recurring charges, removes cards and deletes your data."
            ),
        ),
        ("account_email", "cancel_or_delete"),
        needs_human=True,
    ),
    Topic.ACCOUNT_EMAIL: Section(
        Topic.ACCOUNT_EMAIL,
        "Change my email or account details",
        (
            _s(
                "Send the request from your current email address if you can; otherwise support asks "
                "for a recent session date or the last 4 digits of your card."
            ),
            _s("Support updates your sign-in and notification email and confirms when it is done."),
        ),
        ("account_email", "new_email"),
        needs_human=True,
    ),
    Topic.CHARGER_SETUP: Section(
        Topic.CHARGER_SETUP,
        "Assign chargers to properties or sync with a PMS",
        (
            _s(
                "Check that the charger has connected at least once: it appears under Chargers with a "
                "last-seen time.",
                Finding.ONLINE,
            ),
            _s(
                "Linking a charger to a property or unit is done by support: tell me the charger's "
                "Station ID or serial number and the property it belongs to.",
            ),
            _s(
                "A PMS (Guesty, Hospitable, Track…) integration is connected by support with the API "
                "credentials you send; tell me its name."
            ),
        ),
        ("property", "serial_or_station_id", "pms_name", "pms_connected"),
        host_only=True,
    ),
    Topic.GUEST_START_ERROR: Section(
        Topic.GUEST_START_ERROR,
        "Guest can't start a charge (QR code or app errors)",
        (
            _s("Use the official web link from the QR code, not a third-party page."),
            _s("Scan the QR code on the charger itself, not a photo or a screenshot."),
            _s("Close and reopen the browser, scan again and follow the prompts.", Finding.OFFLINE),
        ),
        ("screenshot", "property", "station_id", "occurred_at"),
    ),
    Topic.PAYOUTS_REPORTING: Section(
        Topic.PAYOUTS_REPORTING,
        "Payouts, reporting and usage history",
        (
            _s(
                "Payouts are net of processing and platform fees and refunds; balances below the "
                "minimum payout carry over to the next one."
            ),
            _s(
                "A failed payout returns to your balance and is paid with the next run once the bank "
                "account is fixed under Payouts."
            ),
            _s("Statements and session CSVs for any period are under Payouts › Statements."),
        ),
        ("property", "payout_id_or_dates", "amount"),
        host_only=True,
    ),
    Topic.CHARGER_CLOCK: Section(
        Topic.CHARGER_CLOCK,
        "The charger's clock or the times it sends are wrong",
        CLOCK_STEPS_HOST,
        ("property", "station_id"),
        host_only=True,
    ),
    Topic.OTHER: Section(
        Topic.OTHER,
        "Something else",
        (
            _s(
                "Tell me what happened in a sentence or two (the charger, the time, what you saw), or "
                "ask for a person and I'll pass this on."
            ),
        ),
        ("station_id", "occurred_at"),
    ),
}

# asks_for names in the customer's words, for the reply.
DETAIL_LABELS: dict[str, str] = {
    "property": "the property name",
    "station_id": "the charger ID (under the QR code) or a photo of the QR code",
    "serial_or_station_id": "the charger's serial number or QR code photo",
    "occurred_at": "the date and approximate time of your last attempt",
    "screenshot": "a screenshot of the error, if you have one",
    "account_email": "the email on your account",
    "email": "your email, so a person can reply",
    "new_email": "the new email address",
    "amount": "the amount charged",
    "card_last4": "the last 4 digits of the card",
    "cancel_or_delete": "whether to cancel the subscription only or delete the account and its data",
    "pms_name": "the PMS name (Guesty, Hospitable, Track…)",
    "pms_connected": "whether the PMS integration is already connected",
    "payout_id_or_dates": "the payout ID or the date range",
}


def reply_steps(topic: Topic, findings: frozenset[Finding] | set[Finding]) -> list[str]:
    """Return the section's steps that the findings do not already rule out."""
    return [step.text for step in SECTIONS[topic].steps if not (step.ruled_out_by & findings)]


def missing_details(topic: Topic, collected: dict[str, str]) -> list[str]:
    """Return the details the section asks for that have not been collected, in the article's order."""
    have = {key for key, value in collected.items() if value}
    if "station_id" in have:
        have.add("serial_or_station_id")
    return [name for name in SECTIONS[topic].details if name not in have]


# Asked for, but a hand-off does not wait for them (a chat cannot always attach a screenshot).
OPTIONAL_DETAILS = frozenset({"screenshot", "pms_name"})  # the PMS "if any" (seed 003 §8)


def required_missing(topic: Topic, collected: dict[str, str]) -> list[str]:
    """Return the missing details a hand-off waits for (all but the optional ones)."""
    return [name for name in missing_details(topic, collected) if name not in OPTIONAL_DETAILS]
