"""Our eMSP role: a driver's session at a partner CPO that the CPO never ends (its last update and
its CDR lost, or never sent) kept the driver shown charging there and refused every new start
("You already have a session starting or running") for ever. The periodic sessions sweep asks
the CPO's Sessions Sender first; a session still open with no update nor CDR for 24 hours is then
closed on our side, once. The CPO's next update of it counts again; its CDR still bills it.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from drivers import roaming as driver_roaming
from drivers.models import DriverProfile
from roaming import emsp_cdrs, emsp_driving, tasks
from roaming.models import PartnerSession
from tests.drivers.conftest import save_card, sign_up
from tests.drivers.test_roaming import network as network  # the fixture
from tests.roaming.conftest import auth
from tests.roaming.test_emsp_tokens import CPO_TOKEN

pytestmark = pytest.mark.django_db

START = "2026-03-02T10:00:00Z"


def cpo_puts_session(uid: str, *, status: str = "ACTIVE", last_updated: str = START) -> None:
    body = {
        "country_code": "BE",
        "party_id": "CPX",
        "id": "S1",
        "start_date_time": START,
        "kwh": 3,
        "cdr_token": {
            "country_code": "NL",
            "party_id": "EVB",
            "uid": uid,
            "type": "APP_USER",
            "contract_id": "NLEVB000000001",
        },
        "auth_method": "COMMAND",
        "location_id": "LOC1",
        "evse_uid": "E1",
        "connector_id": "1",
        "currency": "EUR",
        "status": status,
        "last_updated": last_updated,
    }
    # The CPO is not the signed-in driver: its calls go without the driver's cookies.
    answer = Client().put(
        "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(CPO_TOKEN),
    )
    assert answer.status_code == 200, answer.content


def test_a_session_the_cpo_never_ends_is_closed_on_our_side_after_a_day(client, network):
    sign_up(client, "stuck@example.com")
    save_card(client)
    profile = DriverProfile.objects.get(user__email="stuck@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    cpo_puts_session(token.uid)
    session = PartnerSession.objects.get(session_id="S1")
    received = session.received_at
    assert emsp_driving.open_session(token) == session
    assert "Charging" in client.get("/driver/networks/activity/").content.decode()

    # Within the day: nothing closed.
    assert emsp_cdrs.sessions_quiet_close(now=received + timedelta(hours=23)) == 0
    assert emsp_driving.open_session(token) == session

    # Silent for a day: closed once (before: open for ever, every start refused).
    later = received + emsp_cdrs.QUIET_AFTER + timedelta(minutes=1)
    assert emsp_cdrs.sessions_quiet_close(now=later) == 1
    assert emsp_cdrs.sessions_quiet_close(now=later + timedelta(hours=1)) == 0  # idempotent
    session.refresh_from_db()
    assert session.quiet_closed_at == later and session.status == "ACTIVE"  # what the CPO said
    assert emsp_driving.open_session(token) is None
    page = client.get("/driver/networks/activity/").content.decode()
    assert "Charging</strong>" not in page and "waiting for the network's bill" in page

    # The CPO speaks of it again (still running): it counts again.
    cpo_puts_session(token.uid, last_updated="2026-03-03T10:00:00Z")
    session.refresh_from_db()
    assert session.quiet_closed_at is None
    assert emsp_driving.open_session(token) == session


def test_the_periodic_sessions_sweep_closes_a_silent_session(client, network):
    sign_up(client, "sweep@example.com")
    save_card(client)
    profile = DriverProfile.objects.get(user__email="sweep@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    cpo_puts_session(token.uid, status="PENDING")
    a_day_ago = timezone.now() - emsp_cdrs.QUIET_AFTER - timedelta(minutes=1)
    PartnerSession.objects.update(received_at=a_day_ago)  # no word from the CPO since

    tasks.emsp_sessions_sweep_task()

    assert PartnerSession.objects.get(session_id="S1").quiet_closed_at is not None
    assert emsp_driving.open_session(token) is None
