"""The authorization decision: may this card (or app user) charge at this charger?

Pure: no Django, no I/O. The caller gathers the facts first, and, when the answer
depends on the card's MSP, asks the MSP and calls `decide` again with its answer.
The order of the checks follows docs/authorization.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Status(StrEnum):
    """OCPP 1.6 idTagInfo status."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"


class Context(StrEnum):
    LOCAL = "local"  # card presented at the charger (Authorize)
    START_TRANSACTION = "start_transaction"  # StartTransaction (after a local Authorize or offline)
    REMOTE_APP = "remote_app"  # remote start from our app, portal or guest page
    REMOTE_MSP = "remote_msp"  # remote start requested by another network
    STOP_TRANSACTION = "stop_transaction"  # idTagInfo of a StopTransaction: the card's status now


class MspAnswer(StrEnum):
    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"
    TIMEOUT = "TIMEOUT"  # no answer within the MSP's timeout (or unreachable)
    # The MSP refused OUR credentials (HTTP 401/403 on its tokens endpoint): it said nothing
    # about the card. Never a provider's AllowedType: only our client's reading of the status.
    CREDENTIALS_REFUSED = "CREDENTIALS_REFUSED"


# What a provider may answer in `allowed` (OCPI 2.2.1 mod_tokens AllowedType); anything else in
# its answer is a malformed answer (a refusal), never one of our own readings above.
OCPI_ALLOWED = frozenset(
    {
        MspAnswer.ALLOWED,
        MspAnswer.BLOCKED,
        MspAnswer.EXPIRED,
        MspAnswer.NO_CREDIT,
        MspAnswer.NOT_ALLOWED,
    }
)


@dataclass(frozen=True)
class StayFacts:
    """The reservation behind a guest's access code: when and where it lets its guest charge."""

    reservation_id: int
    confirmed: bool
    valid_from: datetime  # check-in minus the property's grace
    valid_until: datetime  # check-out plus the grace
    property_id: int
    unit_id: int | None  # None: a property-wide booking (shared chargers only)
    shared_chargers: bool  # the property lets guests use chargers not assigned to a unit
    kwh_left: float | None = None  # included energy left; None: no cap (or not counted here)


@dataclass(frozen=True)
class TokenFacts:
    uid: str
    valid: bool = True
    blocked: bool = False
    expires_at: datetime | None = None
    organization_id: int | None = None
    msp_id: int | None = None
    msp_blocked: bool = False
    msp_live_validation: bool = False
    msp_on_timeout_accept: bool = False
    group_ids: frozenset[int] = frozenset()
    allowed_station_ids: frozenset[str] = frozenset()
    single_session: bool = False
    active_sessions: int = 0
    is_guest: bool = False  # a one-time token of a QR-page payment (or a stay's access code)
    is_driver: bool = False  # a guest token of a signed-in driver's start (their saved card)
    stay: StayFacts | None = None  # a guest token issued for a reservation's access code
    parent_id_tag: str = ""  # the card's group (1.6 parentIdTag, 2.0.1 groupIdToken)


@dataclass(frozen=True)
class Reserved:
    """The connector asked about is held by a reservation (or all of them are): only these cards,
    or cards of these groups, may start on it (OCPP 1.6 §5.13, 2.0.1 H01/H03)."""

    id_tags: frozenset[str]
    group_id_tags: frozenset[str] = frozenset()

    def admits(self, token: TokenFacts) -> bool:
        uid, group = token.uid.upper(), token.parent_id_tag.upper()
        return uid in {t.upper() for t in self.id_tags} or bool(
            group and group in {g.upper() for g in self.group_id_tags}
        )


@dataclass(frozen=True)
class ChargerFacts:
    station_id: str
    organization_id: int | None
    license_valid_until: date | None
    access_mode: str  # "public" | "guest" | "private"
    roaming_enabled: bool  # effective: access mode and location settings together
    guest_charging_enabled: bool
    restricted_group_ids: frozenset[int] = field(default_factory=frozenset)
    property_id: int | None = None
    unit_id: int | None = None
    reserved: Reserved | None = None  # the connector in question is reserved
    timezone: str = "UTC"  # the location's: a license runs through its last day there


def license_day(now: datetime, zone: str) -> date:
    """The day a charger's license must still be valid on: today at its location, so a license
    "valid until 30 Nov" runs to midnight there (in California it ended at 16:00 local, in
    Auckland 13 hours into December, when the UTC day was asked). Every check of a license asks
    this day (`chargers.models.Charger.license_today`)."""
    try:
        return now.astimezone(ZoneInfo(zone or "UTC")).date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.astimezone(UTC).date()


@dataclass(frozen=True)
class Decision:
    status: Status
    reason: str
    step: int
    message: str
    reservation_id: int | None = None  # the stay that allowed or refused it

    @property
    def accepted(self) -> bool:
        return self.status == Status.ACCEPTED


NEEDS_MSP = "needs_msp_validation"

# reason -> (step in the flow, message for hosts). Steps match docs/authorization.md.
REASONS: dict[str, tuple[int, str]] = {
    "license_inactive": (
        1,
        "This charger has no active license, so no session can start on it, whatever the card. "
        "Activate or renew the charger's license.",
    ),
    "unknown_token": (
        2,
        "Unrecognized charging card: this UID is not in your tokens and no mobility provider claims it. "
        "Add it under Tokens (or whitelist it from the log), or ask the driver which provider issued it.",
    ),
    "token_blocked": (
        3,
        "This card is blocked. Unblock it under Tokens if the driver should charge.",
    ),
    # Plug & Charge (OCPP 2.0.1 C07): the contract certificate is checked before the eMAID.
    "contract_revoked": (
        2,
        "The car's contract certificate is revoked by its issuer (OCSP). The driver's mobility "
        "provider must issue a new contract.",
    ),
    "contract_expired": (
        2,
        "The car's contract certificate (or a certificate of its chain) has expired.",
    ),
    "contract_unverified": (
        2,
        "The car's contract certificate could not be verified: it does not chain to a mobility "
        "operator root installed under PKI settings, or its revocation could not be checked "
        "(the issuer's OCSP responder did not answer). Charging is refused until it can be.",
    ),
    "contract_unknown_to_issuer": (
        2,
        "The car's contract (eMAID) is not ours, and the mobility provider its eMAID names "
        "was asked live and does not know it or refused it. The driver should contact their "
        "provider.",
    ),
    "token_invalid": (
        4,
        "This card is known but its 'valid' box is not ticked. Tick 'valid' under Tokens, "
        "or for a roaming card ask the driver's mobility provider to validate it.",
    ),
    "token_expired": (5, "This card's validity has expired. Extend its expiry date under Tokens."),
    "guest_token_spent": (
        4,
        "A guest's one-time token whose session is over (or never started): it starts nothing "
        "more. Nothing to do: guests pay again from the charger's QR page.",
    ),
    "msp_token_invalid": (
        4,
        "This roaming card is not valid: its mobility provider marked it so. The driver should "
        "contact their provider.",
    ),
    "msp_blocked": (
        6,
        "This card belongs to a mobility provider you have blocked. Unblock the provider under "
        "Mobility Providers if its cards should charge here.",
    ),
    "remote_start_roaming_disabled": (
        7,
        "A remote start from an app or mobility provider was refused because roaming is off at "
        "this location. Turn on 'public (roaming)' under Locations.",
    ),
    "charger_not_roaming": (
        8,
        "This charger is not public: it refuses guest and third-party (roaming) cards. "
        "Set the location to 'public (roaming)' or 'guest charging' under Locations, or add the card "
        "to a local token group.",
    ),
    "not_in_local_group": (
        9,
        "This charger only accepts cards of its local token groups and this card is in none of them. "
        "Under Tokens, pick the local group and click 'Add Token'.",
    ),
    "reimbursement_not_allowed": (
        10,
        "This card is set up for reimbursement at other stations only. Add this station to the "
        "card's allowed stations if the driver should be reimbursed here.",
    ),
    "concurrent_tx": (
        11,
        "This card already has a charging session running and is limited to one at a time. "
        "Stop the other session first.",
    ),
    "msp_rejected": (
        12,
        "The card's mobility provider checked it live and refused it. The driver should contact "
        "their provider.",
    ),
    "msp_timeout": (
        12,
        "The card's mobility provider did not answer the live check in time, or answered that it "
        "could not check the card now. Ask the driver to try again after a short wait.",
    ),
    "msp_refused_our_credentials": (
        12,
        "The card's mobility provider refused our credentials for its live check (HTTP 401 or "
        "403), so it said nothing about the card: the card is not the problem, and the cards of "
        "this provider that are checked live are refused until it accepts our credentials again. "
        "Check or renew the credentials of this provider: for an OCPI roaming partner, open "
        "Cards & roaming › Roaming partners › the partner and click Renew credentials (or "
        "connect it again if it unregistered us); for a provider set up by support, ask support "
        "to renew its token. Mobility Providers shows the provider's last refusal.",
    ),
    "connector_reserved": (
        11,
        "This connector is reserved for another card (Chargers > View > Reservations). The reserved "
        "card, or a card of its group, may start; cancel the reservation to free the connector.",
    ),
    "reservation_other_unit": (
        7,
        "This access code belongs to a reservation of another unit or property: it only starts the "
        "chargers of the guest's own unit (and the property's shared chargers, if allowed).",
    ),
    "reservation_not_active": (
        7,
        "This reservation does not allow charging now: it is outside the stay (check-in minus the grace "
        "period to check-out plus the grace period) or the booking is not confirmed.",
    ),
    "reservation_cap_reached": (
        7,
        "This stay's included energy is used up. Raise the kWh cap under the property's stay settings, "
        "or bill guests at the property's rate.",
    ),
    "accepted_reservation": (
        13,
        "Accepted: the guest's reservation includes charging at this charger.",
    ),
    "accepted_msp_live": (12, "Accepted: the card's mobility provider confirmed it live."),
    "accepted_roaming": (13, "Accepted: a roaming card at a public charger."),
    "accepted_group": (13, "Accepted: the card is in one of this charger's local token groups."),
    "accepted_local": (13, "Accepted: one of your own cards."),
    "accepted_guest": (
        13,
        "Accepted: a guest's one-time token from the charger's QR page, paid by card.",
    ),
    "accepted_driver": (
        13,
        "Accepted: a signed-in driver's one-time token, paid with their saved card.",
    ),
}

# Refusals of a car's contract certificate (Plug & Charge): the driver's way out is a card or the
# QR page, not a card setting.
CONTRACT_REASONS = frozenset(
    {"contract_revoked", "contract_expired", "contract_unverified", "contract_unknown_to_issuer"}
)

# Refusals nobody needs to act on: the charger was told the truth, but they are no alarm for the
# host (the dashboard's Needs attention and the Support page leave them out).
NOT_ALARMS = frozenset({"guest_token_spent"})

_MSP_STATUS = {
    MspAnswer.BLOCKED: Status.BLOCKED,
    MspAnswer.EXPIRED: Status.EXPIRED,
    MspAnswer.NO_CREDIT: Status.INVALID,
    MspAnswer.NOT_ALLOWED: Status.INVALID,
}


def _decision(status: Status, reason: str) -> Decision:
    step, message = REASONS[reason]
    return Decision(status, reason, step, message)


def _stay_decision(token: TokenFacts, charger: ChargerFacts, now: datetime) -> Decision:
    stay = token.stay
    assert stay is not None

    def refused(reason: str) -> Decision:
        step, message = REASONS[reason]
        return Decision(Status.INVALID, reason, step, message, stay.reservation_id)

    same_property = charger.property_id == stay.property_id
    if charger.unit_id is None:
        allowed_here = same_property and stay.shared_chargers
    else:
        allowed_here = same_property and charger.unit_id == stay.unit_id
    if not allowed_here:
        return refused("reservation_other_unit")
    if not stay.confirmed or not stay.valid_from <= now <= stay.valid_until:
        return refused("reservation_not_active")
    if stay.kwh_left is not None and stay.kwh_left <= 0:
        return refused("reservation_cap_reached")
    # The host put this charger in the guest's unit, so its access mode (private, no guest charging)
    # does not apply; one session at a time still does.
    if token.single_session and token.active_sessions > 0:
        return replace(
            _decision(Status.CONCURRENT_TX, "concurrent_tx"), reservation_id=stay.reservation_id
        )
    # A connector held by ReserveNow for another card stays held, also for a guest's stay.
    if charger.reserved is not None and not charger.reserved.admits(token):
        return refused("connector_reserved")
    return replace(
        _decision(Status.ACCEPTED, "accepted_reservation"), reservation_id=stay.reservation_id
    )


def decide(
    token: TokenFacts | None,
    charger: ChargerFacts,
    context: Context,
    *,
    now: datetime,
    msp_answer: MspAnswer | None = None,
) -> Decision:
    """Return the decision for `token` at `charger`.

    Returns a Decision with reason NEEDS_MSP when the card's MSP must be asked live
    first; call again with its `msp_answer`.
    """
    # 1. A charger without an active license may not start any session (seed 000).
    if charger.license_valid_until is None or charger.license_valid_until < license_day(
        now, charger.timezone
    ):
        return _decision(Status.INVALID, "license_inactive")
    # 2. Unknown card.
    if token is None:
        return _decision(Status.INVALID, "unknown_token")
    refused = _card_refusal(token, now)
    if refused is not None:
        return refused
    # 7. A reservation's access code: only its unit's (or shared) chargers, only during the stay.
    if token.stay is not None:
        # A stop is never refused for a reserved connector (as for other cards, step 11).
        held = None if context == Context.STOP_TRANSACTION else charger.reserved
        return _stay_decision(token, replace(charger, reserved=held), now)
    card = _CardHere.of(token, charger)
    refused = _access_refusal(token, charger, context, card)
    if refused is not None:
        return refused
    # 12. Live validation by the card's MSP. Not for a remote start its provider requested: the
    # provider vouches for its own card (OCPI 2.2.1 mod_commands: the CPO should not check the
    # token of a START_SESSION).
    if token.msp_id is not None and token.msp_live_validation and context != Context.REMOTE_MSP:
        return _msp_live_decision(token, msp_answer)
    # 13. Accepted.
    if card.in_group:
        return _decision(Status.ACCEPTED, "accepted_group")
    if card.roaming:
        return _decision(Status.ACCEPTED, "accepted_roaming")
    if token.is_guest:
        return _decision(
            Status.ACCEPTED, "accepted_driver" if token.is_driver else "accepted_guest"
        )
    return _decision(Status.ACCEPTED, "accepted_local")


def _card_refusal(token: TokenFacts, now: datetime) -> Decision | None:
    """Steps 3-6: the card itself (blocked, invalid, expired) and its provider (blocked)."""
    expired = token.expires_at is not None and token.expires_at <= now
    if token.is_guest and (not token.valid or expired):
        # A guest's one-time token (QR payment, driver's saved card, stay access code) is made
        # invalid when its session ends: its stop (or a retry) is answered so, which is no card
        # for the host to fix.
        return _decision(Status.EXPIRED if expired else Status.INVALID, "guest_token_spent")
    if token.blocked:
        return _decision(Status.BLOCKED, "token_blocked")
    if not token.valid:
        return _decision(
            Status.INVALID, "msp_token_invalid" if token.msp_id is not None else "token_invalid"
        )
    if expired:
        return _decision(Status.EXPIRED, "token_expired")
    if token.msp_id is not None and token.msp_blocked:
        return _decision(Status.BLOCKED, "msp_blocked")
    return None


@dataclass(frozen=True)
class _CardHere:
    """What the card is at this charger: in one of its local groups, or a roaming card (neither
    the charger's organization's own card nor a guest's)."""

    in_group: bool
    roaming: bool

    @classmethod
    def of(cls, token: TokenFacts, charger: ChargerFacts) -> _CardHere:
        own_card = (
            token.organization_id is not None and token.organization_id == charger.organization_id
        )
        return cls(
            in_group=bool(token.group_ids & charger.restricted_group_ids),
            roaming=not own_card and not token.is_guest,
        )


def _access_refusal(
    token: TokenFacts, charger: ChargerFacts, context: Context, card: _CardHere
) -> Decision | None:
    """Steps 7-11: may this card start here (roaming, guests, local groups, reimbursement
    stations, one session at a time, a reserved connector)?"""
    # 7. Remote activation needs roaming on at the location (seed 002 item 6).
    roaming_refused = card.roaming and not charger.roaming_enabled and not card.in_group
    if context == Context.REMOTE_MSP and not charger.roaming_enabled:
        return _decision(Status.INVALID, "remote_start_roaming_disabled")
    if context == Context.REMOTE_APP and roaming_refused:
        return _decision(Status.INVALID, "remote_start_roaming_disabled")
    # 8. Guest or third-party cards need a public / guest charger.
    if token.is_guest and not charger.guest_charging_enabled:
        return _decision(Status.INVALID, "charger_not_roaming")
    if roaming_refused:
        return _decision(Status.INVALID, "charger_not_roaming")
    # 9. A charger restricted to local token groups: guests (QR pay) included, they are in no group.
    if charger.restricted_group_ids and not card.in_group:
        return _decision(Status.INVALID, "not_in_local_group")
    # 10. Reimbursement cards only at their stations.
    if token.allowed_station_ids and charger.station_id not in token.allowed_station_ids:
        return _decision(Status.INVALID, "reimbursement_not_allowed")
    # 11. One session at a time for cards limited to that.
    if token.single_session and token.active_sessions > 0:
        return _decision(Status.CONCURRENT_TX, "concurrent_tx")
    # 11. A reserved connector takes only its reservation's card or group (a stop is never refused).
    if (
        charger.reserved is not None
        and context != Context.STOP_TRANSACTION
        and not charger.reserved.admits(token)
    ):
        return _decision(Status.INVALID, "connector_reserved")
    return None


def unknown_contract_decision(answer: MspAnswer, *, issuer_blocked: bool = False) -> Decision:
    """The decision on a contract (eMAID) no card of ours holds, after its issuer was asked live
    (OCPI mod_tokens real-time authorization) and named no card we could keep: never Accepted."""
    if issuer_blocked:
        return _decision(Status.BLOCKED, "msp_blocked")
    if answer == MspAnswer.TIMEOUT:
        return _decision(Status.INVALID, "msp_timeout")
    if answer == MspAnswer.CREDENTIALS_REFUSED:
        return _decision(Status.INVALID, "msp_refused_our_credentials")
    return _decision(_MSP_STATUS.get(answer, Status.INVALID), "contract_unknown_to_issuer")


# eMI3 / ISO 15118-2 eMAID: country (2 letters), provider (3), instance (9), optional check
# character, with optional hyphens between them (DE-8AA-CA2B3C4D5-X, DE8AACA2B3C4D5X).
_EMAID = re.compile(r"([A-Z]{2})-?([A-Z0-9]{3})-?([A-Z0-9]{9})(?:-?[A-Z0-9])?")


def emaid_issuer(uid: str) -> tuple[str, str] | None:
    """Return (country code, party id) of the mobility provider an eMAID names, or None."""
    match = _EMAID.fullmatch(uid.strip().upper())
    return (match[1], match[2]) if match else None


# What a contract token's UID must be (the portal's form and the API say the same).
NOT_AN_EMAID = (
    "A contract's UID is its eMAID: country, provider id and contract number, "
    "e.g. DE-8EO-C12345678-9 (the idToken of the car's Authorize in the logs)."
)


def emaid_token_type(ocpi_version: str) -> str:
    """The OCPI TokenType a contract is asked live as: EMAID from 2.3.0 (mod_tokens TokenType);
    2.2.1 has none for it, and OTHER is its "other type of token"."""
    return "OTHER" if ocpi_version.startswith(("2.1", "2.2")) else "EMAID"


def _msp_live_decision(token: TokenFacts, msp_answer: MspAnswer | None) -> Decision:
    """Step 12: the decision on the card's MSP's live answer (none yet: NEEDS_MSP; none in time:
    the MSP's timeout policy)."""
    if msp_answer is None:
        return Decision(Status.INVALID, NEEDS_MSP, 12, "Waiting for the mobility provider.")
    if msp_answer == MspAnswer.TIMEOUT:
        status = Status.ACCEPTED if token.msp_on_timeout_accept else Status.INVALID
        step, message = REASONS["msp_timeout"]
        if status == Status.ACCEPTED:
            message += " Your timeout policy accepts the card meanwhile."
        return Decision(status, "msp_timeout", step, message)
    if msp_answer == MspAnswer.CREDENTIALS_REFUSED:
        # Not an outage the timeout policy covers (the provider is up and refuses us), and not a
        # refusal of the card: Invalid whatever the policy or the card's whitelist, never a
        # success made up for a provider that told us nothing. A positive answer still cached
        # from before is used without asking (authorization.services), as during an outage.
        return _decision(Status.INVALID, "msp_refused_our_credentials")
    if msp_answer != MspAnswer.ALLOWED:
        return _decision(_MSP_STATUS.get(msp_answer, Status.INVALID), "msp_rejected")
    return _decision(Status.ACCEPTED, "accepted_msp_live")
