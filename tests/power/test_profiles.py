"""power.profiles: the payloads are schema-valid for both versions, follow the stack level
policy, and the safe defaults keep the site within its limit."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chargers.ocpp import protocol, protocol201, v201_smart
from power import profiles

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _check(version: str, payload: dict) -> None:
    if version == profiles.V201:
        protocol201.check_outgoing("SetChargingProfile", payload)
    else:
        protocol.check_outgoing("SetChargingProfile", payload)


@pytest.mark.parametrize("version", [profiles.V16, profiles.V201])
def test_every_profile_is_schema_valid(version):
    made = [
        profiles.safe_default(version, Decimal("6.3"), now=NOW),
        *profiles.leases(version, Decimal(32), now=NOW, valid_to=NOW + timedelta(minutes=2)),
        profiles.session_limit(
            version, connector_id=2, transaction_id=17, limit_a=Decimal("15.75"), number_phases=3
        ),
    ]
    for profile in made:
        _check(version, profile.payload)
    assert [p.limit_a for p in made] == [6.3, 0.0, 32.0, 15.7]


def test_201_profiles_keep_the_k01_rules():
    safe = profiles.safe_default(profiles.V201, 6, now=NOW)
    lease_default, lease_max = profiles.leases(
        profiles.V201, 16, now=NOW, valid_to=NOW + timedelta(seconds=60)
    )
    tx = profiles.session_limit(profiles.V201, connector_id=1, transaction_id="tx-1", limit_a=10)
    installed = []
    for profile in (safe, lease_max, lease_default, tx):
        body = profile.payload["chargingProfile"]
        v201_smart.check_profile(
            profile.payload["evseId"],
            body,
            evse_ids=[1],
            active_transactions={"tx-1": 1},
            installed=installed,
        )
        installed.append(
            v201_smart.Installed(
                profile_id=body["id"],
                evse_id=profile.payload["evseId"],
                stack_level=body["stackLevel"],
                purpose=body["chargingProfilePurpose"],
                transaction_id=body.get("transactionId", ""),
            )
        )
    # A renewal of a lease replaces it (same id, K01.FR.05): it is not refused as a duplicate.
    renewed = profiles.leases(profiles.V201, 16, now=NOW, valid_to=NOW + timedelta(seconds=90))
    for profile in renewed:
        v201_smart.check_profile(
            0,
            profile.payload["chargingProfile"],
            evse_ids=[1],
            active_transactions={},
            installed=installed,
        )


def test_stack_levels_and_ids_follow_the_policy():
    safe = profiles.safe_default(profiles.V16, 6, now=NOW).payload["csChargingProfiles"]
    lease_default, lease_max = (
        p.payload["csChargingProfiles"]
        for p in profiles.leases(profiles.V16, 16, now=NOW, valid_to=NOW + timedelta(seconds=60))
    )
    tx = profiles.session_limit(profiles.V16, connector_id=3, transaction_id=5, limit_a=8)
    assert safe["stackLevel"] == 0 and "validTo" not in safe
    assert safe["chargingProfilePurpose"] == "ChargePointMaxProfile"
    assert lease_max["stackLevel"] == lease_default["stackLevel"] == 1
    assert lease_max["validTo"] == lease_default["validTo"] == "2026-11-24T12:01:00.000Z"
    assert lease_default["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 0.0
    assert tx.payload["connectorId"] == 3
    assert tx.payload["csChargingProfiles"]["transactionId"] == 5
    assert tx.payload["csChargingProfiles"]["chargingProfileKind"] == "Relative"
    assert tx.payload["csChargingProfiles"]["chargingProfileId"] == profiles.tx_profile_id(3)


def test_safe_shares_divide_the_limit():
    shares = profiles.safe_shares(Decimal(63), [f"CP{n}" for n in range(10)])
    assert set(shares.values()) == {Decimal("6.3")}
    assert sum(shares.values()) <= 63


def test_safe_shares_never_go_below_the_minimum_but_pause_who_does_not_fit():
    shares = profiles.safe_shares(Decimal(63), [f"CP{n}" for n in range(12)])
    assert sum(shares.values()) <= 63
    assert sorted(set(shares.values())) == [Decimal(0), Decimal(6)]
    assert list(shares.values()).count(Decimal(6)) == 10
    assert profiles.safe_shares(Decimal(63), []) == {}


def test_limits_are_rounded_down_and_never_negative():
    assert profiles.amps(Decimal("6.39")) == 6.3
    assert profiles.amps(-1) == 0.0


def test_safe_shares_keep_a_sub_panel_within_its_limit():
    # 4 chargers on a 32 A sub-panel, 4 on the main connection of 100 A: the main alone would give
    # every charger 12.5 A, the sub-panel's 4 × 12.5 = 50 A would trip its 32 A breaker.
    chargers = [f"CP{n}" for n in range(8)]
    circuits = {"garage": (Decimal(32), "")}
    circuit_of = {f"CP{n}": ("garage",) for n in range(4)}
    shares = profiles.safe_shares(Decimal(100), chargers, circuits=circuits, circuit_of=circuit_of)
    garage = [shares[f"CP{n}"] for n in range(4)]
    assert garage == [Decimal(8)] * 4
    assert sum(garage) <= 32
    assert sum(shares.values()) <= 100
    assert all(shares[f"CP{n}"] == Decimal("12.5") for n in range(4, 8))


def test_safe_shares_nested_circuits_and_the_minimum():
    # A 32 A panel under a 20 A one under the main: every node's chargers stay within it.
    circuits = {"a": (Decimal(32), ""), "b": (Decimal(20), "a"), "c": (Decimal(100), "ghost")}
    circuit_of = {"B1": ("b",), "B2": ("b",), "B3": ("b",), "B4": ("b",), "A1": ("a",)}
    chargers = ["B1", "B2", "B3", "B4", "A1", "M1"]
    shares = profiles.safe_shares(Decimal(63), chargers, circuits=circuits, circuit_of=circuit_of)
    b = [shares[s] for s in ("B1", "B2", "B3", "B4")]
    assert sum(b) <= 20 and sorted(b) == [0, 6, 6, 6]  # 5 A each is below 6 A: three fit
    assert sum(b) + shares["A1"] <= 32
    assert sum(shares.values()) <= 63
    # A charger with connectors on two circuits counts at both.
    shares = profiles.safe_shares(
        Decimal(63),
        ["X", "Y"],
        circuits={"a": (Decimal(16), ""), "b": (Decimal(63), "")},
        circuit_of={"X": ("a", "b"), "Y": ("a",)},
    )
    assert shares == {"X": Decimal(8), "Y": Decimal(8)}
    # No circuits: as before.
    assert profiles.safe_shares(Decimal(63), ["X", "Y"], circuits={}) == {
        "X": Decimal("31.5"),
        "Y": Decimal("31.5"),
    }
