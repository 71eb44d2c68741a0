"""A row of the sessions page, CSV and API: who paid, what it costs (so far), how long it took,
read in the session's own query plus one priced batch per page (issue 51 items 3 and 8)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import OuterRef, Subquery

from authorization.models import Token
from chargers.models import ChargingSession
from chargers.ocpp.energy import register_wh
from chargers.sessions.closing import register_readings
from chargers.sessions.payer import PAYER_TEXT, Payer, PayerFacts, payer_of
from chargers.web.providers import money_round, session_prices

# What a row of the sessions page and CSV shows besides the session: its card, its charge
# (billing), its guest session and its terminal payment, read in the session's own query
# (reverse one-to-ones named, never imported: those apps sit above this one), so the page and
# the CSV run the same number of queries for 1 row or 1,000 (tests/portal/test_session_money.py).
SESSION_ROW_RELATED = ("token", "charge", "guest_session", "terminal_payment")
# Large columns no row needs: the charge's priced lines and the terminal's token object.
SESSION_ROW_DEFERRED = ("charge__lines", "terminal_payment__token_data")


def one_related(obj: Any, name: str) -> Any:
    """The related object of a reverse one-to-one read with select_related, or None."""
    return getattr(obj, name, None)  # its DoesNotExist is also an AttributeError


def session_payer(session: ChargingSession) -> Payer:
    """Who paid for the session (chargers.sessions.payer), from the rows read with it."""
    token = session.token
    prop = session.charger.property
    return payer_of(
        PayerFacts(
            has_token=token is not None,
            terminal_payment=one_related(session, "terminal_payment") is not None,
            guest_session=one_related(session, "guest_session") is not None,
            guest_token=token is not None and token.type == Token.Type.GUEST,
            driver_token=(
                token is not None
                and token.type == Token.Type.GUEST
                and token.label == Token.DRIVER_SESSION_LABEL
            ),
            reservation=token is not None and token.reservation_id is not None,
            msp=token is not None and token.msp_id is not None,
            token_organization_id=token.organization_id if token is not None else None,
            charger_organization_id=prop.organization_id if prop is not None else None,
        )
    )


def session_costs(
    sessions: Sequence[ChargingSession],
) -> dict[int, tuple[Decimal | None, str, bool]]:
    """(total incl. tax in the currency's own decimals, currency, final) of each session, by pk:
    the stored charge once final, else its cost so far priced now (billing, one batch for all
    the rows: a constant number of queries); (None, "", False) when nothing is charged for it."""
    out: dict[int, tuple[Decimal | None, str, bool]] = {}
    for pk, price in session_prices.call(sessions).items():
        out[pk] = (
            (None, "", False)
            if price is None
            else (
                money_round.call(price["total"], price["currency"]),
                price["currency"],
                price["final"],
            )
        )
    return out


def energy_so_far(sessions: Sequence[ChargingSession]) -> dict[int, Decimal]:
    """Wh delivered so far by each running session (its last energy register reading less its
    meter start), by pk, in one query for all of them; none for a session with no reading."""
    running = [s.pk for s in sessions if s.status == ChargingSession.Status.ACTIVE]
    if not running:
        return {}
    last = register_readings(OuterRef("pk"))
    rows = (
        ChargingSession.objects.filter(pk__in=running)
        .annotate(
            last_value=Subquery(last.values("value")[:1]),
            last_unit=Subquery(last.values("unit")[:1]),
        )
        .values_list("pk", "meter_start_wh", "last_value", "last_unit")
    )
    out: dict[int, Decimal] = {}
    for pk, start, value, unit in rows:
        reading = register_wh(value, unit or "") if value is not None else None
        if reading is not None and start is not None:
            out[pk] = max(reading - Decimal(start), Decimal(0))
    return out


def duration_so_far_s(session: ChargingSession, now: datetime) -> int:
    """Whole seconds from start to stop, or to `now` while it charges."""
    end = session.stopped_at or now
    return max(int((end - session.started_at).total_seconds()), 0)


def session_duration_s(session: ChargingSession) -> int | None:
    """Whole seconds from start to stop on the charger's clock; None while it charges."""
    if session.stopped_at is None:
        return None
    return max(int((session.stopped_at - session.started_at).total_seconds()), 0)


def payer_text(session: ChargingSession) -> str:
    """Who paid, in the host's words ("Guest card", "Driver account", …)."""
    return PAYER_TEXT[session_payer(session)]
