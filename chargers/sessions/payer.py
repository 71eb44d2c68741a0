"""Who paid for a session, in the host's words (pure: no Django).

The sessions page and its CSV name the payer of each row. The facts come from the session's
card and what it is tied to, read in the same query as the session (chargers.web.views):

- a payment terminal's session runs on a one-off card of ours tied to the terminal's payment
  (roaming.TerminalPayment), although that card belongs to the terminal provider's MSP;
- a guest's one-time token from the QR page (guest.GuestSession, paid by card) or a signed-in
  driver's (the same, paid with the driver's saved card; the token's label tells them apart,
  as authorization's `accepted_guest` / `accepted_driver` decisions do);
- a stay's access code (a guest token of a reservation: the host's own arrangement);
- a card of a mobility provider (an MSP token) or of another organization: a roaming partner;
- otherwise one of the host's own cards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Payer(StrEnum):
    TERMINAL = "terminal"
    DRIVER = "driver"
    GUEST = "guest"
    STAY = "stay"
    ROAMING = "roaming"
    OWN = "own"
    UNKNOWN = "unknown"


PAYER_TEXT = {
    Payer.TERMINAL: "Payment terminal",
    Payer.DRIVER: "Driver account",
    Payer.GUEST: "Guest card",
    Payer.STAY: "Stay guest",
    Payer.ROAMING: "Roaming partner",
    Payer.OWN: "Your card",
    Payer.UNKNOWN: "Unknown card",
}


@dataclass(frozen=True)
class PayerFacts:
    """What the session's row knows about its card. `has_token` False: the card was not known
    (e.g. accepted while the charger was offline) or has since been deleted."""

    has_token: bool
    terminal_payment: bool = False
    guest_session: bool = False
    guest_token: bool = False  # a one-time GUEST token (QR page, driver or stay)
    driver_token: bool = False  # a guest token of a signed-in driver's start
    reservation: bool = False  # a stay's access code
    msp: bool = False  # the card belongs to a mobility service provider
    token_organization_id: int | None = None
    charger_organization_id: int | None = None


def payer_of(facts: PayerFacts) -> Payer:
    """Return who paid for the session (the first rule that matches, as the module says)."""
    if facts.terminal_payment:
        return Payer.TERMINAL
    if facts.driver_token:
        return Payer.DRIVER
    if facts.reservation:
        return Payer.STAY
    if facts.guest_session or facts.guest_token:
        return Payer.GUEST
    if not facts.has_token:
        return Payer.UNKNOWN
    if facts.msp:
        return Payer.ROAMING
    own = (
        facts.token_organization_id is not None
        and facts.token_organization_id == facts.charger_organization_id
    )
    return Payer.OWN if own else Payer.ROAMING
