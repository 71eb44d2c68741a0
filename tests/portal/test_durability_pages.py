"""What the portal says about the OCPP core's safeguards: identity conflicts and schema violations
on the Overview, badges in the Logs, superseded sessions explained."""

import json

from django.utils import timezone

from chargers.models import Charger, ChargingSession, OcppMessage


def test_overview_warns_of_two_clients_and_counts_violations(client, site):
    Charger.objects.filter(pk=site.charger.pk).update(
        identity_conflict_at=timezone.now(), identity_conflict_replacements=9, schema_violations=3
    )
    client.force_login(site.viewer)
    page = client.get(f"/chargers/{site.charger.station_id}/").content.decode()
    assert "Station ID in use twice" in page and "9 connections replaced each other" in page
    assert "3</span> transaction messages broke the OCPP schema" in page


def test_overview_is_quiet_when_all_is_well(client, site):
    client.force_login(site.viewer)
    page = client.get(f"/chargers/{site.charger.station_id}/").content.decode()
    assert "Station ID in use twice" not in page and "broke the OCPP schema" not in page


def test_logs_show_violation_and_escaped_frames(client, site):
    frame = '[2,"x1","StopTransaction",{"transactionId":5,"meterStop":1,"timestamp":"2026-11-20T10:00:00Z","reason":"VendorX"}]'
    OcppMessage.objects.create(
        charger=site.charger,
        direction="in",
        message_type=2,
        unique_id="x1",
        action="StopTransaction",
        payload=json.loads(frame)[3],
        violation="schema: data.reason must be one of [...]",
    )
    OcppMessage.objects.create(
        charger=site.charger,
        direction="in",
        message_type=2,
        unique_id="x2",
        action="DataTransfer",
        payload={"vendorId": "V", "data": "a\\u0000b"},
        raw=json.dumps('[2,"x2","DataTransfer",{"vendorId":"V","data":"a\\u0000b"}]'),
        escaped=True,
    )
    client.force_login(site.viewer)
    page = client.get(f"/chargers/{site.charger.station_id}/logs/").content.decode()
    assert "schema violation" in page and "data.reason must be one of" in page
    assert "stored escaped" in page and "kept exactly as sent" in page


def test_superseded_sessions_are_explained(client, site):
    ChargingSession.objects.filter(pk=site.session.pk).update(
        status="completed", stop_reason="Superseded", stopped_at=timezone.now(), meter_stop_wh=10**6
    )
    client.force_login(site.viewer)
    assert "Closed: superseded" in client.get("/sessions/").content.decode()
    detail = client.get(f"/sessions/{site.session.pk}/").content.decode()
    assert "started a newer session on connector" in detail


def test_logs_say_a_wrong_clock_apart_from_a_schema_violation(client, site):
    # A start whose time was replaced (the charger's clock is not set) beside a real violation,
    # and one whose only note is the clock: only the first is marked "schema violation".
    for unique_id, note in (
        (
            "c1",
            "timestamp '1970-01-01T00:00:42Z' is before 2015: the charger's clock is not set: "
            "receive time used; meterStart unusable: 0 used",
        ),
        (
            "c2",
            "timestamp '2031-01-01T00:00:00Z' is 1494 days ahead of ours: the charger's clock "
            "is wrong: receive time used",
        ),
    ):
        OcppMessage.objects.create(
            charger=site.charger,
            direction="in",
            message_type=2,
            unique_id=unique_id,
            action="StartTransaction",
            payload={"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "x"},
            violation=note,
        )
    client.force_login(site.viewer)
    page = client.get(f"/chargers/{site.charger.station_id}/logs/").content.decode()
    assert page.count('class="badge badge-warn schema-violation"') == 1
    assert "meterStart unusable: 0 used" in page
    assert page.count('class="badge badge-warn clock-wrong"') == 2
    assert "1494 days ahead of ours" in page and "Set the charger's time" in page
