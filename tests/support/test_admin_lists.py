"""Admin lists show what agents search by (issue 34 item 4): sessions by station id and connector,
autocomplete instead of raw ids."""

from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.test import Client

from chargers.admin import charger_search_term
from chargers.models import Charger, ChargingSession
from tests.factories import ChargerFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 24, 9, 5, tzinfo=UTC)


@pytest.fixture
def agent():
    desk = Client()
    desk.force_login(UserFactory(is_staff=True, is_superuser=True))
    return desk


def _session(charger, connector, tx, id_tag="04A1B2C3"):
    return ChargingSession.objects.create(
        charger=charger, connector_id=connector, transaction_id=tx, id_tag=id_tag, started_at=T0
    )


@pytest.fixture
def sessions(prop):
    demo3 = ChargerFactory(property=prop, station_id="DEMO-003")
    demo1 = ChargerFactory(property=prop, station_id="DEMO-001")
    return {
        "one": _session(demo3, 1, 1396031765),
        "two": _session(demo3, 2, 1396031766),
        # Another charger's session whose idTag looks like the station id.
        "other": _session(demo1, 2, 77, id_tag="DEMO-003"),
    }


def test_a_session_is_labelled_by_station_id_and_connector(sessions):
    assert str(sessions["two"]) == "DEMO-003 #2 2026-11-24 09:05 UTC"


def test_searching_a_station_id_finds_only_that_chargers_sessions(agent, sessions):
    def found(term):
        page = agent.get("/admin/chargers/chargingsession/", {"q": term}).content.decode()
        return {k for k, s in sessions.items() if f"/chargingsession/{s.pk}/change/" in page}

    assert found("DEMO-003") == {"one", "two"}
    assert found("demo-003") == {"one", "two"}
    assert found("DEMO-003 #2") == {"two"}
    assert found("DEMO-003/1") == {"one"}
    assert found("1396031766") == {"two"}
    page = agent.get("/admin/chargers/chargingsession/", {"q": "DEMO-003"}).content.decode()
    assert "DEMO-003 #2 2026-11-24 09:05 UTC" in page


def test_charger_search_term():
    assert charger_search_term(" DEMO-003 #2 ") == ("DEMO-003", 2)
    assert charger_search_term("DEMO-003#12") == ("DEMO-003", 12)
    assert charger_search_term("CP/7") == ("CP", 7)
    assert charger_search_term("DEMO-003") == ("DEMO-003", None)
    assert charger_search_term("#2") == ("#2", None)


def test_picking_a_session_elsewhere_autocompletes_by_station_id(agent, sessions):
    answer = agent.get(
        "/admin/autocomplete/",
        {
            "app_label": "billing",
            "model_name": "payment",
            "field_name": "session",
            "term": "DEMO-003 #2",
        },
    ).json()
    assert [r["text"] for r in answer["results"]] == ["DEMO-003 #2 2026-11-24 09:05 UTC"]


def test_no_admin_asks_for_a_raw_id(agent):
    # Thread messages have no list of their own to search (support.admin QuarantinedEmailAdmin).
    allowed = {("support", "quarantinedemail"): {"attached_message"}}
    ours = {
        "backoffice",
        "chargers",
        "metering",
        "pki",
        "authorization",
        "stays",
        "billing",
        "roaming",
        "guest",
    }
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ours | {"support", "drivers"}:
            continue  # third-party admins (allauth, auditlog ...)
        key = (model._meta.app_label, model._meta.model_name)
        assert set(model_admin.raw_id_fields) <= allowed.get(key, set()), key
    unit_form = agent.get("/admin/stays/unit/add/").content.decode()
    assert 'name="property"' in unit_form and "admin-autocomplete" in unit_form
    assert "vForeignKeyRawIdAdminField" not in unit_form
    session_form = agent.get("/admin/chargers/chargingsession/add/").content.decode()
    assert "vForeignKeyRawIdAdminField" not in session_form


def test_every_list_shows_its_counts_when_an_agent_asks_for_them(agent, sessions):
    """Django's "Show counts" (`?_facets=True`) runs every filter on the filtered rows: the
    charger list's connection filter answered a 500 there (a deferred field traversed by the
    list's select_related)."""
    Charger.objects.filter(pk=sessions["one"].charger_id).update(
        connection_id="c-1", last_seen_at=T0
    )
    failed = []
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = agent.get(url, {"_facets": "True"})
        if response.status_code != 200:
            failed.append((url, response.status_code))
    assert failed == []
    online = agent.get("/admin/chargers/charger/", {"_facets": "True", "connection": "offline"})
    assert online.status_code == 200 and "DEMO-001" in online.content.decode()
