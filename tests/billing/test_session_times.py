"""Session pages: times in the property's zone with the zone named, durations as people read them,
and the cost page linked."""

from datetime import UTC, datetime, timedelta

import pytest

from backoffice.formatting import duration_text
from chargers.models import ChargingSession


@pytest.mark.parametrize(
    "seconds,text",
    [
        (50.063, "50 s"),
        (0, "0 s"),
        (420, "7 min"),
        (3900, "1 h 05 min"),
        (36000 + 59, "10 h 00 min"),
    ],
)
def test_duration_text(seconds, text):
    assert duration_text(timedelta(seconds=seconds)) == text


@pytest.mark.django_db
def test_session_detail_in_the_property_zone_with_duration_and_cost_link(
    client, host, prop, charger
):
    prop.timezone = "Europe/Amsterdam"
    prop.save()
    started = datetime(2026, 1, 15, 7, 38, 31, tzinfo=UTC)  # 08:38:31 in Amsterdam (winter)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=7,
        id_tag="AA01",
        started_at=started,
        stopped_at=started + timedelta(minutes=65),
        meter_start_wh=0,
        meter_stop_wh=5000,
        status="completed",
    )
    client.force_login(host)
    body = client.get(f"/sessions/{session.pk}/").content.decode()
    assert "15 Jan 2026, 08:38:31 CET" in body and "(Europe/Amsterdam time)" in body
    assert "07:38:31" not in body
    assert "1 h 05 min" in body and "0:" not in body.split("Duration")[1][:40]
    assert f'href="/billing/sessions/{session.pk}/cost/"' in body
