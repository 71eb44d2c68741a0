"""Facts that are true now (issue 34 item 1): solved refusals, one sentence per card, privacy."""

from datetime import timedelta

import pytest
from django.utils import timezone

from authorization.models import AuthorizationDecision, Token, TokenGroup
from chargers.models import ChargingSession
from support.assistant import situations
from support.assistant.diagnosis import Viewer, diagnose
from support.assistant.extract import extract
from support.assistant.topics import Topic
from support.findings import host_findings

pytestmark = pytest.mark.django_db


def _refuse(station_id, uid, minutes_ago):
    decision = AuthorizationDecision.objects.create(
        uid=uid,
        uid_normalized=uid,
        station_id=station_id,
        context="local",
        status="Invalid",
        reason="not_in_local_group",
        step=9,
        message=f"Card {uid} is not in a local token group.",
    )
    at = timezone.now() - timedelta(minutes=minutes_ago)
    AuthorizationDecision.objects.filter(pk=decision.pk).update(created_at=at)


def test_a_card_refused_three_times_is_one_sentence_on_the_dashboard():
    stage = situations.build("refused_now")
    _refuse("HV-01", "DEADBEEF01", 3)
    findings = host_findings(stage.host)
    assert [f.problem for f in findings] == ["refused"]
    refusals = [fact for fact in findings[0].facts if "refused" in fact]
    assert len(refusals) == 1
    assert refusals[0].startswith("Card DEADBEEF01 was refused 3 times, last at ")


def test_a_whitelisted_card_is_no_longer_a_problem_anywhere():
    stage = situations.build("refused_now")
    group = TokenGroup.objects.get(name="Residents")
    assert host_findings(stage.host)  # still refused: listed
    group.tokens.add(Token.objects.create(uid="DEADBEEF01", organization=stage.organization))
    assert host_findings(stage.host) == []
    guest = diagnose(Topic.NOT_CHARGING, viewer=Viewer(), station_id="HV-01")
    assert not any("refused" in fact for fact in guest.facts)


def test_a_card_that_has_charged_since_is_solved_with_its_time_for_the_host_who_asks():
    stage = situations.build("refused_then_whitelisted")
    assert host_findings(stage.host) == []
    host = Viewer.for_user(stage.host)
    about_it = diagnose(
        Topic.NO_PERMISSION, viewer=host, station_id="HV-01", details={"card_uid": "DEADBEEF01"}
    )
    assert any("but it has charged here since" in f for f in about_it.facts)
    other = diagnose(Topic.NOT_CHARGING, viewer=host, station_id="HV-01")
    assert not any("DEADBEEF01" in f for f in other.facts)


def test_guests_never_see_other_peoples_card_data():
    situations.build("refused_now")
    facts = diagnose(Topic.NO_PERMISSION, viewer=Viewer(), station_id="HV-01").facts
    refusal = next(f for f in facts if "refused" in f)
    assert refusal.startswith("A card was refused here 2 times")
    assert "DEAD" not in " ".join(facts)
    mine = diagnose(
        Topic.NO_PERMISSION, viewer=Viewer(), station_id="HV-01", details={"card_uid": "deadbeef01"}
    ).facts
    assert any(f.startswith("Your card was refused here") for f in mine)


def test_a_guests_own_session_is_found_from_the_page_and_the_amount_or_last4():
    situations.build("paid_session")
    guest = Viewer()
    assert diagnose(Topic.COST_BREAKDOWN, viewer=guest, station_id="HV-01").session is None
    by_amount = diagnose(
        Topic.COST_BREAKDOWN, viewer=guest, station_id="HV-01", details={"amount": "1.28 EUR"}
    )
    assert by_amount.session is not None
    assert any("This session cost 1.28 EUR" in f for f in by_amount.facts)
    by_last4 = diagnose(
        Topic.COST_BREAKDOWN, viewer=guest, station_id="HV-01", details={"card_last4": "4242"}
    )
    assert by_last4.session == by_amount.session
    wrong = diagnose(
        Topic.COST_BREAKDOWN, viewer=guest, station_id="HV-01", details={"amount": "9.99 EUR"}
    )
    assert wrong.session is None
    # Without the page's charger one detail is not enough: the amount and the last 4 together.
    assert diagnose(Topic.COST_BREAKDOWN, viewer=guest, details={"amount": "1.28"}).session is None
    both = diagnose(
        Topic.COST_BREAKDOWN, viewer=guest, details={"amount": "1.28", "card_last4": "4242"}
    )
    assert both.session == by_amount.session


def test_a_card_uid_is_not_taken_for_a_station_id():
    found = extract("My visitor's card DEADBEEF01 was rejected at DEMO-001")
    assert found["card_uid"] == "DEADBEEF01" and found["station_id"] == "DEMO-001"
    assert extract("04A1B2C3 refused")["card_uid"] == "04A1B2C3"


def test_a_card_named_by_any_idtag_is_found():
    # OCPP's idTag is any text: cards printed "DEMO-CARD-1" or "EMP0042", not only hex UIDs.
    found = extract("Why was card DEMO-CARD-1 refused at DEMO-004?")
    assert found["card_uid"] == "DEMO-CARD-1" and found["station_id"] == "DEMO-004"
    assert extract("Card BADCARD1 was refused")["card_uid"] == "BADCARD1"
    assert extract("the idTag EMP0042 stopped working")["card_uid"] == "EMP0042"
    # Words after "card" are not cards.
    assert "card_uid" not in extract("my card was refused at DEMO-004 yesterday")
    assert "card_uid" not in extract("charger CP1234 is offline")


def test_charging_since_the_refusal_also_counts_when_only_a_session_shows_it():
    stage = situations.build("refused_now")
    charger = stage.chargers["HV-01"]
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=2147480009,
        id_tag="deadbeef01",
        started_at=timezone.now() - timedelta(minutes=1),
        meter_start_wh=0,
    )
    assert host_findings(stage.host) == []
