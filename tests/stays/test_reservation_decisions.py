"""The pure decision for a reservation's access code: its unit's (or shared) chargers, during the stay."""

from datetime import UTC, date, datetime, timedelta

from authorization.decisions import ChargerFacts, Context, StayFacts, TokenFacts, decide

CHECK_IN = datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
CHECK_OUT = datetime(2026, 7, 4, 9, 0, tzinfo=UTC)
GRACE = timedelta(hours=2)


def _stay(**changes) -> TokenFacts:
    stay = StayFacts(
        reservation_id=42,
        confirmed=True,
        valid_from=CHECK_IN - GRACE,
        valid_until=CHECK_OUT + GRACE,
        property_id=7,
        unit_id=3,
        shared_chargers=True,
    )
    stay_changes = {k: changes.pop(k) for k in list(changes) if hasattr(stay, k)}
    from dataclasses import replace

    return TokenFacts(
        uid="STAY01",
        organization_id=1,
        is_guest=True,
        single_session=True,
        stay=replace(stay, **stay_changes),
        **changes,
    )


def _charger(**changes) -> ChargerFacts:
    values = dict(
        station_id="CP-1",
        organization_id=1,
        license_valid_until=date(2030, 1, 1),
        access_mode="private",
        roaming_enabled=False,
        guest_charging_enabled=False,
        property_id=7,
        unit_id=3,
    )
    values.update(changes)
    return ChargerFacts(**values)


def test_during_the_stay_the_units_charger_accepts_and_names_the_reservation_even_if_private():
    decision = decide(_stay(), _charger(), Context.REMOTE_APP, now=CHECK_IN + timedelta(hours=5))
    assert (
        decision.accepted
        and decision.reason == "accepted_reservation"
        and decision.reservation_id == 42
    )


def test_grace_before_check_in_is_allowed_and_before_it_is_refused_as_not_active():
    assert decide(_stay(), _charger(), Context.REMOTE_APP, now=CHECK_IN - GRACE).accepted
    early = decide(
        _stay(), _charger(), Context.REMOTE_APP, now=CHECK_IN - GRACE - timedelta(minutes=1)
    )
    assert (
        not early.accepted
        and early.reason == "reservation_not_active"
        and early.reservation_id == 42
    )
    late = decide(
        _stay(), _charger(), Context.START_TRANSACTION, now=CHECK_OUT + GRACE + timedelta(minutes=1)
    )
    assert late.reason == "reservation_not_active"


def test_a_cancelled_reservation_is_not_active():
    decision = decide(
        _stay(confirmed=False), _charger(), Context.REMOTE_APP, now=CHECK_IN + timedelta(hours=1)
    )
    assert decision.reason == "reservation_not_active"


def test_another_units_charger_or_another_property_is_refused_as_other_unit():
    now = CHECK_IN + timedelta(hours=1)
    assert (
        decide(_stay(), _charger(unit_id=4), Context.REMOTE_APP, now=now).reason
        == "reservation_other_unit"
    )
    assert (
        decide(_stay(), _charger(property_id=8), Context.REMOTE_APP, now=now).reason
        == "reservation_other_unit"
    )
    # Another unit's charger is refused even outside the stay: the place is the first answer.
    outside = CHECK_OUT + timedelta(days=3)
    assert (
        decide(_stay(), _charger(unit_id=4), Context.REMOTE_APP, now=outside).reason
        == "reservation_other_unit"
    )


def test_shared_chargers_follow_the_property_setting():
    now = CHECK_IN + timedelta(hours=1)
    assert decide(_stay(), _charger(unit_id=None), Context.REMOTE_APP, now=now).accepted
    refused = decide(
        _stay(shared_chargers=False), _charger(unit_id=None), Context.REMOTE_APP, now=now
    )
    assert refused.reason == "reservation_other_unit"


def test_license_still_comes_first_and_the_kwh_cap_is_enforced():
    now = CHECK_IN + timedelta(hours=1)
    expired = decide(
        _stay(), _charger(license_valid_until=date(2026, 1, 1)), Context.REMOTE_APP, now=now
    )
    assert expired.reason == "license_inactive"
    assert (
        decide(_stay(kwh_left=0.0), _charger(), Context.REMOTE_APP, now=now).reason
        == "reservation_cap_reached"
    )
    assert decide(_stay(kwh_left=3.5), _charger(), Context.REMOTE_APP, now=now).accepted
    busy = decide(_stay(active_sessions=1), _charger(), Context.REMOTE_APP, now=now)
    assert busy.reason == "concurrent_tx" and busy.reservation_id == 42
