"""Portal form of site power: the budget, the policy, the schedule and the circuits as text."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

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
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Time-of-day limits",
        help_text="One per line, local time: 17:00-21:00 40 A. End before start runs past midnight.",
    )
    circuits = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Circuits (sub-panels)",
        help_text="One per line: Garage: 32 A, or Row B: 20 A under Garage.",
    )
    connectors = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Connectors",
        help_text=(
            "One per line: CP-1/1: 3 phases, 6-16 A, or CP-2/1: 1 phase STR, 6-32 A, Garage "
            "(phase rotation and circuit optional). Connectors not listed count as three-phase, "
            "6-32 A, on the main connection."
        ),
    )

    def __init__(self, *args: Any, station_ids: dict[str, int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.station_ids = station_ids or {}

    def clean_schedule(self) -> list[dict[str, Any]]:
        entries = []
        for i, line in enumerate(self.cleaned_data["schedule"].splitlines(), start=1):
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

    def clean_circuits(self) -> list[services.CircuitSpec]:
        specs = []
        for i, line in enumerate(self.cleaned_data["circuits"].splitlines(), start=1):
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
