"""What the guest page says about a charger: the error prompts of seed 000, decided purely.

No Django here. The caller gathers StationFacts; `landing_prompt` returns which prompt (if any)
replaces the start button. Precedence, most fundamental first (docs/guest.md):

    invalid ID > private-owner > license inactive > private-not-setup > out of order

"Not allowed to use this charger" (seed 003 §3) comes from the authorization engine; its
host-facing reason codes are turned into guest words by `not_allowed_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class PromptCode(StrEnum):
    INVALID = "invalid"
    PRIVATE_OWNER = "private_owner"
    LICENSE_INACTIVE = "license_inactive"
    PRIVATE_NOT_SETUP = "private_not_setup"
    OUT_OF_ORDER = "out_of_order"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class Prompt:
    code: PromptCode
    title: str
    meaning: tuple[str, ...]
    next_steps: tuple[str, ...]
    after: str  # the closing line of the seed: who to contact if it persists
    severity: str = "error"  # "error" (red) or "warn" (amber)


# Titles are the exact words of seed 000 / seed 003; guests and support search for them.
PROMPTS: dict[PromptCode, Prompt] = {
    PromptCode.INVALID: Prompt(
        PromptCode.INVALID,
        "Station ID is Invalid",
        (
            "The Station ID entered doesn’t match any active charger in our system. This may happen "
            "due to a mistyped number, a hidden or worn Station ID label, or a temporary "
            "communication issue with the charger.",
        ),
        (
            "Double-check the Station ID on the charger label.",
            "Make sure you’re entering it exactly as shown (case-sensitive, no extra spaces).",
            "Try scanning the QR code instead, if available.",
        ),
        "If the issue continues, contact support with the location and the Station ID displayed on "
        "the charger so we can verify it for you.",
    ),
    PromptCode.PRIVATE_OWNER: Prompt(
        PromptCode.PRIVATE_OWNER,
        "Private Charger",
        (
            "The charger is a privately owned station, not part of the public network. Access may "
            "be restricted, and you may need permission from the owner to use it.",
        ),
        ("Ask the charger’s owner for permission to use it.",),
        "See the Location Access article for more information.",
        "warn",
    ),
    PromptCode.LICENSE_INACTIVE: Prompt(
        PromptCode.LICENSE_INACTIVE,
        "License inactive",
        (
            "The charger requires an active license from the site host. The license may not be set "
            "up, or it has expired, which prevents the charger from operating.",
        ),
        (
            "Contact the site host to inform them that the charger’s license needs to be activated "
            "or renewed.",
        ),
        "If you’re unable to reach the site host, you may also contact support for further assistance.",
    ),
    PromptCode.PRIVATE_NOT_SETUP: Prompt(
        PromptCode.PRIVATE_NOT_SETUP,
        "Charger start failed - private charger not setup. Please contact site host",
        ("This charger is set to private and hasn’t been configured for public or guest access.",),
        ("Contact the site host to request access or permission to use the charger.",),
        "If you require any assistance, reach out to support for help.",
    ),
    PromptCode.OUT_OF_ORDER: Prompt(
        PromptCode.OUT_OF_ORDER,
        "Charger is Out of Order",
        ("The charger is currently offline or not working.",),
        (
            "Try another nearby charger, if available.",
            "If you’re at a multi-port station, check if other ports are working.",
        ),
        "If the issue persists, please contact support or the site host for assistance.",
    ),
    PromptCode.NOT_ALLOWED: Prompt(
        PromptCode.NOT_ALLOWED,
        "Not allowed to use this charger",
        ("This charger is restricted and cannot be started with a guest payment.",),
        (
            "Confirm you’re scanning the correct QR code on the charger you are physically using.",
            "If this is a resident/guest-only charger, confirm with the property that you should "
            "have access.",
        ),
        "If you should have access, contact support with the property name and the Station ID: "
        "support will check and adjust the charger’s permissions if appropriate.",
    ),
}

# Connector states in which no session can start (OCPP 1.6 ChargePointStatus).
DEAD_STATUSES = frozenset({"Faulted", "Unavailable"})
# States in which a guest may start: free, or already plugged in and waiting.
STARTABLE_STATUSES = frozenset({"Available", "Preparing"})


@dataclass(frozen=True)
class StationFacts:
    ownership: str  # "network" | "private_owner"
    access_mode: str  # "public" | "guest" | "private"
    license_valid_until: date | None
    online: bool
    out_of_order: bool
    # (connector_id, status) for every known connector, 0 (the whole charger) included.
    connectors: tuple[tuple[int, str], ...] = field(default_factory=tuple)


def working_connectors(facts: StationFacts) -> list[int]:
    """Return the ids of ports that are not Faulted/Unavailable (empty if the whole charger is)."""
    whole = dict(facts.connectors).get(0)
    if whole in DEAD_STATUSES:
        return []
    return [cid for cid, status in facts.connectors if cid > 0 and status not in DEAD_STATUSES]


def is_out_of_order(facts: StationFacts) -> bool:
    """Offline, flagged out of order by the host, or no port that works."""
    return not facts.online or facts.out_of_order or not working_connectors(facts)


def landing_prompt(facts: StationFacts | None, *, today: date) -> PromptCode | None:
    """Return the prompt to show instead of the start button, or None when a guest may go on."""
    if facts is None:
        return PromptCode.INVALID
    if facts.ownership == "private_owner":
        return PromptCode.PRIVATE_OWNER
    if facts.license_valid_until is None or facts.license_valid_until < today:
        return PromptCode.LICENSE_INACTIVE
    if facts.access_mode == "private":
        return PromptCode.PRIVATE_NOT_SETUP
    if is_out_of_order(facts):
        return PromptCode.OUT_OF_ORDER
    return None


# Authorization reason codes (authorization.decisions.REASONS) in words for a guest.
_GUEST_WORDS = {
    "charger_not_roaming": "The site host has turned off guest charging at this charger.",
    "remote_start_roaming_disabled": "The site host does not allow starting this charger from a phone.",
    "not_in_local_group": "This charger is reserved for residents or registered guests of the property.",
    "reimbursement_not_allowed": "Your guest pass is not valid at this charger.",
    "concurrent_tx": "A charging session is already running with this guest pass.",
    "license_inactive": "The charger’s license is not active.",
    "token_blocked": "Your guest pass was blocked.",
    "token_expired": "Your guest pass has expired. Please start again.",
    "token_invalid": "Your guest pass is no longer valid. Please start again.",
    "guest_token_spent": "Your guest pass is no longer valid. Please start again.",
    "unknown_token": "We could not register your guest pass. Please start again.",
}
_GENERIC = "The charger’s access settings do not allow this start."


def not_allowed_reason(reason: str) -> str:
    """Return the authorization engine's refusal reason in a guest's words (never host data)."""
    return _GUEST_WORDS.get(reason, _GENERIC)


def _one_edit_apart(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


def normalize_for_suggestion(station_id: str) -> str:
    """Return the comparison key: no whitespace anywhere, case folded."""
    return "".join(station_id.split()).casefold()


def is_near_miss(typed: str, candidate: str) -> bool:
    """True when `candidate` differs from `typed` only in case, spaces or one character."""
    if typed == candidate:
        return False
    return _one_edit_apart(normalize_for_suggestion(typed), normalize_for_suggestion(candidate))


def suggestions(typed: str, candidates: list[str], *, limit: int = 3) -> list[str]:
    """Return up to `limit` near misses, closest first (case/space-only differences first)."""
    key = normalize_for_suggestion(typed)
    near = [c for c in candidates if is_near_miss(typed, c)]
    # One rule for every slip: an ID that differs only in case or spaces is THE close match
    # ("demo-001" is DEMO-001, not also DEMO-002 and DEMO-003), as a one-character typo with a
    # single near miss is ("DEMO-0O1").
    same = [c for c in near if normalize_for_suggestion(c) == key]
    if same:
        return sorted(same)[:limit]
    return sorted(near)[:limit]
