"""Cost and tariff on a 2.0.1 charger's display (part 2 block I: I01, I02, I03; docs/ocpp.md).

The amounts come from billing, the app above, through two named providers (backoffice.providers)
that billing registers in its AppConfig.ready(): the session's total is the one pricing function
of the session page and the guest receipt (billing.services.session_cost), the tariff text the
rate's own line (billing.pricing.tariff_text). What the charger shows is its device model's word:
TariffCostCtrlr Enabled/Available, instance "Cost" or "Tariff" (chargers.devices.device_model.shows).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from backoffice import db
from backoffice.providers import Provider
from chargers.devices.device_model import TARIFF_COST_COMPONENTS, shows
from chargers.models import Charger, ChargingSession, DeviceVariable

logger = logging.getLogger(__name__)

# The CostUpdated CALL goes out a moment after the answer to the event that prompted it, so it
# never overtakes that answer on the wire (as the base report after a boot).
COST_UPDATE_DELAY_S = 0.2


class RunningCost(Protocol):
    """The session's cost so far, final once stopped, tax included: {"total": Decimal,
    "currency": str, "final": bool}; None when no rate applies (the cost is not known)."""

    def __call__(self, session_id: int) -> dict[str, Any] | None: ...


running_cost: Provider[RunningCost] = Provider("session cost for the charger")  # billing


class SessionsPriced(Protocol):
    """Whether anything prices each session (a rate in force when it started, or a stay that
    includes its charging): fixed for a session's life, so asked once per transaction, for
    many at once (a fleet's first Updated events come together)."""

    def __call__(self, session_ids: list[int]) -> list[bool]: ...


sessions_priced: Provider[SessionsPriced] = Provider("sessions priced for the charger")  # guest


class TariffText(Protocol):
    """The tariff in force at the charger now, as one line for its display; None: no rate."""

    def __call__(self, charger_id: int) -> str | None: ...


tariff_text: Provider[TariffText] = Provider("tariff text for the charger")  # billing


class SessionTariff(Protocol):
    """The tariff a session is billed with (its price version, fixed at its start), as one line
    for the charger's display; None when nothing prices it."""

    def __call__(self, session_id: int) -> str | None: ...


session_tariff: Provider[SessionTariff] = Provider("session tariff for the charger")  # guest


@dataclass(frozen=True)
class Display:
    """What the charger's device model says it shows: True, False, or None (not reported)."""

    cost: bool | None = None
    tariff: bool | None = None
    currency: str = ""  # TariffCostCtrlr.Currency; "" when not reported


def displays_of(charger_ids: set[int]) -> dict[int, Display]:
    """Each charger's TariffCostCtrlr, from its stored device model (one query for all)."""
    rows = DeviceVariable.objects.filter(
        charger_id__in=charger_ids,
        component__in=TARIFF_COST_COMPONENTS,
        evse_id=0,
        variable__in=("Enabled", "Available", "Currency"),
        attribute_type="Actual",
    ).values_list("charger_id", "variable", "variable_instance", "value")
    values: dict[int, dict[tuple[str, str], str]] = {charger_id: {} for charger_id in charger_ids}
    for charger_id, variable, instance, value in rows:
        values[charger_id][(variable, instance)] = value
    return {
        charger_id: Display(
            cost=shows(found, "Cost"),
            tariff=shows(found, "Tariff"),
            currency=(found.get(("Currency", "")) or "").strip().upper(),
        )
        for charger_id, found in values.items()
    }


def display_of(*, charger_id: int) -> Display:
    """The charger's TariffCostCtrlr, from its stored device model (one query)."""
    return displays_of({charger_id})[charger_id]


@dataclass(frozen=True)
class Plan:
    """What a socket keeps per transaction, read once: whether it is priced and the display."""

    priced: bool
    display: Display


def plans_of(keys: list[tuple[int, int]]) -> list[Plan]:
    """The plan of each (charger, session): read in a batch (chargers.handlers.v201), since
    a fleet's transactions reach their first Updated together, and one read per transaction
    (six queries, ~16 ms of CPU) took the database threads, and the event loop's GIL, from every
    other frame of a 1,000-charger closed loop for 20 s."""
    displays = displays_of({charger_id for charger_id, _ in keys})
    priced = sessions_priced.call([session_id for _, session_id in keys])
    return [
        Plan(priced=is_priced, display=displays[charger_id])
        for (charger_id, _), is_priced in zip(keys, priced, strict=True)
    ]


def total_cost(*, session_id: int, display: Display) -> Decimal | None:
    """The totalCost to tell the charger about a priced session, tax included.

    None when the price is not known (no rate: I03.FR.04, an omitted totalCost does not claim
    the session was free; a rate that prices it at nothing gives 0) or when the charger's
    Currency is not the price's (the number would mean another amount)."""
    price = running_cost.call(session_id)
    if price is None:
        return None
    if display.currency and display.currency != str(price["currency"]).upper():
        return None
    return Decimal(price["total"])


def tariff_message(*, charger_id: int) -> dict | None:
    """The personalMessage (MessageContentType) with the tariff text, for a charger that shows
    tariffs (I01.FR.02: only then); None otherwise or without a rate."""
    if display_of(charger_id=charger_id).tariff is not True:
        return None
    text = tariff_text.call(charger_id)
    if not text:
        return None
    return {"format": "UTF8", "content": text[:512]}


def session_tariff_message(*, charger_id: int, session_id: int) -> dict | None:
    """The personalMessage for the idTokenInfo of a TransactionEvent that authorizes its driver
    (I01 at the start, when the charger had no Authorize to show it on): the tariff the session
    is billed with, to a charger that shows tariffs (I01.FR.02); None otherwise or unpriced."""
    if display_of(charger_id=charger_id).tariff is not True:
        return None
    text = session_tariff.call(session_id)
    if not text:
        return None
    return {"format": "UTF8", "content": text[:512]}


def _still_running(session_id: int) -> tuple[Charger, bool] | None:
    session = ChargingSession.objects.select_related("charger").filter(pk=session_id).first()
    if session is None:
        return None
    return session.charger, session.stopped_at is None


async def cost_update(charger_id: int, session_id: int, transaction_id: str) -> None:
    """Send CostUpdated (I02) with the session's running total, computed when it goes out; not
    when the session ended meanwhile (the Ended answer carries the final total)."""
    from chargers.devices import commands

    await asyncio.sleep(COST_UPDATE_DELAY_S)
    try:
        found = await db.run(_still_running, session_id)
        if found is None or not found[1]:
            return
        display = await db.run(display_of, charger_id=charger_id)
        total = await db.run(total_cost, session_id=session_id, display=display)
        if total is None:
            return
        await commands.send_command(
            found[0],
            "CostUpdated",
            {"totalCost": float(total), "transactionId": transaction_id},
            source="csms",
            note=f"Running cost {total}",
        )
    except (commands.ChargerOffline, commands.CommandTimeout):
        pass  # the next event's answer carries the running total anyway
