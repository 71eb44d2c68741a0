"""Pure pricing: a rate plus the facts of a session -> line items, subtotal, tax, total.

The lines are in the rate's own terms (tax included or not); billing.taxes.split turns their
sum into subtotal (net), tax and total (gross) with one rounding rule.

No Django imports (import-linter "pure" contract). Money is Decimal; every line is rounded
half-up to the currency's minor unit once, then the lines are summed (docs/billing.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from chargers.ocpp import clock

from .idle_fees import charging_window, idle_seconds_after_grace
from .money import minor_unit, round_money  # noqa: F401  (re-exported)
from .taxes import split_money

LINE_KINDS = ("connection_fee", "energy", "charging_time", "idle_fee", "subscription_discount")
ZERO = Decimal("0")


@dataclass(frozen=True)
class RateTerms:
    """The prices of a rate, as plain values."""

    currency: str
    connection_fee: Decimal = ZERO
    connection_fee_for_zero_energy: bool = False
    energy_price_per_kwh: Decimal = ZERO
    time_price_per_hour: Decimal = ZERO
    idle_fee_per_minute: Decimal = ZERO
    idle_grace_minutes: int = 0
    idle_fee_cap: Decimal | None = None
    tax_percent: Decimal = ZERO
    # The prices above include tax (the tax is taken out of them) or exclude it (tax is added
    # on top); billing.taxes.split does either with one rounding rule.
    prices_include_tax: bool = False
    processing_fee_percent: Decimal = ZERO
    processing_fee_fixed: Decimal = ZERO


@dataclass(frozen=True)
class Sample:
    """One meter sample: timestamp (charger clock), measurand, value converted to Wh or W."""

    timestamp: datetime
    measurand: str
    value: Decimal


@dataclass(frozen=True)
class StatusChange:
    timestamp: datetime
    status: str


@dataclass(frozen=True)
class PlanTerms:
    """A subscription plan held by the session's token: included kWh left and a discount."""

    name: str
    included_kwh_remaining: Decimal = ZERO
    energy_discount_percent: Decimal = ZERO


@dataclass(frozen=True)
class SessionFacts:
    """What the charger reported about one session (all times from the charger's clock)."""

    started_at: datetime
    stopped_at: datetime | None
    meter_start_wh: Decimal | None  # exact Wh; None: the charger reported no energy reading
    meter_stop_wh: Decimal | None
    samples: tuple[Sample, ...] = ()
    statuses: tuple[StatusChange, ...] = ()
    # A 0 kWh session that is a retry of another attempt by the same card on the same charger.
    repeated_attempt: bool = False
    plan: PlanTerms | None = None
    idle_power_threshold_w: Decimal = Decimal("100")
    # When the session waited for power at 0 A (docs/power.md): never idle time.
    waiting: tuple[tuple[datetime, datetime | None], ...] = ()
    # meter_start_wh / meter_stop_wh are the meter's signed readings, both verified.
    energy_signed: bool = False


@dataclass(frozen=True)
class Cost:
    currency: str
    lines: list[dict] = field(default_factory=list)
    subtotal: Decimal = ZERO
    tax: Decimal = ZERO
    total: Decimal = ZERO
    processing_fee: Decimal = ZERO
    energy_wh: Decimal | None = ZERO  # exact Wh; None: no reading reported (priced by time only)
    charging_seconds: int = 0
    idle_seconds: int = 0
    final: bool = True
    energy_source: str = "measured"  # "signed": signed end - signed start (docs/metering.md)
    # How tax applied: the lines are the rate's prices, including tax (subtotal = net part of
    # their sum) or excluding it (subtotal = their sum, tax added on top). total = subtotal + tax.
    prices_include_tax: bool = False
    tax_percent: Decimal = ZERO

    def as_dict(self) -> dict:
        """Return the API shape: amounts as decimal strings."""
        return {
            "currency": self.currency,
            "lines": [
                {
                    "kind": line["kind"],
                    "description": line["description"],
                    "quantity": str(line["quantity"]),
                    "unit": line["unit"],
                    "unit_price": price_str(line["unit_price"], self.currency),
                    "amount": str(line["amount"]),
                }
                for line in self.lines
            ],
            "subtotal": str(self.subtotal),
            "tax": str(self.tax),
            "total": str(self.total),
            "tax_percent": f"{Decimal(self.tax_percent).normalize():f}",
            "prices_include_tax": self.prices_include_tax,
        }

    def as_facts(self) -> dict:
        """Everything the cost holds, decimals as strings (JSON): `from_facts` gives it back."""
        return {
            **self.as_dict(),
            "lines": [
                {**line, **{k: str(line[k]) for k in ("quantity", "unit_price", "amount")}}
                for line in self.lines
            ],
            "processing_fee": str(self.processing_fee),
            "energy_wh": None if self.energy_wh is None else str(self.energy_wh),
            "charging_seconds": self.charging_seconds,
            "idle_seconds": self.idle_seconds,
            "final": self.final,
            "energy_source": self.energy_source,
        }

    @classmethod
    def from_facts(cls, facts: dict) -> Cost:
        return cls(
            currency=facts["currency"],
            lines=[
                {**line, **{k: Decimal(line[k]) for k in ("quantity", "unit_price", "amount")}}
                for line in facts["lines"]
            ],
            subtotal=Decimal(facts["subtotal"]),
            tax=Decimal(facts["tax"]),
            total=Decimal(facts["total"]),
            processing_fee=Decimal(facts["processing_fee"]),
            energy_wh=None if facts["energy_wh"] is None else Decimal(facts["energy_wh"]),
            charging_seconds=facts["charging_seconds"],
            idle_seconds=facts["idle_seconds"],
            final=facts["final"],
            energy_source=facts["energy_source"],
            prices_include_tax=facts["prices_include_tax"],
            tax_percent=Decimal(facts["tax_percent"]),
        )


def price_str(value: Decimal, currency: str) -> str:
    """Return a unit price with no trailing zeros beyond the currency's minor unit (0.3500 -> 0.35, 0.305 stays)."""
    value = Decimal(value)
    exponent = value.normalize().as_tuple().exponent
    if not isinstance(exponent, int):  # NaN or Infinity: no decimals to keep
        raise ValueError(f"not a finite price: {value}")
    decimals = max(-exponent, minor_unit(currency), 0)
    return str(value.quantize(Decimal(1).scaleb(-decimals)))


ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


def energy_delivered_wh(facts: SessionFacts) -> Decimal | None:
    """Return the energy of the session in Wh, exact (the registers' decimals kept).

    meter stop - meter start when both are known and the stop is not lower. Otherwise the
    register samples are walked in time order and every increase is added; a drop means the
    meter was reset (to zero), so the value after the drop counts from zero.
    None when the charger reported no energy reading at all: unknown, not 0.
    """
    start, stop = facts.meter_start_wh, facts.meter_stop_wh
    if start is None:
        return None
    start = Decimal(start)
    if stop is not None and stop >= start:
        return Decimal(stop) - start
    readings = sorted(
        (s for s in facts.samples if s.measurand == ENERGY_REGISTER), key=lambda s: s.timestamp
    )
    total = Decimal(0)
    previous = start
    values = [Decimal(r.value) for r in readings]
    if stop is not None:
        values.append(Decimal(stop))
    for value in values:
        if value >= previous:
            total += value - previous
        else:
            total += value
        previous = value
    return total


def clock_span(
    *,
    started_at: datetime,
    stopped_at: datetime | None,
    received_start_at: datetime,
    received_stop_at: datetime | None,
) -> tuple[datetime, datetime | None]:
    """The start and stop a session's time is priced with (charging time, idle time).

    The charger's own, as its meter readings and status changes carry the same clock; but not
    when that clock was evidently wrong: a stop before the start, or a start or a stop that is
    no time the charger can have meant (`chargers.ocpp.clock.wrong`: before 2015, or ahead of
    when it reached us). Then what our clock saw: when the start and the stop reached us. The
    OCPP handlers replace such times as they arrive; this keeps a session stored otherwise
    (replayed, edited, from before that check) from a negative charge or years of charging."""
    wrong = clock.wrong(started_at, received_start_at) or (
        stopped_at is not None
        # (Without the time the stop reached us, only its floor can be checked.)
        and (stopped_at < started_at or clock.wrong(stopped_at, received_stop_at or stopped_at))
    )
    if not wrong:
        return started_at, stopped_at
    if stopped_at is None:
        return received_start_at, None
    return received_start_at, max(received_stop_at or received_start_at, received_start_at)


def _end_of(facts: SessionFacts) -> datetime:
    if facts.stopped_at is not None:
        return facts.stopped_at
    moments = (
        [facts.started_at]
        + [s.timestamp for s in facts.samples]
        + [s.timestamp for s in facts.statuses]
    )
    return max(moments)


def _line(
    kind: str, description: str, quantity: Decimal, unit: str, unit_price: Decimal, amount: Decimal
) -> dict:
    return {
        "kind": kind,
        "description": description,
        "quantity": quantity,
        "unit": unit,
        "unit_price": unit_price,
        "amount": amount,
    }


def _fmt(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def session_cost(rate: RateTerms, facts: SessionFacts) -> Cost:
    """Return the line items and totals of one session under one rate."""
    currency = rate.currency.upper()
    energy_wh = energy_delivered_wh(facts)
    # No reading reported: nothing is charged for energy (time rules only), and the connection
    # fee follows the rule for a session that delivered nothing.
    kwh = ZERO if energy_wh is None else energy_wh / Decimal(1000)
    end = _end_of(facts)
    charging_from, charging_until = charging_window(
        started_at=facts.started_at,
        ended_at=end,
        statuses=facts.statuses,
        power_samples=[(s.timestamp, s.value) for s in facts.samples if s.measurand == POWER],
        power_threshold_w=facts.idle_power_threshold_w,
        waiting=facts.waiting,
    )
    charging_seconds = max(int((charging_until - charging_from).total_seconds()), 0)
    idle_total = max(int((end - charging_until).total_seconds()), 0)
    lines: list[dict] = []

    if rate.connection_fee > 0:
        charge_fee = kwh > 0 or (rate.connection_fee_for_zero_energy and not facts.repeated_attempt)
        if charge_fee:
            lines.append(
                _line(
                    "connection_fee",
                    "Connection fee (once per session)",
                    Decimal(1),
                    "session",
                    rate.connection_fee,
                    round_money(rate.connection_fee, currency),
                )
            )

    energy_amount = round_money(kwh * rate.energy_price_per_kwh, currency)
    if energy_wh is not None:
        lines.append(
            _line(
                "energy",
                f"Energy {kwh.quantize(Decimal('0.001'))} kWh × {_fmt(rate.energy_price_per_kwh)} {currency}/kWh",
                kwh.quantize(Decimal("0.001")),
                "kWh",
                rate.energy_price_per_kwh,
                energy_amount,
            )
        )

    if rate.time_price_per_hour > 0:
        hours = Decimal(charging_seconds) / Decimal(3600)
        lines.append(
            _line(
                "charging_time",
                f"Charging time {charging_seconds // 3600} h {charging_seconds % 3600 // 60:02d} min",
                hours.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP),
                "h",
                rate.time_price_per_hour,
                round_money(hours * rate.time_price_per_hour, currency),
            )
        )

    billable_idle = idle_seconds_after_grace(idle_total, rate.idle_grace_minutes)
    if rate.idle_fee_per_minute > 0 and billable_idle > 0:
        minutes = billable_idle // 60  # a started minute is not charged
        if minutes > 0:
            amount = round_money(Decimal(minutes) * rate.idle_fee_per_minute, currency)
            description = (
                f"Idle fee: plugged in {idle_total // 60} min after charging finished, "
                f"first {rate.idle_grace_minutes} min free"
            )
            if rate.idle_fee_cap is not None and amount > rate.idle_fee_cap:
                amount = round_money(rate.idle_fee_cap, currency)
                description += f", capped at {_fmt(rate.idle_fee_cap)} {currency}"
            lines.append(
                _line(
                    "idle_fee",
                    description,
                    Decimal(minutes),
                    "min",
                    rate.idle_fee_per_minute,
                    amount,
                )
            )

    if facts.plan is not None and kwh > 0:
        included = min(max(facts.plan.included_kwh_remaining, ZERO), kwh)
        discount = included * rate.energy_price_per_kwh
        rest = kwh - included
        if facts.plan.energy_discount_percent > 0:
            discount += rest * rate.energy_price_per_kwh * facts.plan.energy_discount_percent / 100
        discount = min(round_money(discount, currency), energy_amount)
        if discount > 0:
            parts = []
            if included > 0:
                parts.append(f"{included.quantize(Decimal('0.001'))} kWh included")
            if facts.plan.energy_discount_percent > 0 and rest > 0:
                parts.append(f"{_fmt(facts.plan.energy_discount_percent)}% off energy")
            lines.append(
                _line(
                    "subscription_discount",
                    f"Subscription {facts.plan.name}: " + ", ".join(parts),
                    Decimal(1),
                    "session",
                    -discount,
                    -discount,
                )
            )

    lines_sum = max(sum((line["amount"] for line in lines), ZERO), ZERO)
    # The lines are in the rate's own terms; one split gives net, tax and gross to the cent.
    split = split_money(lines_sum, rate.tax_percent, currency, included=rate.prices_include_tax)
    total = split.gross
    processing = ZERO
    if total > 0:
        processing = round_money(
            total * rate.processing_fee_percent / 100 + rate.processing_fee_fixed, currency
        )
    return Cost(
        currency=currency,
        lines=lines,
        subtotal=split.net,
        tax=split.tax,
        total=split.gross,
        processing_fee=processing,
        energy_wh=energy_wh,
        charging_seconds=charging_seconds,
        idle_seconds=idle_total,
        final=facts.stopped_at is not None,
        energy_source="signed" if facts.energy_signed else "measured",
        prices_include_tax=rate.prices_include_tax,
        tax_percent=Decimal(rate.tax_percent or 0),
    )


def tariff_text(rate: RateTerms) -> str:
    """The rate in one line for a charger's display (OCPP 2.0.1 I01 personalMessage, at most
    512 characters): only the parts the rate charges, and how tax applies."""
    currency = rate.currency.upper()
    parts = [f"{price_str(rate.energy_price_per_kwh, currency)} {currency}/kWh"]
    if rate.connection_fee > 0:
        parts.append(f"{price_str(rate.connection_fee, currency)} {currency} per session")
    if rate.time_price_per_hour > 0:
        parts.append(f"{price_str(rate.time_price_per_hour, currency)} {currency}/h charging")
    if rate.idle_fee_per_minute > 0:
        idle = f"idle {price_str(rate.idle_fee_per_minute, currency)} {currency}/min"
        if rate.idle_grace_minutes:
            idle += f" after {rate.idle_grace_minutes} min"
        if rate.idle_fee_cap is not None:
            idle += f" (max {price_str(rate.idle_fee_cap, currency)} {currency})"
        parts.append(idle)
    text = ", ".join(parts)
    if rate.tax_percent:
        tax = f"{_fmt(Decimal(rate.tax_percent))}% tax"
        text += f"; incl. {tax}" if rate.prices_include_tax else f"; plus {tax}"
    return text[:512]
