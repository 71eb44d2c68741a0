"""Portal form of site power: the budget, the policy, the schedule and the circuits as text."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from . import allocation, schedule, services
from .models import Circuit, SiteBudget

SCHEDULE_LINE = re.compile(
    r"^(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s+(\d+(?:\.\d)?)\s*A?$", re.I
)
CIRCUIT_LINE = re.compile(r"^(.+?)\s*:\s*(\d+(?:\.\d)?)\s*A?(?:\s+under\s+(.+))?$", re.I)


def schedule_text(entries: list[dict]) -> str:
    return "\n".join(f"{e['start']}-{e['end']} {e['limit_a']} A" for e in entries or [])


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
