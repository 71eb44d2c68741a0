"""Answers this app's pages need from apps above it (billing, metering, reliability), each from
one named provider registered in that app's AppConfig.ready() (backoffice.providers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from backoffice.providers import Provider


class SessionPrice(Protocol):
    """The session's price so far (final once stopped): {"total", "currency", "final"}, or None
    when no rate applies (nothing is charged)."""

    def __call__(self, session: Any) -> dict[str, Any] | None: ...


session_price: Provider[SessionPrice] = Provider("session price")  # billing


class SessionPrices(Protocol):
    """`SessionPrice` of each session, by pk: the stored charge when final, else priced now (a
    session still charging: its cost so far), all in a constant number of queries."""

    def __call__(self, sessions: Sequence[Any]) -> dict[int, dict[str, Any] | None]: ...


session_prices: Provider[SessionPrices] = Provider("session price of many sessions")  # billing


class SignedMeterValues(Protocol):
    """The session's signed meter values (OCMF), as the session API and the session page show
    them: {status, reason, start, end, public_key, values, energy_wh, text, transparency_url,
    how_to_check}, or None when nothing was signed and the charger has no meter key."""

    def __call__(self, session: Any) -> dict[str, Any] | None: ...


signed_meter_values: Provider[SignedMeterValues] = Provider("signed meter values")  # metering


class SignedMeterValuesMany(Protocol):
    """`SignedMeterValues` of each session, by pk, in a constant number of queries."""

    def __call__(self, sessions: Sequence[Any]) -> dict[int, dict[str, Any] | None]: ...


signed_meter_values_many: Provider[SignedMeterValuesMany] = Provider(
    "signed meter values of many sessions"
)  # metering


class SessionSettlement(Protocol):
    """Whether the session's charge is settled: {status, reason, text}, status `held` (its
    signed readings do not verify and the host's policy holds it: nothing is captured or booked
    until they do or support decides), `waived` (support decided to bill the measured energy),
    `pending` (not final yet), `short` (the guest's card was charged less than the cost) or
    `settled`; None when nothing is charged for it."""

    def __call__(self, session: Any) -> dict[str, Any] | None: ...


session_settlement: Provider[SessionSettlement] = Provider("session settlement")  # billing


class SessionSettlementMany(Protocol):
    """`SessionSettlement` of each session, by pk, in a constant number of queries."""

    def __call__(self, sessions: Sequence[Any]) -> dict[int, dict[str, Any] | None]: ...


session_settlement_many: Provider[SessionSettlementMany] = Provider(
    "session settlement of many sessions"
)  # billing


class MoneyRound(Protocol):
    """An amount rounded to its currency's own decimals (EUR 2, JPY 0, BHD 3), as billing
    stores and shows money (billing.money.round_money)."""

    def __call__(self, amount: Any, currency: str) -> Any: ...


money_round: Provider[MoneyRound] = Provider("money rounded to its currency")  # billing


class PortFaults(Protocol):
    """The fault codes open on each port of a charger (ChargeX MREC, from a 1.6
    StatusNotification's vendorErrorCode or a 2.0.1 NotifyEvent's techCode), by connector id
    (0: the whole charger): [{code, name, description, responsibility, responsible, class,
    source, secondary_source, label, source_words}]."""

    def __call__(self, charger: Any) -> dict[int, list[dict[str, Any]]]: ...


port_faults: Provider[PortFaults] = Provider("port faults")  # reliability
