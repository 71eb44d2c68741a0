"""Portal form of site power: the budget, the policy, the schedule and the circuits as text."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.http import QueryDict

from . import allocation, schedule, services
from .models import Circuit, ConnectorPower, SiteBudget

SCHEDULE_LINE = re.compile(
    r"^(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s+(\d+(?:\.\d)?)\s*A?$", re.I
)
CONNECTOR_LINE = re.compile(
    r"^(\S+)/(\d{1,2})\s*:\s*([123])\s*phases?(?:\s+([RST]{3}))?\s*,\s*"
    r"(\d+(?:\.\d)?)\s*[-–]\s*(\d+(?:\.\d)?)\s*A(?:\s*,\s*(.+))?$",
    re.I,
)
# Lines a textarea may hold (the API's bounds, power.api), and its characters.
MAX_TEXT = 200_000
MAX_CONNECTOR_A = Decimal(1000)
CIRCUIT_LINE = re.compile(r"^(.+?)\s*:\s*(\d+(?:\.\d)?)\s*A?(?:\s+under\s+(.+))?$", re.I)


def schedule_text(entries: list[dict]) -> str:
    return "\n".join(f"{e['start']}-{e['end']} {e['limit_a']} A" for e in entries or [])


def connectors_text(rows: list[ConnectorPower]) -> str:
    return "\n".join(
        f"{r.charger.station_id}/{r.connector_id}: {r.phases} phase{'s' if r.phases > 1 else ''}"
        + (f" {r.phase_rotation}" if r.phase_rotation != "RST" else "")
        + f", {r.min_a}-{r.max_a} A"
        + (f", {r.circuit.name}" if r.circuit else "")
        for r in rows
    )


def circuits_text(circuits: list[Circuit]) -> str:
    return "\n".join(
        f"{c.name}: {c.limit_a} A" + (f" under {c.parent.name}" if c.parent else "")
        for c in circuits
    )


class PowerForm(forms.Form):
    limit_a = forms.DecimalField(
        label="Budget (amperes per phase)",
        min_value=Decimal(0),
        max_value=Decimal(10000),
        decimal_places=1,
        help_text="What the chargers may draw together: the main fuse minus the building's own use.",
    )
    phases = forms.TypedChoiceField(
        choices=[(3, "Three-phase"), (1, "Single-phase")], coerce=int, initial=3
    )
    voltage = forms.IntegerField(
        label="Voltage (phase to neutral)", min_value=100, max_value=480, initial=230
    )
    policy = forms.ChoiceField(
        choices=SiteBudget.Policy.choices,
        widget=forms.RadioSelect,
        initial="equal",
        label="How the budget is shared",
    )
    schedule = forms.CharField(
        required=False,
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Time-of-day limits",
        help_text="One per line, local time: 17:00-21:00 40 A. End before start runs past midnight.",
    )
    circuits = forms.CharField(
        required=False,
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Circuits (sub-panels)",
        help_text="One per line: Garage: 32 A, or Row B: 20 A under Garage.",
    )
    connectors = forms.CharField(
        required=False,
        max_length=MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Connectors",
        help_text=(
            "One per line: CP-1/1: 3 phases, 6-16 A, or CP-2/1: 1 phase STR, 6-32 A, Garage "
            "(phase rotation and circuit optional). Connectors not listed count as three-phase, "
            "6-32 A, on the main connection."
        ),
    )

    # The budget the page showed (services.budget_version): a save from a stale tab is refused.
    version = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, station_ids: dict[str, int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.station_ids = station_ids or {}
        # The page's rows (issue 51 item 2): one input per value instead of a line of text. They
        # are written as the text's lines (a blank row a blank line, so row N is line N) and
        # read by the same rules; the API and older forms keep sending the text.
        self.rows = bool(self.is_bound and self.data.get("rows") == "1")
        if self.rows:
            data = QueryDict(mutable=True)
            data.update(self.data)
            data["schedule"] = "\n".join(_schedule_line(r) for r in posted_rows(data, "sched"))
            data["circuits"] = "\n".join(_circuit_line(r) for r in posted_rows(data, "circ"))
            self.data = data

    def _in_rows(self, exc: forms.ValidationError, hint: str) -> forms.ValidationError:
        """The text's error in the rows' words: "Row 2: …" with a hint for inputs."""
        if not self.rows:
            return exc
        text = " ".join(exc.messages).replace("Line ", "Row ")
        return forms.ValidationError(re.sub(r"write it as .*\.$", hint, text))

    def clean_schedule(self) -> list[dict[str, Any]]:
        try:
            return self._schedule()
        except forms.ValidationError as exc:
            raise self._in_rows(exc, "give a start and an end as 17:00 and the amperes.") from None

    def clean_circuits(self) -> list[services.CircuitSpec]:
        try:
            return self._circuits()
        except forms.ValidationError as exc:
            raise self._in_rows(exc, "give a name and its amperes.") from None

    def _schedule(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for i, line in enumerate(self.cleaned_data["schedule"].splitlines(), start=1):
            if len(entries) >= schedule.MAX_ENTRIES:
                raise forms.ValidationError(f"At most {schedule.MAX_ENTRIES} time windows.")
            if not line.strip():
                continue
            match = SCHEDULE_LINE.match(line.strip())
            if not match:
                raise forms.ValidationError(f"Line {i}: write it as 17:00-21:00 40 A.")
            start, end, amps = match.groups()
            entries.append({"start": start.zfill(5), "end": end.zfill(5), "limit_a": amps})
        try:
            schedule.parse_schedule(entries)
        except schedule.ScheduleError as exc:
            raise forms.ValidationError(str(exc)) from None
        return entries

    def _circuits(self) -> list[services.CircuitSpec]:
        specs: list[services.CircuitSpec] = []
        for i, line in enumerate(self.cleaned_data["circuits"].splitlines(), start=1):
            if len(specs) >= services.MAX_CIRCUITS:
                raise forms.ValidationError(f"At most {services.MAX_CIRCUITS} circuits.")
            if not line.strip():
                continue
            match = CIRCUIT_LINE.match(line.strip())
            if not match:
                raise forms.ValidationError(f"Line {i}: write it as Garage: 32 A.")
            name, amps, parent = match.groups()
            try:
                limit = Decimal(amps)
            except InvalidOperation:
                raise forms.ValidationError(f"Line {i}: the limit is a number.") from None
            if len(name) > 100:
                raise forms.ValidationError(f"Line {i}: the name is too long.")
            specs.append(services.CircuitSpec(name.strip(), limit, (parent or "").strip() or None))
        try:
            services.check_circuits(specs)
        except allocation.CircuitError as exc:
            raise forms.ValidationError(str(exc)) from None
        return specs

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "circuits" in data and "connectors" in data:
            names = {c.name for c in data["circuits"]}
            try:
                data["connectors"] = self._connector_specs(data["connectors"], names)
            except forms.ValidationError as exc:
                self.add_error("connectors", exc)
        return data

    def _connector_specs(self, text: str, circuits: set[str]) -> list[services.ConnectorSpec]:
        specs: list[services.ConnectorSpec] = []
        seen: set[tuple[str, int]] = set()
        for i, line in enumerate(text.splitlines(), start=1):
            if len(specs) >= services.MAX_CONNECTORS:
                raise forms.ValidationError(f"At most {services.MAX_CONNECTORS} connectors.")
            if not line.strip():
                continue
            match = CONNECTOR_LINE.match(line.strip())
            if not match:
                raise forms.ValidationError(f"Line {i}: write it as CP-1/1: 3 phases, 6-16 A.")
            station, connector, phases, rotation, low, high, circuit = match.groups()
            circuit = (circuit or "").strip() or None
            if station not in self.station_ids:
                raise forms.ValidationError(f"Line {i}: no charger {station} at this location.")
            if circuit and circuit not in circuits:
                raise forms.ValidationError(f"Line {i}: no circuit named {circuit}.")
            if Decimal(high) > MAX_CONNECTOR_A:
                raise forms.ValidationError(f"Line {i}: at most {MAX_CONNECTOR_A} A.")
            if Decimal(low) > Decimal(high):
                raise forms.ValidationError(f"Line {i}: the minimum is above the maximum.")
            if (station, int(connector)) in seen:
                raise forms.ValidationError(f"Line {i}: {station}/{connector} is listed twice.")
            seen.add((station, int(connector)))
            specs.append(
                services.ConnectorSpec(
                    charger_id=self.station_ids[station],
                    connector_id=int(connector),
                    phases=int(phases),
                    phase_rotation=(rotation or "RST").upper(),
                    min_a=Decimal(low),
                    max_a=Decimal(high),
                    circuit=circuit,
                )
            )
        return specs


MAX_READING_A = Decimal(10000)  # the API's bound (power.api.MAX_AMPS)


class ReadingForm(forms.Form):
    """A building meter's reading typed in the portal: what the chargers may draw now, for how
    long (the same live budget POST /api/v1/properties/{id}/power/reading/ sets)."""

    available = forms.DecimalField(
        label="Available to the chargers now",
        min_value=Decimal(0),
        max_digits=9,
        decimal_places=3,
        help_text="What the building meter leaves for charging: the fuse minus the building's use.",
    )
    unit = forms.ChoiceField(
        choices=[("A", "amperes per phase"), ("kW", "kW")], initial="A", label="Unit"
    )
    minutes = forms.IntegerField(
        label="Holds for (minutes)",
        min_value=1,
        max_value=24 * 60,
        initial=5,
        help_text="Then the time-of-day limit or the budget applies again.",
    )

    def __init__(self, *args: Any, site: SiteBudget, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site = site

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "available" not in data or "unit" not in data:
            return data
        amps = data["available"]
        if data["unit"] == "kW":
            amps = allocation.amps_from_kw(amps, voltage=self.site.voltage, phases=self.site.phases)
        if amps > MAX_READING_A:
            self.add_error("available", f"That is more than {MAX_READING_A} A per phase.")
        data["limit_a"] = amps
        return data


ROWS_MAX = {"sched": schedule.MAX_ENTRIES, "circ": services.MAX_CIRCUITS}
ROW_FIELDS = {"sched": ("start", "end", "limit"), "circ": ("name", "limit", "parent")}


def posted_rows(data: Any, prefix: str) -> list[dict[str, str]]:
    """The rows the page posted (prefix-N-field), in order, blank ones kept; at most the
    list's bound plus one, so an overlong list is refused by the text's own check."""
    try:
        count = int(data.get(f"{prefix}-count", "0"))
    except (TypeError, ValueError):
        count = 0
    count = max(0, min(count, ROWS_MAX[prefix] + 1))
    return [
        {f: str(data.get(f"{prefix}-{i}-{f}", "")).strip()[:120] for f in ROW_FIELDS[prefix]}
        for i in range(count)
    ]


def _schedule_line(row: dict[str, str]) -> str:
    if not any(row.values()):
        return ""
    return f"{row['start']}-{row['end']} {row['limit']} A"


def _circuit_line(row: dict[str, str]) -> str:
    if not any(row.values()):
        return ""
    return f"{row['name']}: {row['limit']} A" + (f" under {row['parent']}" if row["parent"] else "")


def schedule_rows(entries: list[dict], blank: int = 2) -> list[dict[str, str]]:
    rows = [{"start": e["start"], "end": e["end"], "limit": str(e["limit_a"])} for e in entries]
    return rows + [{"start": "", "end": "", "limit": ""} for _ in range(blank)]


def circuit_rows(circuits: list[Circuit], blank: int = 2) -> list[dict[str, str]]:
    rows = [
        {"name": c.name, "limit": str(c.limit_a), "parent": c.parent.name if c.parent else ""}
        for c in circuits
    ]
    return rows + [{"name": "", "limit": "", "parent": ""} for _ in range(blank)]
