"""Sessions: filters, detail with meter curve, streamed CSV export."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_filters_by_charger_token_and_dates(client, site):
    client.force_login(site.viewer)
    url = reverse("chargers:session-list")
    assert client.get(url, {"token": site.token.uid.lower()}).context["total"] == 1
    assert client.get(url, {"token": "nobody"}).context["total"] == 0
    assert client.get(url, {"charger": site.charger.pk}).context["total"] == 1
    assert client.get(url, {"date_from": "2999-01-01"}).context["total"] == 0


def test_bad_date_range_shows_an_error_and_keeps_the_input(client, site):
    client.force_login(site.viewer)
    response = client.get(
        reverse("chargers:session-list"), {"date_from": "2024-05-02", "date_to": "2024-05-01"}
    )
    body = response.content.decode()
    assert "The end date is before the start date." in body
    assert 'value="2024-05-02"' in body


def test_csv_export_streams_the_filtered_list(client, site, other):
    client.force_login(site.owner)
    response = client.get(reverse("chargers:session-export"), {"token": site.token.uid})
    assert response.streaming
    assert response["X-Total-Rows"] == "1"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "transaction_id"
    assert len(rows) == 2
    assert rows[1][1] == site.charger.station_id and rows[1][11] == "7000"


def test_session_detail_draws_energy_and_power(client, site):
    client.force_login(site.owner)
    response = client.get(reverse("chargers:session-detail", args=[site.session.pk]))
    chart = response.context["chart"]
    assert [s.name for s in chart.series] == ["Energy", "Power"]
    # Four samples, then the StopTransaction reading: the curve and its headline end on the
    # energy the session is priced on.
    assert response.context["energy_points"] == 5
    assert response.context["last_energy"] == Decimal(site.session.energy_wh) / 1000
    assert f"{Decimal(site.session.energy_wh) / 1000:.3f} kWh" in response.content.decode()
    assert '<path d="M' in response.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_csv_export_under_asgi_streams_in_chunks(async_client, site):
    from asgiref.sync import sync_to_async

    from chargers.models import ChargingSession

    base = site.session
    await sync_to_async(ChargingSession.objects.bulk_create)(
        [
            ChargingSession(
                charger=base.charger,
                connector_id=1,
                transaction_id=900000 + i,
                id_tag="BULK",
                started_at=base.started_at,
                meter_start_wh=i,
                meter_stop_wh=i + 10,
                status="completed",
            )
            for i in range(1200)
        ]
    )
    await async_client.aforce_login(site.owner)
    response = await async_client.get(reverse("chargers:session-export"))
    assert response.is_async
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) >= 3  # 1201 lines, 500 per chunk: never one big list
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == 1 + 1201


def test_session_and_cost_pages_name_the_station_connector_and_start_not_the_transaction(
    client, site
):
    import re

    from backoffice.templatetags.when import when

    client.force_login(site.owner)
    # A number no date, time or station id on the page holds (a factory's 27 met "27 Nov").
    site.session.transaction_id = 918273645
    site.session.save(update_fields=["transaction_id"])
    tx = str(site.session.transaction_id)
    started = when(site.session.started_at, site.session)
    for name in ("chargers:session-detail", "billing:session-cost"):
        args = [site.session.pk]
        body = client.get(reverse(name, args=args)).content.decode()
        crumb = re.search(r'<p class="small breadcrumb">(.*?)</p>', body, re.S).group(1)
        title = re.search(r"<title>(.*?)</title>", body, re.S).group(1)
        heading = re.search(r"<h1>(.*?)</h1>", body, re.S).group(1)
        assert f"{site.charger.station_id} · connector 1 · {started}" in crumb
        assert f"{site.charger.station_id}, connector 1" in title
        for text in (crumb, title, heading):
            assert tx not in text


def test_a_running_session_shows_its_energy_so_far(client, site):
    """The list showed "–" for a session still charging while its cost so far was priced from
    the same readings: the host saw a cost and no energy."""
    from chargers.models import ChargingSession, MeterValue

    ChargingSession.objects.filter(pk=site.session.pk).update(
        status="active", stopped_at=None, meter_stop_wh=None
    )
    # A later reading in kWh (the unit a charger chose), and a phase reading that is not the total.
    last = MeterValue.objects.filter(session=site.session).order_by("-timestamp").first()
    MeterValue.objects.create(
        charger=site.charger,
        session=site.session,
        connector_id=1,
        timestamp=last.timestamp + timedelta(minutes=5),
        unit="kWh",
        value=Decimal("9.2505"),
    )
    MeterValue.objects.create(
        charger=site.charger,
        session=site.session,
        connector_id=1,
        timestamp=last.timestamp + timedelta(minutes=6),
        unit="Wh",
        phase="L1",
        value=Decimal("99999"),
    )
    client.force_login(site.owner)
    page = client.get(reverse("chargers:session-list")).content.decode()
    # 9250.5 - 1000 Wh, in whole Wh as the finished rows are; the phase reading is not the total.
    assert '8251 Wh <span class="muted small">so far</span>' in page
