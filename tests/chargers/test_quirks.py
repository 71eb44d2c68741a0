"""Quirk profiles as data (issue 58 item 1, docs/quirks.md): the pure resolver and what the
readers and command builders do with a charger's deviations; the seeded profiles and their
sources; deviations met recorded on the charger."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from chargers.devices import energy_config
from chargers.models import ChargerDeviation, Deviation, QuirkProfile
from chargers.ocpp import quirks as q
from chargers.ocpp import tolerant
from chargers.ocpp.energy import register_wh
from chargers.ocpp.protocol import REQUEST_VALIDATORS
from chargers.ocpp.v201_ev_needs import needs_profile
from chargers.sessions import v201_transactions as tx
from chargers.state import quirks as quirks_state
from power import profiles
from tests.factories import ChargerFactory

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KWH = q.Quirks(frozenset({q.ENERGY_KWH_AS_WH}))


# -- the resolver ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "model", "firmware", "matches"),
    [
        ("OpenEVSE", "X", "4.2.2", True),
        ("openevse", "X", "v4.2.2", True),  # vendor in any case, a leading "v" ignored
        ("OpenEVSE", "X", "4.2.20", True),  # a prefix: 4.2.2*
        ("OpenEVSE", "X", "4.3.0", False),
        ("OpenEVSE Ltd", "X", "4.2.2", False),  # the vendor exactly, not a prefix
        ("Other", "X", "4.2.2", False),
    ],
)
def test_a_rule_matches_vendor_and_firmware_prefix(vendor, model, firmware, matches):
    rule = q.Rule(frozenset({q.ENERGY_KWH_AS_WH}), vendor="OpenEVSE", firmware_prefix="4.2.2")
    assert rule.matches(vendor, model, firmware) is matches


@pytest.mark.parametrize(
    ("firmware", "matches"),
    [("4.9", True), ("4.10", True), ("4.10.1", False), ("3.99", False), ("", False)],
)
def test_a_firmware_range_compares_number_by_number(firmware, matches):
    rule = q.Rule(frozenset({q.WATT_ONLY}), firmware_min="4.9", firmware_max="4.10")
    assert rule.matches("Any", "Any", firmware) is matches


def test_profiles_add_up_and_a_charger_no_profile_matches_has_none():
    rules = [
        q.Rule(frozenset({q.WATT_ONLY}), vendor="Autel"),
        q.Rule(frozenset({q.REJECTS_RELATIVE}), vendor="Autel", model_prefix="MaxiCharger"),
    ]
    assert q.resolve(rules, "Autel", "MaxiCharger AC", "1").codes == {
        q.WATT_ONLY,
        q.REJECTS_RELATIVE,
    }
    assert q.resolve(rules, "Autel", "Other", "1").codes == {q.WATT_ONLY}
    assert q.resolve(rules, "ABB", "MaxiCharger", "1") is q.NONE


# -- the reader -----------------------------------------------------------------------------------


def _meter_values(*samples: dict) -> dict:
    return {
        "connectorId": 1,
        "transactionId": 7,
        "meterValue": [{"timestamp": "2026-11-20T10:00:00Z", "sampledValue": list(samples)}],
    }


def _read(payload: dict, quirks: q.Quirks = q.NONE) -> tolerant.Reading:
    return tolerant.read_meter_values(payload, REQUEST_VALIDATORS["MeterValues"], NOW, quirks)


def test_a_register_in_kwh_labelled_wh_is_read_as_kwh_exactly_where_the_profile_says_so():
    payload = _meter_values(
        {"value": "361.2345", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "362", "measurand": "Energy.Active.Import.Register"},  # no unit: Wh
        {"value": "9451", "measurand": "Power.Active.Import", "unit": "W"},
    )
    with_profile = _read(payload, KWH).meter_values[0].samples
    assert [s.unit for s in with_profile] == ["kWh", "kWh", "W"]
    assert register_wh(with_profile[0].value, with_profile[0].unit) == Decimal("361234.5")
    without = _read(payload).meter_values[0].samples
    assert [s.unit for s in without] == ["Wh", "", "W"]
    assert _read(payload, KWH).deviations == [] == _read(payload).deviations


def test_a_register_already_labelled_kwh_is_not_scaled_twice():
    payload = _meter_values(
        {"value": "7.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"}
    )
    sample = _read(payload, KWH).meter_values[0].samples[0]
    assert register_wh(sample.value, sample.unit) == Decimal("7500")


def test_a_register_in_an_unknown_unit_is_read_as_wh_and_met_as_a_deviation():
    payload = _meter_values(
        {"value": "1000", "measurand": "Energy.Active.Import.Register", "unit": "varh"},
        {"value": "1001", "measurand": "Energy.Active.Import.Register", "unit": "varh"},
    )
    reading = _read(payload)
    assert reading.meter_values[0].samples[0].unit == "varh"
    assert [code for code, _ in reading.deviations] == [q.UNKNOWN_ENERGY_UNIT]  # once a frame
    assert "varh" in reading.deviations[0][1]


def test_a_stop_without_meter_stop_is_met_unless_the_profile_names_it():
    payload = {"transactionId": 7, "timestamp": "2026-11-20T11:00:00Z"}
    validator = REQUEST_VALIDATORS["StopTransaction"]
    reading = tolerant.read_stop(payload, validator, NOW)
    assert reading.meter is None  # the last reading is used (unchanged)
    assert [c for c, _ in reading.deviations] == [q.METER_STOP_MISSING]
    known = q.Quirks(frozenset({q.METER_STOP_MISSING}))
    assert tolerant.read_stop(payload, validator, NOW, known).deviations == []


def test_meter_start_and_stop_are_the_same_register_scaled_alike():
    start = {"connectorId": 1, "idTag": "T", "meterStart": 361, "timestamp": "2026-11-20T10:00:00Z"}
    stop = {"transactionId": 7, "meterStop": "367.25", "timestamp": "2026-11-20T11:00:00Z"}
    read_start = REQUEST_VALIDATORS["StartTransaction"]
    read_stop = REQUEST_VALIDATORS["StopTransaction"]
    assert tolerant.read_start(start, read_start, NOW, KWH).meter == Decimal("361000")
    assert tolerant.read_stop(stop, read_stop, NOW, KWH).meter == Decimal("367250")
    # A charger without the profile: Wh as sent.
    assert tolerant.read_start(start, read_start, NOW).meter == Decimal("361")
    assert tolerant.read_stop(stop, read_stop, NOW).meter == Decimal("367.25")
    # Scaled beyond the column: unusable (the last reading is used), never a wrapped number.
    huge = {**stop, "meterStop": 10**14}
    assert tolerant.read_stop(huge, read_stop, NOW, KWH).meter is None


def test_the_2_0_1_reader_takes_the_profile_and_notes_unknown_units():
    items = [
        {
            "timestamp": "2026-11-20T10:00:00Z",
            "sampledValue": [
                {"value": 368.745, "measurand": "Energy.Active.Import.Register"},
                {"value": 5, "unitOfMeasure": {"unit": "Ah"}},
            ],
        }
    ]
    met: list[tuple[str, str]] = []
    readings = tx.read_meter_values(items, NOW, KWH, met)
    assert tx.register_wh(readings[0]) == Decimal("368745")
    assert [code for code, _ in met] == [q.UNKNOWN_ENERGY_UNIT]


# -- the command builders -------------------------------------------------------------------------


def test_a_watt_only_profile_sends_watts_unless_the_charger_was_found_to_take_amperes():
    assert profiles.unit_for("A,W", watt_only=True) == profiles.WATTS
    assert profiles.unit_for("", watt_only=True) == profiles.WATTS
    assert profiles.unit_for("A,W") == profiles.AMPS
    assert profiles.unit_for("A,W", "A", watt_only=True) == profiles.AMPS  # this charger's answer


@pytest.mark.parametrize("version", [profiles.V16, profiles.V201])
def test_a_session_limit_for_a_charger_refusing_relative_is_absolute_from_now(version):
    relative = profiles.session_limit(version, connector_id=1, transaction_id=7, limit_a=16)
    absolute = profiles.session_limit(
        version, connector_id=1, transaction_id=7, limit_a=16, start=NOW
    )

    def body(profile):
        payload = profile.payload
        return payload.get("csChargingProfiles") or payload["chargingProfile"]

    def schedule(profile):
        found = body(profile)["chargingSchedule"]
        return found[0] if isinstance(found, list) else found

    assert body(relative)["chargingProfileKind"] == "Relative"
    assert "startSchedule" not in schedule(relative)
    assert body(absolute)["chargingProfileKind"] == "Absolute"
    assert schedule(absolute)["startSchedule"] == "2026-11-25T12:00:00.000Z"


def test_a_car_needs_profile_for_a_charger_refusing_relative_is_absolute():
    assert needs_profile(1, "TX", "A", Decimal(16))["chargingProfile"]["chargingProfileKind"] == (
        "Relative"
    )
    absolute = needs_profile(1, "TX", "A", Decimal(16), NOW)["chargingProfile"]
    assert absolute["chargingProfileKind"] == "Absolute"
    assert absolute["chargingSchedule"][0]["startSchedule"] == "2026-11-25T12:00:00.000Z"


KEYS = [
    {"key": "MeterValuesSampledData", "readonly": False, "value": "Power.Active.Import"},
    {"key": "StopTxnSampledData", "readonly": False, "value": "Current.Import"},
]


def test_a_charger_needing_stop_txn_sampled_data_unset_gets_it_emptied_not_extended():
    assert energy_config.change_configuration_16(KEYS) == [
        {
            "key": "MeterValuesSampledData",
            "value": "Power.Active.Import,Energy.Active.Import.Register",
        },
        {"key": "StopTxnSampledData", "value": "Current.Import,Energy.Active.Import.Register"},
    ]
    assert energy_config.change_configuration_16(KEYS, stop_txn_unset=True) == [
        {
            "key": "MeterValuesSampledData",
            "value": "Power.Active.Import,Energy.Active.Import.Register",
        },
        {"key": "StopTxnSampledData", "value": ""},
    ]
    changed = {"MeterValuesSampledData": "Accepted", "StopTxnSampledData": "Accepted"}
    assert energy_config.problems_16(KEYS, changed, stop_txn_unset=True) == []
    refused = {**changed, "StopTxnSampledData": "Rejected"}
    assert energy_config.problems_16(KEYS, refused, stop_txn_unset=True) == [
        "ChangeConfiguration of StopTxnSampledData to empty answered Rejected"
    ]


# -- the data -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_seeded_deviation_is_one_the_code_knows_and_every_profile_names_its_source():
    assert set(Deviation.objects.values_list("code", flat=True)) == set(q.KNOWN)
    seeded = list(QuirkProfile.objects.prefetch_related("deviations"))
    assert len(seeded) >= 3
    for profile in seeded:
        assert profile.source_url.startswith("https://github.com/"), profile
        assert profile.evidence and profile.deviations.exists(), profile
    for deviation in Deviation.objects.exclude(source_url=""):
        assert deviation.evidence, deviation


@pytest.mark.django_db
def test_the_seeded_profiles_resolve_for_the_models_of_their_evidence():
    quirks_state.forget()
    assert quirks_state.quirks_of("OpenEVSE", "", "4.2.2").codes == {q.ENERGY_KWH_AS_WH}
    assert quirks_state.quirks_of("Autel", "MaxiCharger AC Wallbox", "1.0").has(q.REJECTS_RELATIVE)
    assert quirks_state.quirks_of("ABB", "Terra AC", "1.8.0") is q.NONE


@pytest.mark.django_db
def test_an_edited_profile_is_seen_once_the_cache_is_cleared():
    quirks_state.forget()
    assert quirks_state.quirks_of("VendorY", "M", "1") is q.NONE
    profile = QuirkProfile.objects.create(
        name="Y", vendor="VendorY", source_url="https://example.org/y"
    )
    profile.deviations.set([Deviation.objects.get(code=q.WATT_ONLY)])
    assert quirks_state.quirks_of("VendorY", "M", "1") is q.NONE  # cached: no query per call
    quirks_state.forget()  # what the admin's save does
    assert quirks_state.quirks_of("VendorY", "M", "1").has(q.WATT_ONLY)
    profile.enabled = False
    profile.save()
    quirks_state.forget()
    assert quirks_state.quirks_of("VendorY", "M", "1") is q.NONE


@pytest.mark.django_db
def test_deviations_met_are_counted_per_charger_with_their_first_frame():
    charger = ChargerFactory()
    early, late = datetime(2026, 11, 25, 9, tzinfo=UTC), datetime(2026, 11, 25, 10, tzinfo=UTC)
    quirks_state.observed(
        charger_id=charger.pk,
        found=[(q.METER_STOP_MISSING, "first"), (q.UNKNOWN_ENERGY_UNIT, "varh")],
        example='[2,"1","StopTransaction",{}]',
        at=early,
    )
    quirks_state.observed(
        charger_id=charger.pk,
        found=[(q.METER_STOP_MISSING, "second")],
        example='[2,"2","StopTransaction",{}]',
        at=late,
    )
    row = ChargerDeviation.objects.get(charger=charger, code=q.METER_STOP_MISSING)
    assert (row.count, row.first_seen_at, row.last_seen_at) == (2, early, late)
    assert row.example == '[2,"1","StopTransaction",{}]' and row.detail == "second"
    assert ChargerDeviation.objects.filter(charger=charger).count() == 2


@pytest.mark.django_db
def test_power_sends_a_watt_only_model_watts_through_its_profile():
    from power import enforcement

    quirks_state.forget()
    profile = QuirkProfile.objects.create(
        name="Z", vendor="VendorZ", source_url="https://example.org/z"
    )
    profile.deviations.set([Deviation.objects.get(code=q.WATT_ONLY)])
    quirks_state.forget()
    watt_only = ChargerFactory(vendor="VendorZ", rate_units="A,W")
    plain = ChargerFactory(vendor="VendorQ", rate_units="A,W")
    assert enforcement.charger_unit(watt_only) == profiles.WATTS
    assert enforcement.charger_unit(plain) == profiles.AMPS


@pytest.mark.django_db
def test_a_charger_found_watt_only_without_a_profile_is_recorded():
    from power import enforcement

    quirks_state.forget()
    charger = ChargerFactory(vendor="VendorW")
    profile = profiles.expressed(
        profiles.session_limit(profiles.V16, connector_id=1, transaction_id=7, limit_a=16),
        unit=profiles.WATTS,
        voltage=230,
        phases=3,
    )
    send = enforcement.Send(charger, profile)
    outcome = enforcement.Outcome(send, accepted=True, offline=True, learnt_unit=profiles.WATTS)
    enforcement.record([outcome], NOW)
    row = ChargerDeviation.objects.get(charger=charger, code=q.WATT_ONLY)
    assert row.count == 1 and '"SetChargingProfile"' in row.example


@pytest.mark.django_db(transaction=True)
async def test_a_journaled_boot_resolves_from_the_cache_only():
    """While the database is away a boot is journaled and answered: its deviations come from the
    cached profiles or are left as they were, never from a read that would hold the answer."""
    quirks_state.forget()
    assert await quirks_state.quirks_for("OpenEVSE", "", "4.2.2", cached_only=True) is None
    found = await quirks_state.quirks_for("OpenEVSE", "", "4.2.2")
    assert found is not None and found.has(q.ENERGY_KWH_AS_WH)
    cached = await quirks_state.quirks_for("OpenEVSE", "", "4.2.2", cached_only=True)
    assert cached == found


@pytest.mark.django_db(transaction=True)
async def test_a_storm_of_connections_reads_the_profiles_once(monkeypatch):
    """Thousands of chargers reconnecting at once after a restart find no profiles cached: they
    wait for one read, not one each (issue 48's restart storm)."""
    import asyncio

    reads = []
    real = quirks_state.rules_load

    def counted():
        reads.append(1)
        return real()

    monkeypatch.setattr(quirks_state, "rules_load", counted)
    quirks_state.forget()
    found = await asyncio.gather(
        *(quirks_state.quirks_for("OpenEVSE", "", "4.2.2") for _ in range(50))
    )
    assert len(reads) == 1
    assert all(f is not None and f.has(q.ENERGY_KWH_AS_WH) for f in found)
