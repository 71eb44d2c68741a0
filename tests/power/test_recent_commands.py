"""The load manager never drowns the host's commands (issue 45 item 3): a charger's "Recent
commands" lists the host's own commands however many power limits were sent, the power limits
are one line saying what they mean, and the smart-charging tab drops expired profiles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chargers.models import ChargingProfile, ChargingSession, Command
from power import profiles

pytestmark = pytest.mark.django_db


def _power_command(charger, limit: float, status: str = "Accepted") -> Command:
    profile = profiles.session_limit(profiles.V16, connector_id=1, transaction_id=7, limit_a=limit)
    return Command.objects.create(
        charger=charger,
        action="SetChargingProfile",
        payload=profile.payload,
        status=Command.Status.ANSWERED,
        response={"status": status},
        source="power",
        note=profile.meaning,
    )


def test_the_hosts_commands_stay_visible_and_power_limits_say_what_they_mean(client, host, charger):
    Command.objects.create(
        charger=charger,
        action="Reset",
        payload={"type": "Soft"},
        status=Command.Status.ANSWERED,
        response={"status": "Accepted"},
        source="portal",
        requested_by=host,
    )
    for n in range(30):  # half an hour of the old rate: more than the table's ten rows
        _power_command(
            charger, 10.6 if n % 2 else 12.0, status="Rejected" if n == 3 else "Accepted"
        )
    _power_command(charger, 10.6)
    client.force_login(host)
    page = client.get(reverse("chargers:charger-detail", args=[charger.station_id])).content
    page = page.decode()
    assert "Reset" in page and "Soft" in page  # the host's own command is listed
    assert "csChargingProfiles" not in page  # no raw profile JSON
    line = page[page.index('id="power-commands"') :].split("</p>")[0]
    assert "31 in the last hour" in line and "1 not accepted" in line
    assert "Connector 1 limited to 10.6 A by the site budget" in line and "Accepted" in line


def test_expired_profiles_are_not_shown_as_installed(client, host, charger):
    now = timezone.now()
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=8,
        id_tag="TAG",
        started_at=now,
        meter_start_wh=0,
    )
    rows = {
        "lease-expired": dict(profile_id=3801, valid_to=now - timedelta(seconds=1)),
        "lease-valid": dict(profile_id=3802, valid_to=now + timedelta(seconds=60)),
        "tx-ended": dict(profile_id=3811, transaction_id="7", purpose="TxProfile"),
        "tx-running": dict(profile_id=3812, evse_id=2, transaction_id="8", purpose="TxProfile"),
    }
    for fields in rows.values():
        ChargingProfile.objects.create(
            charger=charger,
            stack_level=1,
            purpose=fields.pop("purpose", "TxDefaultProfile"),
            kind="Absolute",
            status=ChargingProfile.Status.INSTALLED,
            profile={"chargingSchedule": []},
            **fields,
        )
    client.force_login(host)
    page = client.get(f"/chargers/{charger.station_id}/smart-charging/").content.decode()
    assert "#3802" in page and "#3812" in page
    assert "#3801" not in page and "#3811" not in page
